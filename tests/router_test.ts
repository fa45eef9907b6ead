/**
 * Tests of the routing pieces on their own: the request target and its
 * normalisation, the route table (hosts, prefixes, paths, methods, headers,
 * schemes, first match), rewrites, redirects and the pool split.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseConfig, type RouteConfig, routeConfigs } from "../src/config/config.ts";
import { redirectLocation } from "../src/routing/fixed_answers.ts";
import { HeaderFilter } from "../src/routing/header_filter.ts";
import { PoolSplit } from "../src/routing/pool_split.ts";
import { normalizePath, parseTarget } from "../src/routing/request_target.ts";
import { Router } from "../src/routing/router.ts";

/** The routes of a config whose `routes` section is `yaml`, over pools a and b. */
function routes(yaml: string): RouteConfig[] {
  const config = parseConfig(
    "pools:\n  a: { backends: [{ url: http://127.0.0.1:9001 }] }\n" +
      `  b: { backends: [{ url: http://127.0.0.1:9002 }] }\nroutes:\n${yaml}`,
    "test.yaml",
  );
  return routeConfigs(config);
}

/** The name of the route `router` picks for `url`, or undefined. */
function pick(router: Router, url: string, init?: RequestInit): string | undefined {
  const request = new Request(url, init);
  return router.route(parseTarget(request.url), request)?.name;
}

Deno.test("request target: scheme, lowercase host without port, normalised path, query as sent", () => {
  assert.deepEqual(parseTarget("http://Api.Example.COM:8080/v1/../v2/%41?x=/../%41"), {
    scheme: "http",
    authority: "Api.Example.COM:8080",
    host: "api.example.com",
    port: 8080,
    path: "/v2/A",
    query: "?x=/../%41",
  });
  assert.deepEqual(parseTarget("https://[::1]:8443"), {
    scheme: "https",
    authority: "[::1]:8443",
    host: "[::1]",
    port: 8443,
    path: "/",
    query: "",
  });
  assert.equal(parseTarget("http://h?q").path, "/");
  assert.equal(parseTarget("http://h?q").query, "?q");
  assert.equal(parseTarget("http://h/x").port, null);
});

Deno.test("normalisation: unreserved escapes decoded, dot segments removed, nothing else touched", () => {
  const cases: [string, string][] = [
    ["/public/../admin", "/admin"],
    ["/a/./b", "/a/b"],
    ["/a/b/c/./../../g", "/a/g"],
    ["/a/..", "/"],
    ["/a/b/..", "/a/"],
    ["/../x", "/x"],
    ["/.", "/"],
    ["/%41%7e%2D%5f%2e", "/A~-_."],
    ["/a%2Fb", "/a%2Fb"],
    ["/a%2fb%3B", "/a%2fb%3B"],
    ["/a;b=1//c", "/a;b=1//c"],
    ["/a/%2e%2E/b", "/b"],
    ["/%zz", "/%zz"],
    ["/.well-known/x", "/.well-known/x"],
    ["/plain/path", "/plain/path"],
  ];
  for (const [raw, normalised] of cases) assert.equal(normalizePath(raw), normalised, raw);
});

Deno.test("router: exact and wildcard hosts, case-insensitive, the port ignored", () => {
  const router = new Router(routes(`
  - { name: exact, match: { host: api.example.com }, pool: a }
  - { name: wild, match: { host: "*.example.com" }, pool: b }
  - { name: other, match: { host: Other.Example.ORG }, pool: a }
`));
  assert.equal(pick(router, "http://api.example.com/"), "exact");
  assert.equal(pick(router, "http://API.Example.com:8080/"), "exact");
  assert.equal(pick(router, "http://www.example.com/"), "wild");
  assert.equal(pick(router, "http://a.b.example.com/"), "wild", "one or more labels");
  assert.equal(pick(router, "http://example.com/"), undefined, "the wildcard needs a label");
  assert.equal(pick(router, "http://other.example.org/"), "other");
  assert.equal(pick(router, "http://notexample.com/"), undefined);
});

Deno.test("router: the first route in config order wins, whatever kind of host it names", () => {
  const router = new Router(routes(`
  - { name: any-v1, match: { path_prefix: /v1 }, pool: a }
  - { name: wild, match: { host: "*.example.com" }, pool: b }
  - { name: exact, match: { host: api.example.com }, pool: a }
  - { name: rest, pool: b }
`));
  assert.equal(pick(router, "http://api.example.com/v1/x"), "any-v1");
  assert.equal(pick(router, "http://api.example.com/v2"), "wild", "wild is before exact");
  assert.equal(pick(router, "http://elsewhere/v2"), "rest");
});

Deno.test("router: path prefixes are segment-aware; exact paths match only themselves", () => {
  const router = new Router(routes(`
  - { name: v1, match: { path_prefix: /v1 }, pool: a }
  - { name: slash, match: { path_prefix: /static/ }, pool: a }
  - { name: exact, match: { path: /healthz }, pool: b }
`));
  assert.equal(pick(router, "http://h/v1"), "v1");
  assert.equal(pick(router, "http://h/v1/"), "v1");
  assert.equal(pick(router, "http://h/v1/x?y"), "v1");
  assert.equal(pick(router, "http://h/v10"), undefined);
  assert.equal(
    pick(router, "http://h/static"),
    "slash",
    "a trailing slash in the config is dropped",
  );
  assert.equal(pick(router, "http://h/static/app.js"), "slash");
  assert.equal(pick(router, "http://h/healthz"), "exact");
  assert.equal(pick(router, "http://h/healthz/"), undefined);
  assert.equal(pick(router, "http://h/healthz?full=1"), "exact", "the query is not the path");
  assert.equal(pick(router, "http://h/x/../v1/y"), "v1", "routes read the normalised path");
});

Deno.test("router: methods, headers and scheme must all hold", () => {
  const router = new Router(routes(`
  - name: canary
    match: { methods: [get, POST], headers: { X-Canary: "1" }, scheme: http }
    pool: a
  - { name: secure, match: { scheme: https }, pool: b }
`));
  const canary = { headers: { "x-canary": "1" } };
  assert.equal(pick(router, "http://h/", canary), "canary");
  assert.equal(pick(router, "http://h/", { ...canary, method: "POST", body: "x" }), "canary");
  assert.equal(pick(router, "http://h/", { ...canary, method: "PUT", body: "x" }), undefined);
  assert.equal(pick(router, "http://h/", { headers: { "x-canary": "2" } }), undefined);
  assert.equal(pick(router, "http://h/"), undefined, "no header");
  assert.equal(pick(router, "https://h/", canary), "secure");
});

Deno.test("router: 1,000 host routes and the misses that explain a miss", () => {
  const many = Array.from(
    { length: 1000 },
    (_, i) => `  - { name: host-${i}, match: { host: h${i}.example.com }, pool: a }`,
  ).join("\n");
  const router = new Router(
    routes(`${many}\n  - { name: v2, match: { path_prefix: /v2 }, pool: b }\n`),
  );
  assert.equal(pick(router, "http://h999.example.com/"), "host-999");
  assert.equal(pick(router, "http://h0.example.com/v2"), "host-0");
  assert.equal(pick(router, "http://unknown.example.com/v2"), "v2");
  const request = new Request("http://h3.example.com/x");
  const misses = router.misses(parseTarget(request.url), request);
  assert.deepEqual(misses.slice(0, 3), [
    { route: "host-0", failed: "host" },
    { route: "host-1", failed: "host" },
    { route: "host-2", failed: "host" },
  ]);
  assert.equal(misses.length, 3, "host-3 takes it");
});

Deno.test("rewrite: the matched prefix is replaced, the rest kept", () => {
  const [api, root, exactRoot] = new Router(routes(`
  - { match: { path_prefix: /v1 }, rewrite: { path_prefix: / }, pool: a }
  - { match: { path_prefix: / }, rewrite: { path_prefix: /app }, pool: a }
  - { match: { path_prefix: /old/ }, rewrite: { path_prefix: /new/ }, pool: a }
`)).routes;
  assert.equal(api.upstreamPath("/v1"), "/");
  assert.equal(api.upstreamPath("/v1/"), "/");
  assert.equal(api.upstreamPath("/v1/users/7"), "/users/7");
  assert.equal(root.upstreamPath("/x/y"), "/app/x/y");
  assert.equal(root.upstreamPath("/"), "/app/");
  assert.equal(exactRoot.upstreamPath("/old/a"), "/new/a");
  assert.equal(exactRoot.upstreamPath("/old"), "/new");
});

Deno.test("redirect: each part replaced, Gateway API ports, the query kept", () => {
  const at = (url: string) => parseTarget(url);
  const cases: [Parameters<typeof redirectLocation>[0], string, string][] = [
    [
      { scheme: "https", status: 301 },
      "http://example.com:8080/x?a=1",
      "https://example.com/x?a=1",
    ],
    [
      { host: "example.org", status: 302 },
      "http://example.com:8080/x",
      "http://example.org:8080/x",
    ],
    [{ port: 8443, status: 302 }, "http://example.com/x", "http://example.com:8443/x"],
    [{ scheme: "https", port: 443, status: 302 }, "http://a/x", "https://a/x"],
    [{ scheme: "http", status: 302 }, "https://a:8443/x", "http://a/x"],
    [{ path: "/new", status: 302 }, "http://a:8080/old?q=1&q=2", "http://a:8080/new?q=1&q=2"],
    [
      { scheme: "https", host: "example.com", port: 443, path: "/new", status: 301 },
      "http://old.example.com:8080/x?y",
      "https://example.com/new?y",
    ],
  ];
  for (const [redirect, url, location] of cases) {
    assert.equal(redirectLocation(redirect, at(url), 8080), location, url);
  }
  assert.equal(
    redirectLocation({ status: 302 }, at("http://a/x"), 80),
    "http://a/x",
    "the listener's port 80 is http's well-known port",
  );
});

Deno.test("split: smooth weighted round robin over the pools, skipping one with nothing in rotation", () => {
  const split = new PoolSplit([{ pool: "a", weight: 3 }, { pool: "b", weight: 1 }, {
    pool: "off",
    weight: 0,
  }]);
  const picks = Array.from({ length: 8 }, () => split.pick(() => true));
  assert.deepEqual(picks, ["a", "a", "b", "a", "a", "a", "b", "a"]);
  assert.deepEqual(
    Array.from({ length: 4 }, () => split.pick((pool) => pool !== "a")),
    ["b", "b", "b", "b"],
  );
  assert.equal(
    split.pick(() => false),
    "a",
    "with nothing in rotation anywhere, the weights decide",
  );
  const next = split.peek(() => true);
  assert.equal(split.peek(() => true), next, "a peek leaves the split as it is");
  assert.equal(split.pick(() => true), next);
});

Deno.test("header filter: set replaces every value, add appends, remove deletes every value", () => {
  const filter = new HeaderFilter({
    set: { "x-env": "prod" },
    add: { "x-tag": "b" },
    remove: ["x-debug"],
  });
  assert.deepEqual(
    filter.apply([["x-env", "dev"], ["x-env", "qa"], ["x-debug", "1"], ["x-debug", "2"], [
      "x-tag",
      "a",
    ]]),
    [["x-tag", "a"], ["x-env", "prod"], ["x-tag", "b"]],
  );
});
