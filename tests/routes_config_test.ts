/**
 * Tests of the `pools` and `routes` config: defaults, the legacy single pool,
 * and every cross-key error in the usual `file:line key: ...` form.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ConfigError,
  parseConfig,
  poolConfigs,
  routeConfigs,
  summarizeConfig,
} from "../src/config/config.ts";

const POOLS = `pools:
  api:
    strategy: random
    backends: [{ url: http://127.0.0.1:9001 }]
    health_check: { path: /healthz, passive: { consecutive_failures: 2 } }
  web:
    backends: [{ url: http://127.0.0.1:9101 }]
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, "config.yaml");
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.message.split("\n");
  }
  assert.fail("expected the config to be rejected");
}

Deno.test("pools: each key left out is the top level's; health_check merges key by key", () => {
  const config = parseConfig(
    `strategy: sticky\nhealth_check: { interval: 1s }\nsticky: { cookie: top }\n${POOLS}` +
      "routes:\n  - pool: api\n",
    "config.yaml",
  );
  const [api, web] = poolConfigs(config);
  assert.equal(api.name, "api");
  assert.equal(api.strategy, "random");
  assert.equal(api.health_check.path, "/healthz");
  assert.equal(api.health_check.interval, 1000, "from the top level");
  assert.equal(api.health_check.passive.consecutive_failures, 2);
  assert.equal(api.health_check.passive.ejection_time, 10_000, "the default");
  assert.equal(web.strategy, "sticky");
  assert.deepEqual(web.sticky, { cookie: "top" });
  assert.equal(config.backends.length, 0, "no default pool without top-level backends");
});

Deno.test("pools: top-level backends are the default pool; without routes every request goes there", () => {
  const legacy = parseConfig("backends: [{ url: http://127.0.0.1:9001 }]\n", "config.yaml");
  assert.equal(legacy.pools, undefined);
  assert.equal(legacy.routes, undefined);
  assert.deepEqual(poolConfigs(legacy).map((pool) => pool.name), ["default"]);
  assert.deepEqual(routeConfigs(legacy), [{ name: "default", match: {}, pool: "default" }]);
  const both = parseConfig(`backends: [{ url: http://127.0.0.1:9001 }]\n${POOLS}`, "config.yaml");
  assert.deepEqual(poolConfigs(both).map((pool) => pool.name), ["default", "api", "web"]);
  assert.deepEqual(routeConfigs(both)[0].pool, "default");
});

Deno.test("routes: default names by position, normalised matches, filters filled in", () => {
  const config = parseConfig(
    `${POOLS}routes:
  - match: { host: API.Example.com, path_prefix: /v1/./x/, methods: [get], headers: { X-Canary: "1" } }
    pool: api
    request_headers: { set: { X-Env: prod } }
  - name: rest
    pool: web
`,
    "config.yaml",
  );
  const [first, second] = config.routes!;
  assert.equal(first.name, "route-1");
  assert.deepEqual(first.match, {
    host: "api.example.com",
    path_prefix: "/v1/x",
    methods: ["GET"],
    headers: { "x-canary": "1" },
  });
  assert.deepEqual(first.request_headers, { set: { "x-env": "prod" }, add: {}, remove: [] });
  assert.equal(second.name, "rest");
});

Deno.test("routes: cross-key errors name the file, the line and the key", () => {
  const cases: [string, string[]][] = [
    [
      "routes:\n  - pool: apx\n",
      ['config.yaml:9 routes.0.pool: expected one of api | web, got "apx"'],
    ],
    [
      "routes:\n  - split: [{ pool: api, weight: 0 }, { pool: web, weight: 0 }]\n",
      ["config.yaml:9 routes.0.split: the split's weights add up to 0: at least one must be above 0"],
    ],
    [
      "routes:\n  - split: [{ pool: api }, { pool: nope }]\n",
      ['config.yaml:9 routes.0.split.1.pool: expected one of api | web, got "nope"'],
    ],
    [
      "routes:\n  - { name: a, match: { path: /a }, pool: api }\n  - { name: a, pool: web }\n",
      ['config.yaml:10 routes.1.name: "a" is routes.0\'s name already: route names must be unique'],
    ],
    [
      "routes:\n  - pool: api\n  - { match: { path: /x }, pool: web }\n",
      [
        "config.yaml:10 routes.1: can never match: routes.0 before it has no match and takes every request",
      ],
    ],
    [
      "routes:\n  - redirect: { scheme: https }\n    rewrite: { host: a }\n",
      [
        "config.yaml:10 routes.0.rewrite: rewrite needs pool or split: a redirect or a fixed response sends nothing upstream",
      ],
    ],
    [
      "routes:\n  - { pool: api, redirect: { scheme: https } }\n",
      [
        "config.yaml:9 routes.0: a route takes one of pool, split, redirect or respond, not pool and redirect",
      ],
    ],
    [
      "routes:\n  - match: { path: /x }\n",
      ["config.yaml:9 routes.0: a route needs one of pool, split, redirect or respond"],
    ],
    [
      "routes:\n  - { match: { path: /x, path_prefix: /y }, pool: api }\n",
      ["config.yaml:9 routes.0.match.path: give path or path_prefix, not both"],
    ],
    [
      "routes:\n  - { rewrite: { path_prefix: / }, pool: api }\n",
      [
        "config.yaml:9 routes.0.rewrite.path_prefix: replaces the matched prefix: give match.path_prefix too",
      ],
    ],
    [
      'routes:\n  - respond: { status: 204, body: "x" }\n',
      ["config.yaml:9 routes.0.respond.body: a 204 answer has no body"],
    ],
    [
      "routes:\n  - { match: { host: api.example.com:8080 }, pool: api }\n",
      [
        'config.yaml:9 routes.0.match.host: expected a host name like "api.example.com" or "*.example.com", without a port, got "api.example.com:8080"',
      ],
    ],
    [
      "routes:\n  - redirect: { status: 200 }\n",
      ["config.yaml:9 routes.0.redirect.status: expected one of 301 | 302 | 303 | 307 | 308, got 200"],
    ],
  ];
  for (const [routes, expected] of cases) {
    assert.deepEqual(problems(POOLS + routes), expected, routes);
  }
});

Deno.test("pools: pools without routes need a default pool; reserved and clashing names", () => {
  assert.deepEqual(problems(POOLS), [
    "config.yaml:2 pools: pools without routes need a pool named default (or top-level backends): without routes, every request goes to default",
  ]);
  assert.deepEqual(
    problems(
      "backends: [{ url: http://127.0.0.1:9001 }]\npools:\n  default: { backends: [{ url: http://127.0.0.1:9002 }] }\n",
    ),
    [
      "config.yaml:3 pools.default: a pool named default beside top-level backends: those backends are the default pool",
    ],
  );
  assert.deepEqual(
    problems(
      "pools:\n  none: { backends: [{ url: http://127.0.0.1:9002 }] }\nroutes: [{ pool: none }]\n",
    ),
    [
      "config.yaml:2 pools.none: the pool name none is reserved: metrics label requests that reached no pool with it",
    ],
  );
  assert.deepEqual(
    problems(
      "pools:\n  api:\n    backends:\n      - url: http://127.0.0.1:9001\n      - url: http://127.0.0.1:9001/\n" +
        "routes: [{ pool: api }]\n",
    ),
    [
      'config.yaml:5 pools.api.backends.1.url: expected a URL no other backend has, got "http://127.0.0.1:9001/" (same as pools.api.backends.0.url)',
    ],
  );
});

Deno.test("pools: only pools and default is enough; the same URL in two pools is allowed", () => {
  const config = parseConfig(
    "pools:\n  default: { backends: [{ url: http://127.0.0.1:9001 }] }\n" +
      "  other: { backends: [{ url: http://127.0.0.1:9001 }] }\n",
    "config.yaml",
  );
  assert.deepEqual(poolConfigs(config).map((pool) => pool.name), ["default", "other"]);
});

Deno.test("--check lists the pools and routes it found", () => {
  const config = parseConfig(
    `${POOLS}routes:
  - { name: api, match: { host: api.example.com }, pool: api }
  - { match: { path_prefix: /v2 }, split: [{ pool: api, weight: 90 }, { pool: web, weight: 10 }] }
  - { match: { host: old.example.com }, redirect: { scheme: https, status: 301 } }
  - { match: { path: /healthz }, respond: { body: "ok" } }
  - pool: web
`,
    "config.yaml",
  );
  assert.deepEqual(summarizeConfig(config).split("\n"), [
    "config ok: listen 0.0.0.0:8080, 2 pools, 5 routes",
    "pool api: strategy random, 1 backend http://127.0.0.1:9001",
    "pool web: strategy round_robin, 1 backend http://127.0.0.1:9101",
    "route api: host api.example.com -> pool api",
    "route route-2: path_prefix /v2 -> split api 90, web 10",
    "route route-3: host old.example.com -> redirect 301 (scheme https)",
    "route route-4: path /healthz -> respond 200",
    "route route-5: every request -> pool web",
  ]);
});

Deno.test("routes: a misspelt match key is one problem, not a catch-all that hides the routes after it", () => {
  assert.deepEqual(
    problems(`${POOLS}routes:\n  - { match: { prefix: /v1 }, pool: api }\n  - pool: web\n`),
    [
      "config.yaml:9 routes.0.match.prefix: unknown key (expected one of host, path_prefix, path, methods, headers, scheme)",
    ],
  );
});

Deno.test("hash, ewma and discovery: defaults, key-by-key pool overrides, errors", () => {
  const config = parseConfig(
    `hash: { key: "header:x-user-id", balance_factor: 125 }
ewma: { decay: 5s }
pools:
  api:
    strategy: consistent_hash
    hash: { key: path }
    discovery: { dns: api.service.consul, port: 8080, nameserver: "127.0.0.1:8600" }
  web:
    backends: [{ url: http://127.0.0.1:9101 }]
routes: [{ pool: api }]
`,
    "config.yaml",
  );
  const [api, web] = poolConfigs(config);
  assert.deepEqual(api.hash, { key: "path", balance_factor: 125 });
  assert.deepEqual(web.hash, { key: "header:x-user-id", balance_factor: 125 });
  assert.deepEqual(api.ewma, { decay: 5000 });
  assert.deepEqual(api.discovery, {
    dns: "api.service.consul",
    type: "A",
    port: 8080,
    scheme: "http",
    interval: 10_000,
    nameserver: { ipAddr: "127.0.0.1", port: 8600 },
  });
  assert.deepEqual(api.backends, []);
  const legacy = poolConfigs(parseConfig("backends: [{ url: http://127.0.0.1:9001 }]\n", "c.yaml"));
  assert.deepEqual(legacy[0].hash, { key: "client_ip", balance_factor: 0 });
  assert.deepEqual(legacy[0].ewma, { decay: 10_000 });

  assert.deepEqual(
    problems(`pools:
  api:
    discovery: { dns: api.test, interval: 500ms, nameserver: localhost }
    hash: { key: "header:", balance_factor: 50 }
  web:
    strategy: random
routes: [{ pool: api }]
`),
    [
      'config.yaml:3 pools.api.discovery.nameserver: expected an address and port like "127.0.0.1:8600" or "[::1]:53", got "localhost"',
      'config.yaml:4 pools.api.hash.key: expected header:NAME, cookie:NAME, query:NAME, client_ip or path, got "header:"',
      "config.yaml:4 pools.api.hash.balance_factor: expected 0 (off) or an integer of at least 100 (percent of the average load), got 50",
    ],
  );
  assert.deepEqual(
    problems(
      "pools:\n  api:\n    discovery: { dns: api.test, interval: 500ms }\n  web:\n    strategy: random\nroutes: [{ pool: api }]\n",
    ),
    [
      "config.yaml:3 pools.api.discovery: A answers carry no port: give discovery.port",
      "config.yaml:3 pools.api.discovery.interval: re-resolving more often than every second is not allowed: give at least 1s",
      "config.yaml:5 pools.web: a pool needs backends, discovery or both",
    ],
  );
});
