/**
 * Routing through a real balancer: routes to pools, the 404, rewrites,
 * header changes both ways, redirects, fixed answers, splits, normalisation,
 * per-route timeouts, and what /status, /metrics, the access log and the
 * explanations say of routes and pools.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { RouteDecision } from "../src/observability/explain.ts";
import type { Status } from "../src/observability/telemetry.ts";
import {
  adminUrl,
  adminYaml,
  baseUrl,
  getJson,
  parsePrometheus,
  rawRequest,
  sampleValue,
  startBackend,
  startNamedBackend,
  startTestBalancer,
  type TestBackend,
  waitFor,
} from "./helpers.ts";

/** A backend that answers with what it received: method, path, and headers as JSON. */
function startEchoBackend(name: string): TestBackend {
  return startBackend((request) => {
    const url = new URL(request.url);
    return Response.json({
      name,
      target: request.url.slice(request.url.indexOf("/", url.protocol.length + 2)),
      headers: Object.fromEntries(request.headers),
    }, { headers: { server: "echo", "x-backend": name, "keep-alive": "timeout=5" } });
  });
}

interface Echo {
  name: string;
  target: string;
  headers: Record<string, string>;
}

/** Two pools, api and web, each of one echo backend. */
function poolsYaml(api: TestBackend, web: TestBackend, extra = ""): string {
  return `pools:
  api:
    backends: [{ url: ${api.url} }]
  web:
    backends: [{ url: ${web.url} }]
${extra}`;
}

/** GETs `path` with `host` as its Host header (fetch sends the URL's own). */
async function getAs(lb: { addr: Deno.NetAddr }, host: string, path: string): Promise<RawAnswer> {
  const response = await rawRequest(
    lb.addr.port,
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  );
  const headers = new Headers(response.headers);
  return { status: response.status, headers, text: new TextDecoder().decode(response.body) };
}

interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** A split between the pools stable and next, of one backend each. */
function splitYaml(
  stable: TestBackend,
  next: TestBackend,
  toStable: number,
  toNext: number,
): string {
  return `pools:
  stable: { backends: [{ url: ${stable.url} }] }
  next: { backends: [{ url: ${next.url} }] }
routes:
  - split: [{ pool: stable, weight: ${toStable} }, { pool: next, weight: ${toNext} }]
`;
}

/** The echo backends api and web, a pool each, behind a balancer with `routes`. */
function startEchoPools(routes: string, accessLog?: (line: string) => void) {
  const api = startEchoBackend("api");
  const web = startEchoBackend("web");
  const lb = startTestBalancer(poolsYaml(api, web, routes), () => {}, accessLog);
  return {
    api,
    web,
    lb,
    async [Symbol.asyncDispose]() {
      await lb[Symbol.asyncDispose]();
      await api.close();
      await web.close();
    },
  };
}

async function echo(url: string, init?: RequestInit): Promise<Echo> {
  const response = await fetch(url, init);
  assert.equal(response.status, 200, url);
  return await response.json();
}

Deno.test("routing: hosts and paths pick the pool, the first match wins, nothing matching is a 404", async () => {
  await using setup = startEchoPools(
    `routes:
  - { name: api-host, match: { host: api.example.com }, pool: api }
  - { name: v1, match: { path_prefix: /v1 }, pool: api }
  - { name: web, match: { host: "*.example.com" }, pool: web }
`,
  );
  const { lb } = setup;
  const nameOf = async (host: string, path: string) =>
    (JSON.parse((await getAs(lb, host, path)).text) as Echo).name;
  assert.equal(await nameOf("API.example.com:8080", "/x"), "api");
  assert.equal(await nameOf("www.example.com", "/x"), "web");
  assert.equal(await nameOf("www.example.com", "/v1/users"), "api", "v1 is first");
  assert.equal(await nameOf("www.example.com", "/v10"), "web", "segment-aware");
  const missing = await getAs(lb, "elsewhere.test", "/nothing?q=1");
  assert.equal(missing.status, 404);
  assert.equal(missing.text, "404 Not Found: no route for GET elsewhere.test/nothing\n");
  assert.ok(missing.headers.get("x-request-id"), "a 404 carries the request id too");
});

Deno.test("routing: rewrite of the prefix and the host; X-Forwarded-Host keeps the client's", async () => {
  await using setup = startEchoPools(
    `routes:
  - match: { path_prefix: /api/v1 }
    rewrite: { path_prefix: /, host: api.internal:9000 }
    pool: api
  - pool: web
`,
  );
  const { lb } = setup;
  const seen = await echo(`${baseUrl(lb)}/api/v1/users/7?x=1`);
  assert.equal(seen.target, "/users/7?x=1");
  assert.equal(seen.headers.host, "api.internal:9000");
  assert.equal(seen.headers["x-forwarded-host"], `127.0.0.1:${lb.addr.port}`);
  assert.equal((await echo(`${baseUrl(lb)}/api/v1`)).target, "/");
  const other = await echo(`${baseUrl(lb)}/api/v10`);
  assert.equal(other.name, "web");
  assert.equal(other.target, "/api/v10", "no rewrite on another route");
});

Deno.test("routing: request and response header changes, with the proxy's header rules still winning", async () => {
  await using setup = startEchoPools(
    `routes:
  - pool: api
    request_headers:
      set: { x-env: prod, x-forwarded-for: 203.0.113.9 }
      add: { x-tag: b, connection: close, keep-alive: "1" }
      remove: [x-debug, x-forwarded-proto, via]
    response_headers:
      set: { strict-transport-security: "max-age=31536000" }
      add: { x-extra: "1", upgrade: h2c }
      remove: [server]
`,
  );
  const { lb } = setup;
  const response = await fetch(baseUrl(lb), {
    headers: { "x-env": "dev", "x-debug": "1", "x-tag": "a", "x-forwarded-for": "198.51.100.1" },
  });
  const seen: Echo = await response.json();
  assert.equal(seen.headers["x-env"], "prod");
  assert.equal(seen.headers["x-tag"], "a, b");
  assert.equal(seen.headers["x-debug"], undefined);
  assert.equal(seen.headers["keep-alive"], undefined, "a hop-by-hop header cannot be added");
  assert.equal(seen.headers.connection, undefined);
  assert.equal(seen.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1", "the balancer appends");
  assert.equal(seen.headers["x-forwarded-proto"], "http", "the balancer sets it");
  assert.equal(seen.headers.via, "1.1 deno-lb");
  assert.equal(response.headers.get("strict-transport-security"), "max-age=31536000");
  assert.equal(response.headers.get("x-extra"), "1");
  assert.equal(response.headers.get("server"), null);
  assert.equal(response.headers.get("upgrade"), null, "hop-by-hop headers never reach a client");
  assert.equal(response.headers.get("keep-alive"), null);
  assert.equal(response.headers.get("x-backend"), "api");
});

Deno.test("routing: redirects and fixed answers need no backend", async () => {
  let received = 0;
  await using backend = startBackend((request) => {
    if (request.headers.has("x-forwarded-for")) received++; // not a health probe
    return new Response("backend");
  });
  await using lb = startTestBalancer(
    `backends: [{ url: ${backend.url} }]
routes:
  - match: { host: old.example.com }
    redirect: { scheme: https, host: example.com, path: /new, status: 301 }
    response_headers: { set: { x-moved: "yes" } }
  - match: { path_prefix: /moved }
    redirect: { host: example.org }
  - match: { path: /healthz }
    respond: { status: 200, body: "ok\\n", headers: { content-type: text/plain } }
  - match: { path: /gone }
    respond: { status: 410 }
  - pool: default
`,
  );
  const url = baseUrl(lb);
  const moved = await getAs(lb, "old.example.com:8080", "/old?a=1&b=2");
  assert.equal(moved.status, 301);
  assert.equal(moved.headers.get("location"), "https://example.com/new?a=1&b=2");
  assert.equal(moved.headers.get("x-moved"), "yes");
  const found = await fetch(`${url}/moved/x?y`, { redirect: "manual" });
  await found.body?.cancel();
  assert.equal(found.status, 302, "the default status");
  assert.equal(found.headers.get("location"), `http://example.org:${lb.addr.port}/moved/x?y`);
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(health.headers.get("content-type"), "text/plain");
  assert.equal(await health.text(), "ok\n");
  const gone = await fetch(`${url}/gone`);
  assert.equal(gone.status, 410);
  assert.equal(await gone.text(), "");
  assert.equal(received, 0, "no backend was asked");
  assert.equal(await (await fetch(`${url}/other`)).text(), "backend");
});

Deno.test("routing: a split sends 1,000 requests in its weights' proportion, within 2 points", async () => {
  await using stable = startNamedBackend();
  await using next = startNamedBackend();
  await using lb = startTestBalancer(splitYaml(stable, next, 90, 10));
  let toNext = 0;
  for (let i = 0; i < 1000; i++) {
    if (await (await fetch(baseUrl(lb))).text() === String(next.port)) toNext++;
  }
  assert.ok(Math.abs(toNext / 1000 - 0.1) <= 0.02, `${toNext} of 1,000 went to next`);
});

Deno.test("routing: a split skips a pool with no healthy backend while another has one", async () => {
  await using stable = startNamedBackend();
  await using next = startNamedBackend();
  await using lb = startTestBalancer(splitYaml(stable, next, 50, 50));
  lb.proxy.pools.get("next")!.backends[0].healthy = false;
  for (let i = 0; i < 20; i++) {
    const response = await fetch(baseUrl(lb));
    assert.equal(response.status, 200);
    assert.equal(await response.text(), String(stable.port));
  }
  lb.proxy.pools.get("stable")!.backends[0].healthy = false;
  const none = await fetch(baseUrl(lb));
  await none.body?.cancel();
  assert.equal(none.status, 503, "nothing healthy anywhere");
});

Deno.test("routing: the path is normalised before routing, and the backend gets that same path", async () => {
  await using publicBackend = startEchoBackend("public");
  await using adminBackend = startEchoBackend("admin");
  await using lb = startTestBalancer(
    poolsYaml(
      publicBackend,
      adminBackend,
      `routes:
  - { match: { path_prefix: /admin }, respond: { status: 403, body: "no" } }
  - { match: { path_prefix: /public }, pool: api }
`,
    ),
  );
  const raw = (target: string) =>
    rawRequest(lb.addr.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const sneaky = await raw("/public/../admin");
  assert.equal(sneaky.status, 403, "/public/../admin is /admin");
  const escaped = await raw("/public/%2e%2e/admin");
  assert.equal(escaped.status, 403, "an escaped dot segment too");
  const kept = await raw("/public/%7Ea/./b%2Fc;x?q=/../");
  assert.equal(kept.status, 200);
  const seen: Echo = JSON.parse(new TextDecoder().decode(kept.body));
  assert.equal(seen.target, "/public/~a/b%2Fc;x?q=/../", "only unreserved escapes and dots change");
});

Deno.test("routing: a route's own response timeout", async () => {
  await using slow = startBackend(async (request) => {
    await new Promise((resolve) =>
      setTimeout(resolve, new URL(request.url).pathname === "/slow" ? 1000 : 0)
    );
    return new Response("late");
  });
  await using lb = startTestBalancer(
    `backends: [{ url: ${slow.url} }]
retries: { attempts: 1 }
routes:
  - { match: { path_prefix: /slow }, timeouts: { response: 100ms }, pool: default }
  - pool: default
`,
  );
  const started = performance.now();
  const cut = await fetch(`${baseUrl(lb)}/slow`);
  await cut.body?.cancel();
  assert.equal(cut.status, 504);
  assert.ok(performance.now() - started < 900, "the route's 100 ms, not the default 30 s");
  assert.equal(await (await fetch(`${baseUrl(lb)}/fast`)).text(), "late");
});

Deno.test("routing: the same URL in two pools is two backends with their own ids and health", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(
    `backends: [{ url: ${backend.url} }]
pools:
  other: { backends: [{ url: ${backend.url} }] }
routes:
  - { match: { path_prefix: /other }, pool: other }
  - pool: default
`,
  );
  const [mine] = lb.proxy.pools.get("default")!.backends;
  const [theirs] = lb.proxy.pools.get("other")!.backends;
  assert.notEqual(mine.id, theirs.id);
  theirs.healthy = false;
  const down = await fetch(`${baseUrl(lb)}/other`);
  await down.body?.cancel();
  assert.equal(down.status, 503);
  assert.equal(await (await fetch(`${baseUrl(lb)}/`)).text(), String(backend.port));
});

Deno.test("routing: /status, /metrics, the access log and explanations know routes and pools", async () => {
  const lines: string[] = [];
  await using setup = startEchoPools(
    `routes:
  - { name: api, match: { path_prefix: /api }, pool: api }
  - { name: moved, match: { path: /old }, redirect: { path: /new, status: 308 } }
  - { name: ping, match: { path: /ping }, respond: { body: pong } }
  - { name: web, match: { path_prefix: /web }, pool: web }
${adminYaml()}`,
    (line) => lines.push(line),
  );
  const { lb, api, web } = setup;
  const url = baseUrl(lb);
  for (const path of ["/api/a", "/api/b", "/old", "/ping", "/web", "/nope"]) {
    await (await fetch(`${url}${path}`, { redirect: "manual" })).body?.cancel();
  }
  await waitFor(() => lines.length === 6, "six access-log lines");
  const entries = lines.map((line) => JSON.parse(line));
  assert.deepEqual(entries.map((entry) => [entry.route, entry.pool, entry.status]), [
    ["api", "api", 200],
    ["api", "api", 200],
    ["moved", null, 308],
    ["ping", null, 200],
    ["web", "web", 200],
    [null, null, 404],
  ]);

  const metrics = parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text());
  const routeCount = (route: string, code: string) =>
    sampleValue(metrics, "lb_route_requests_total", { route, code });
  assert.equal(routeCount("api", "2xx"), 2);
  assert.equal(routeCount("moved", "3xx"), 1);
  assert.equal(routeCount("ping", "2xx"), 1);
  assert.equal(routeCount("web", "2xx"), 1);
  assert.equal(
    sampleValue(metrics, "lb_requests_total", { pool: "api", backend: api.url, code: "2xx" }),
    2,
  );
  assert.equal(
    sampleValue(metrics, "lb_requests_total", { pool: "none", backend: "none", code: "4xx" }),
    1,
    "the 404 reached no pool",
  );
  assert.equal(sampleValue(metrics, "lb_backend_up", { pool: "web", backend: web.url }), 1);

  const status = await getJson<Status>(`${adminUrl(lb)}/status`);
  assert.deepEqual(status.pools.map((pool) => [pool.name, pool.backends.map((b) => b.url)]), [
    ["api", [api.url]],
    ["web", [web.url]],
  ]);
  assert.deepEqual(status.routes.map((route) => route.name), ["api", "moved", "ping", "web"]);

  const decision = async (path: string) => {
    const response = await fetch(`${url}${path}`, {
      headers: { "x-lb-explain": "1" },
      redirect: "manual",
    });
    await response.body?.cancel();
    return response.headers.get("x-lb-decision");
  };
  const [apiBackend] = lb.proxy.pools.get("api")!.backends;
  assert.equal(
    await decision("/api/x"),
    `route=api; pool=api; strategy=round_robin; backend=${apiBackend.id}; candidates=${apiBackend.id} up`,
  );
  assert.equal(
    await decision("/old?x=1"),
    `route=moved; redirect=308 http://127.0.0.1:${lb.addr.port}/new?x=1`,
  );
  assert.equal(await decision("/ping"), "route=ping; respond=200");
  assert.equal(await decision("/nope"), "route=none");

  const explain = (path: string) =>
    getJson<RouteDecision>(`${adminUrl(lb)}/explain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ path }),
    });
  const web2 = await explain("/web/page");
  assert.equal(web2.route, "web");
  assert.equal(web2.pool, "web");
  assert.equal(web2.action, "pool");
  assert.deepEqual(web2.misses, [
    { route: "api", failed: "path_prefix" },
    { route: "moved", failed: "path" },
    { route: "ping", failed: "path" },
  ]);
  const none = await explain("/nope");
  assert.equal(none.route, null);
  assert.equal(none.action, "none");
  assert.equal(none.status, 404);
  assert.equal(none.misses.length, 4);
  const moved = await explain("/old");
  assert.equal(moved.location, `http://explain.invalid:${lb.addr.port}/new`);
});
