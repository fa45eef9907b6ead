/**
 * Tests of the config schema, its defaults and its one-line-per-problem errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Config,
  ConfigError,
  listenClash,
  loadConfig,
  parseConfig,
  parseDuration,
  parseSize,
  summarizeConfig,
} from "../src/config/config.ts";

const BACKEND = "backends:\n  - url: http://127.0.0.1:9001\n";

/** The problems `parseConfig` reports for `text`, one string per line. */
function problems(text: string): string[] {
  try {
    parseConfig(text, "config.yaml");
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.equal(error.message, error.problems.join("\n"));
    return error.message.split("\n");
  }
  assert.fail("expected the config to be rejected");
}

async function with_temp_dir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "config_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("defaults fill every optional section and key", () => {
  const expected: Config = {
    listen: { host: "0.0.0.0", port: 8080 },
    workers: 1,
    strategy: "round_robin",
    transport: "http1",
    backends: [{ url: "http://127.0.0.1:9001", weight: 1, transport: "http1", slow_start: 0 }],
    health_check: {
      path: "/",
      interval: 5000,
      timeout: 2000,
      healthy_threshold: 2,
      unhealthy_threshold: 3,
      passive: {
        consecutive_failures: 5,
        ejection_time: 10_000,
        max_ejection_time: 300_000,
        max_ejection_percent: 50,
      },
    },
    sticky: { cookie: "lb_backend" },
    slow_start: 0,
    retries: { attempts: 2, budget: 20, min: 10, max_body: 65_536 },
    limits: { max_body: 104_857_600, max_in_flight: 0, queue: 100 },
    timeouts: {
      connect: 2000,
      response: 30_000,
      drain: 10_000,
      queue: 1000,
      idle: 60_000,
      pool_idle: 4000,
      tunnel: 3_600_000,
    },
    admin: { listen: null, token: null, explain_from: ["127.0.0.0/8", "::1/128"] },
    logging: { access: "json" },
  };
  assert.deepEqual(parseConfig(BACKEND, "config.yaml"), expected);
});

Deno.test("keys missing inside a section get their defaults; an empty section is all defaults", () => {
  const config = parseConfig(
    `listen: { port: 9000 }\nhealth_check:\n  path: /healthz\nsticky:\ntimeouts: {}\n${BACKEND}`,
    "config.yaml",
  );
  assert.deepEqual(config.listen, { host: "0.0.0.0", port: 9000 });
  assert.deepEqual(config.health_check, {
    path: "/healthz",
    interval: 5000,
    timeout: 2000,
    healthy_threshold: 2,
    unhealthy_threshold: 3,
    passive: {
      consecutive_failures: 5,
      ejection_time: 10_000,
      max_ejection_time: 300_000,
      max_ejection_percent: 50,
    },
  });
  assert.deepEqual(config.sticky, { cookie: "lb_backend" });
  assert.equal(config.timeouts.drain, 10_000);
});

Deno.test("a full config is kept as written", () => {
  const config = parseConfig(
    `listen: { host: 127.0.0.1, port: 0 }
workers: 3
strategy: weighted_round_robin
transport: fetch
backends:
  - url: https://Example.COM:8443/
    weight: 5
    transport: http1
health_check:
  path: /health?full=1
  interval: 1s
  timeout: 500ms
  healthy_threshold: 1
  unhealthy_threshold: 10
  passive:
    consecutive_failures: 3
    ejection_time: 2s
    max_ejection_time: 1m
    max_ejection_percent: 100
sticky:
  cookie: __Host-lb
slow_start: 30s
retries:
  attempts: 3
  budget: 12.5
  min: 0
  max_body: 1MiB
limits:
  max_body: 2 GiB
  max_in_flight: 100
  queue: 0
timeouts:
  connect: 1s
  response: 1m
  drain: 0.5s
  queue: 250ms
  idle: 5s
  pool_idle: 1s
admin:
  listen: { host: "::1", port: 9191 }
  token: s3cret-token-0123456789
  explain_from: [10.0.0.0/8, "fd00::/8", 192.0.2.7]
logging:
  access: common
`,
    "config.yaml",
  );
  assert.deepEqual(config, {
    listen: { host: "127.0.0.1", port: 0 },
    workers: 3,
    strategy: "weighted_round_robin",
    transport: "fetch",
    backends: [{
      url: "https://example.com:8443",
      weight: 5,
      transport: "http1",
      slow_start: 30_000,
    }],
    health_check: {
      path: "/health?full=1",
      interval: 1000,
      timeout: 500,
      healthy_threshold: 1,
      unhealthy_threshold: 10,
      passive: {
        consecutive_failures: 3,
        ejection_time: 2000,
        max_ejection_time: 60_000,
        max_ejection_percent: 100,
      },
    },
    sticky: { cookie: "__Host-lb" },
    slow_start: 30_000,
    retries: { attempts: 3, budget: 12.5, min: 0, max_body: 1_048_576 },
    limits: { max_body: 2_147_483_648, max_in_flight: 100, queue: 0 },
    timeouts: {
      connect: 1000,
      response: 60_000,
      drain: 500,
      queue: 250,
      idle: 5000,
      pool_idle: 1000,
      tunnel: 3_600_000,
    },
    admin: {
      listen: { host: "::1", port: 9191 },
      token: "s3cret-token-0123456789",
      explain_from: ["10.0.0.0/8", "fd00::/8", "192.0.2.7"],
    },
    logging: { access: "common" },
  });
});

Deno.test("a backend's transport defaults to the top-level one", () => {
  const config = parseConfig(
    `transport: fetch
backends:
  - url: http://127.0.0.1:9001
  - url: http://127.0.0.1:9002
    transport: http1
  - url: http://127.0.0.1:9003
    transport: fetch
`,
    "config.yaml",
  );
  assert.deepEqual(config.backends.map((backend) => backend.transport), [
    "fetch",
    "http1",
    "fetch",
  ]);
  assert.deepEqual(
    parseConfig(BACKEND, "config.yaml").backends.map((backend) => backend.transport),
    ["http1"],
  );
});

Deno.test("backend URLs are kept as their normalized origin", () => {
  const config = parseConfig(
    `backends:
  - url: HTTP://LocalHost:80/
  - url: https://[::1]:9443
  - url: http://127.0.0.1:9001
`,
    "config.yaml",
  );
  assert.deepEqual(config.backends.map((backend) => backend.url), [
    "http://localhost",
    "https://[::1]:9443",
    "http://127.0.0.1:9001",
  ]);
});

Deno.test("parseDuration reads units and plain milliseconds", () => {
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("5s"), 5000);
  assert.equal(parseDuration("1m"), 60_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("1.1s"), 1100);
  assert.equal(parseDuration(1500), 1500);
  assert.equal(parseDuration(0), 0);
  for (const bad of ["5", "5 s", "5sec", "-5s", "s", "", "1m30s", " 5s"]) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
});

Deno.test("durations in the config become milliseconds", () => {
  const config = parseConfig(
    `${BACKEND}health_check: { interval: 250ms, timeout: 1500 }
timeouts: { connect: 5s, response: 1m, drain: 24h }
`,
    "config.yaml",
  );
  assert.equal(config.health_check.interval, 250);
  assert.equal(config.health_check.timeout, 1500);
  assert.deepEqual(
    [config.timeouts.connect, config.timeouts.response, config.timeouts.drain],
    [5000, 60_000, 86_400_000],
  );
});

Deno.test("unknown top-level key", () => {
  assert.deepEqual(problems(`strategi: random\n${BACKEND}`), [
    "config.yaml:1 strategi: unknown key (expected one of listen, workers, strategy, transport, backends, health_check, sticky, slow_start, retries, limits, timeouts, admin, logging, hash, ewma, pools, routes)",
  ]);
});

Deno.test("unknown nested key points at the key", () => {
  assert.deepEqual(problems(`listen:\n  prot: 8080\n${BACKEND}`), [
    "config.yaml:2 listen.prot: unknown key (expected one of host, port, tls)",
  ]);
  assert.deepEqual(problems(`${BACKEND}    wieght: 2\n`), [
    "config.yaml:3 backends.0.wieght: unknown key (expected one of url, weight, transport, slow_start)",
  ]);
  assert.deepEqual(problems(`${BACKEND}timeouts: { connect: 1s, respone: 2s }\n`), [
    "config.yaml:3 timeouts.respone: unknown key (expected one of connect, response, drain, queue, idle, pool_idle, tunnel)",
  ]);
});

Deno.test("wrong enum value", () => {
  assert.deepEqual(problems(`listen:\n  port: 8080\nstrategy: round-robin\n${BACKEND}`), [
    'config.yaml:3 strategy: expected one of round_robin | weighted_round_robin | random | sticky | least_connections | p2c_ewma | consistent_hash, got "round-robin"',
  ]);
  assert.deepEqual(problems(`${BACKEND}    transport: http2\n`), [
    'config.yaml:3 backends.0.transport: expected one of http1 | fetch, got "http2"',
  ]);
  assert.deepEqual(problems(`transport: 1\n${BACKEND}`), [
    "config.yaml:1 transport: expected one of http1 | fetch, got 1",
  ]);
});

Deno.test("wrong type", () => {
  assert.deepEqual(problems(`listen: { port: "8080" }\n${BACKEND}`), [
    'config.yaml:1 listen.port: expected an integer from 0 to 65535, got "8080"',
  ]);
  assert.deepEqual(problems(`listen: 8080\n${BACKEND}`), [
    "config.yaml:1 listen: expected a mapping with keys host, port, tls, got 8080",
  ]);
  assert.deepEqual(problems("backends: http://127.0.0.1:9001\n"), [
    'config.yaml:1 backends: expected a list of backends, got "http://127.0.0.1:9001"',
  ]);
  assert.deepEqual(problems("backends:\n  - http://127.0.0.1:9001\n"), [
    'config.yaml:2 backends.0: expected a mapping with keys url, weight, transport, slow_start, got "http://127.0.0.1:9001"',
  ]);
  assert.deepEqual(problems(`${BACKEND}health_check:\n  healthy_threshold: [2]\n`), [
    "config.yaml:4 health_check.healthy_threshold: expected an integer >= 1, got [2]",
  ]);
});

Deno.test("listen port out of range", () => {
  assert.deepEqual(problems(`listen: { port: 65536 }\n${BACKEND}`), [
    "config.yaml:1 listen.port: expected an integer from 0 to 65535, got 65536",
  ]);
  assert.deepEqual(problems(`listen: { port: -1 }\n${BACKEND}`), [
    "config.yaml:1 listen.port: expected an integer from 0 to 65535, got -1",
  ]);
});

Deno.test("weight 0 or not an integer", () => {
  const prefix = "listen:\n  host: 0.0.0.0\n  port: 8080\nstrategy: weighted_round_robin\n";
  assert.deepEqual(problems(`${prefix}${BACKEND}    weight: 0\n`), [
    "config.yaml:7 backends.0.weight: expected an integer >= 1, got 0",
  ]);
  assert.deepEqual(problems(`${BACKEND}    weight: 1.5\n`), [
    "config.yaml:3 backends.0.weight: expected an integer >= 1, got 1.5",
  ]);
  assert.deepEqual(problems(`${BACKEND}    weight: "2"\n`), [
    'config.yaml:3 backends.0.weight: expected an integer >= 1, got "2"',
  ]);
  assert.deepEqual(problems(`${BACKEND}    weight: 1000001\n`), [
    "config.yaml:3 backends.0.weight: expected an integer <= 1000000, got 1000001",
  ]);
});

Deno.test("workers: auto is the CPU count; anything but 1 to 64 is refused", () => {
  assert.equal(
    parseConfig(`workers: auto\n${BACKEND}`, "config.yaml").workers,
    navigator.hardwareConcurrency,
  );
  assert.equal(parseConfig(`workers: 4\n${BACKEND}`, "config.yaml").workers, 4);
  const expected = 'expected "auto" (one per CPU) or an integer from 1 to 64';
  for (const value of ["0", "65", "1.5", "many"]) {
    const shown = value === "many" ? '"many"' : value;
    assert.deepEqual(problems(`workers: ${value}\n${BACKEND}`), [
      `config.yaml:1 workers: ${expected}, got ${shown}`,
    ]);
  }
});

Deno.test("thresholds are integers >= 1", () => {
  assert.deepEqual(
    problems(`${BACKEND}health_check:\n  healthy_threshold: 0\n  unhealthy_threshold: 2.5\n`),
    [
      "config.yaml:4 health_check.healthy_threshold: expected an integer >= 1, got 0",
      "config.yaml:5 health_check.unhealthy_threshold: expected an integer >= 1, got 2.5",
    ],
  );
});

Deno.test("bad duration string", () => {
  assert.deepEqual(problems(`${BACKEND}health_check:\n  interval: 5 sec\n`), [
    'config.yaml:4 health_check.interval: expected a duration like "250ms", "5s", "1m" or a number of milliseconds, got "5 sec"',
  ]);
  assert.deepEqual(problems(`${BACKEND}timeouts:\n  connect: true\n`), [
    'config.yaml:4 timeouts.connect: expected a duration like "250ms", "5s", "1m" or a number of milliseconds, got true',
  ]);
});

Deno.test("durations out of bounds", () => {
  assert.deepEqual(
    problems(`${BACKEND}timeouts:\n  connect: 0s\n  response: 25h\n  drain: 0\n`),
    [
      'config.yaml:4 timeouts.connect: expected a duration from 1ms to 24h, got "0s"',
      'config.yaml:5 timeouts.response: expected a duration from 1ms to 24h, got "25h"',
      "config.yaml:6 timeouts.drain: expected a duration from 1ms to 24h, got 0",
    ],
  );
});

Deno.test("empty backend list", () => {
  assert.deepEqual(problems("listen:\n  port: 8080\nstrategy: random\nbackends: []\n"), [
    "config.yaml:4 backends: expected at least one backend, got []",
  ]);
  assert.deepEqual(problems("strategy: random\nbackends:\n"), [
    "config.yaml:2 backends: expected a list of backends, got null",
  ]);
});

Deno.test("missing backends", () => {
  assert.deepEqual(problems("strategy: random\n"), [
    "config.yaml:1 backends: expected a list of backends, got nothing (the key is missing)",
  ]);
  assert.deepEqual(problems("backends:\n  - weight: 2\n"), [
    'config.yaml:2 backends.0.url: expected an absolute http:// or https:// URL like "http://127.0.0.1:9001", got nothing (the key is missing)',
  ]);
});

Deno.test("invalid backend URL", () => {
  assert.deepEqual(problems("backends:\n  - url: not a url\n  - url: 127.0.0.1:9001\n"), [
    'config.yaml:2 backends.0.url: expected an absolute http:// or https:// URL like "http://127.0.0.1:9001", got "not a url"',
    'config.yaml:3 backends.1.url: expected an absolute http:// or https:// URL like "http://127.0.0.1:9001", got "127.0.0.1:9001"',
  ]);
  assert.deepEqual(problems("backends:\n  - url: 9001\n"), [
    'config.yaml:2 backends.0.url: expected an absolute http:// or https:// URL like "http://127.0.0.1:9001", got 9001',
  ]);
});

Deno.test("backend URL with a scheme other than http(s)", () => {
  assert.deepEqual(problems("backends:\n  - url: ftp://127.0.0.1:9001\n"), [
    'config.yaml:2 backends.0.url: expected an http:// or https:// URL, got "ftp://127.0.0.1:9001"',
  ]);
  assert.deepEqual(problems("backends:\n  - url: ws://127.0.0.1:9001\n"), [
    'config.yaml:2 backends.0.url: expected an http:// or https:// URL, got "ws://127.0.0.1:9001"',
  ]);
});

Deno.test("backend URL with a path, query, fragment or credentials", () => {
  assert.deepEqual(
    problems(`backends:
  - url: http://127.0.0.1:9001/api
  - url: http://127.0.0.1:9002?x=1
  - url: http://127.0.0.1:9003/#top
  - url: http://user:secret@127.0.0.1:9004
`),
    [
      'config.yaml:2 backends.0.url: expected a URL without a path (at most a trailing "/"), got "http://127.0.0.1:9001/api"',
      'config.yaml:3 backends.1.url: expected a URL without a query or fragment, got "http://127.0.0.1:9002?x=1"',
      'config.yaml:4 backends.2.url: expected a URL without a query or fragment, got "http://127.0.0.1:9003/#top"',
      'config.yaml:5 backends.3.url: expected a URL without credentials, got "http://user:secret@127.0.0.1:9004"',
    ],
  );
});

Deno.test("duplicate backend URLs, also after normalization", () => {
  assert.deepEqual(
    problems(`backends:
  - url: http://127.0.0.1:9001
  - url: http://127.0.0.1:9002
  - url: http://127.0.0.1:9001/
    weight: 2
`),
    [
      'config.yaml:4 backends.2.url: expected a URL no other backend has, got "http://127.0.0.1:9001/" (same as backends.0.url)',
    ],
  );
});

Deno.test("duplicates are reported alongside other problems", () => {
  assert.deepEqual(
    problems(`backends:
  - url: http://127.0.0.1:9001
  - url: http://127.0.0.1:9001
    weight: 0
`),
    [
      'config.yaml:3 backends.1.url: expected a URL no other backend has, got "http://127.0.0.1:9001" (same as backends.0.url)',
      "config.yaml:4 backends.1.weight: expected an integer >= 1, got 0",
    ],
  );
});

Deno.test("sticky cookie must be a token, health check path must start with one slash", () => {
  assert.deepEqual(
    problems(
      `${BACKEND}sticky: { cookie: "lb backend" }\nhealth_check: { path: //other.example/ }\n`,
    ),
    [
      'config.yaml:3 sticky.cookie: expected a cookie name made of letters, digits and !#$%&\'*+-.^_`|~, got "lb backend"',
      'config.yaml:4 health_check.path: expected a path starting with a single "/", without spaces or "#", got "//other.example/"',
    ],
  );
  assert.deepEqual(problems(`${BACKEND}health_check: { path: healthz }\n`), [
    'config.yaml:3 health_check.path: expected a path starting with a single "/", without spaces or "#", got "healthz"',
  ]);
});

Deno.test("several problems are listed one per line in file order", () => {
  assert.deepEqual(
    problems(`timeouts:
  drain: forever
strategy: fastest
listen:
  prot: 80
`),
    [
      "config.yaml:1 backends: expected a list of backends, got nothing (the key is missing)",
      'config.yaml:2 timeouts.drain: expected a duration like "250ms", "5s", "1m" or a number of milliseconds, got "forever"',
      'config.yaml:3 strategy: expected one of round_robin | weighted_round_robin | random | sticky | least_connections | p2c_ewma | consistent_hash, got "fastest"',
      "config.yaml:5 listen.prot: unknown key (expected one of host, port, tls)",
    ],
  );
});

Deno.test("invalid YAML syntax names the line", () => {
  assert.deepEqual(problems("backends:\n  - url: [http://127.0.0.1:9001\nstrategy: random\n"), [
    "config.yaml:3: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
  ]);
  assert.deepEqual(problems(`strategy: random\n${BACKEND}strategy: sticky\n`), [
    "config.yaml:4: invalid YAML: Map keys must be unique",
  ]);
  assert.deepEqual(problems(`${BACKEND}  - url: *missing\n`), [
    "config.yaml:3: invalid YAML: Unresolved alias (the anchor must be set before the alias): missing",
  ]);
});

Deno.test("empty file", () => {
  const expected = [
    "config.yaml:1: expected a mapping with at least a backends key, got an empty file",
  ];
  assert.deepEqual(problems(""), expected);
  assert.deepEqual(problems("# nothing here yet\n\n"), expected);
});

Deno.test("a document that is not a mapping", () => {
  assert.deepEqual(problems("- url: http://127.0.0.1:9001\n"), [
    'config.yaml:1: expected a mapping with keys listen, workers, strategy, transport, backends, health_check, sticky, slow_start, retries, limits, timeouts, admin, logging, hash, ewma, pools, routes, got [{"url":"http://127.0.0.1:9001"}]',
  ]);
});

Deno.test("the file name given prefixes every problem", () => {
  assert.throws(() => parseConfig("strategy: random\n", "/etc/lb/prod.yaml"), {
    name: "ConfigError",
    message:
      "/etc/lb/prod.yaml:1 backends: expected a list of backends, got nothing (the key is missing)",
  });
});

Deno.test("missing file", async () => {
  await with_temp_dir(async (dir) => {
    const path = `${dir}/other.yaml`;
    await assert.rejects(loadConfig(path), {
      name: "ConfigError",
      message: `${path}: cannot read file: not found`,
    });
  });
});

Deno.test("a directory cannot be read as a config file", async () => {
  await with_temp_dir(async (dir) => {
    await assert.rejects(loadConfig(dir), {
      name: "ConfigError",
      message: `${dir}: cannot read file: is a directory`,
    });
  });
});

Deno.test("loadConfig reads and validates a file", async () => {
  await with_temp_dir(async (dir) => {
    const path = `${dir}/config.yaml`;
    await Deno.writeTextFile(path, `strategy: sticky\n${BACKEND}`);
    const config = await loadConfig(path);
    assert.equal(config.strategy, "sticky");
    assert.equal(config.backends[0].url, "http://127.0.0.1:9001");

    await Deno.writeTextFile(path, "strategy: sticky\n");
    await assert.rejects(loadConfig(path), {
      name: "ConfigError",
      message: `${path}:1 backends: expected a list of backends, got nothing (the key is missing)`,
    });
  });
});

Deno.test("summarizeConfig gives the one-line --check summary", () => {
  const three = parseConfig(
    `backends:
  - url: http://127.0.0.1:9001
  - url: http://127.0.0.1:9002
  - url: http://127.0.0.1:9003
`,
    "config.yaml",
  );
  assert.equal(
    summarizeConfig(three),
    "config ok: listen 0.0.0.0:8080, strategy round_robin, 3 backends",
  );
  const one = parseConfig(`listen: { host: "::1", port: 9000 }\nstrategy: sticky\n${BACKEND}`, "x");
  assert.equal(summarizeConfig(one), "config ok: listen [::1]:9000, strategy sticky, 1 backend");
});

Deno.test("admin: absent means no listener; present, even empty, listens on 127.0.0.1:9090", () => {
  assert.equal(parseConfig(BACKEND, "config.yaml").admin.listen, null);
  for (const section of ["admin:\n", "admin: {}\n", "admin: { token: 0123456789abcdef }\n"]) {
    assert.deepEqual(
      parseConfig(`${BACKEND}${section}`, "config.yaml").admin.listen,
      { host: "127.0.0.1", port: 9090 },
      section,
    );
  }
});

Deno.test("admin: token, explain_from and the listen address are checked", () => {
  assert.deepEqual(
    problems(
      `${BACKEND}admin:\n  token: short secret\n  explain_from: [10.0.0.0/8, 10.0.0.0/33, "::1/129", x]\n`,
    ),
    [
      'config.yaml:4 admin.token: expected a token of at least 16 printable characters without spaces, got "short secret"',
      'config.yaml:5 admin.explain_from.1: expected a CIDR block like "10.0.0.0/8" or "::1/128", got "10.0.0.0/33"',
      'config.yaml:5 admin.explain_from.2: expected a CIDR block like "10.0.0.0/8" or "::1/128", got "::1/129"',
      'config.yaml:5 admin.explain_from.3: expected a CIDR block like "10.0.0.0/8" or "::1/128", got "x"',
    ],
  );
  assert.deepEqual(problems(`${BACKEND}admin: { explain_from: 10.0.0.0/8 }\n`), [
    'config.yaml:3 admin.explain_from: expected a list of CIDR blocks, got "10.0.0.0/8"',
  ]);
});

Deno.test("admin: the admin listener may not share the proxy's address", () => {
  assert.deepEqual(problems(`${BACKEND}admin:\n  listen: { port: 8080 }\n`), [
    "config.yaml:4 admin.listen.port: expected a port other than the proxy's (listen 0.0.0.0:8080), got 8080",
  ]);
  assert.deepEqual(
    problems(
      `listen: { host: 127.0.0.1, port: 7000 }\n${BACKEND}admin: { listen: { port: 7000 } }\n`,
    ),
    [
      "config.yaml:4 admin.listen.port: expected a port other than the proxy's (listen 127.0.0.1:7000), got 7000",
    ],
  );
  const apart = parseConfig(
    `listen: { host: 127.0.0.1, port: 7000 }\n${BACKEND}admin: { listen: { host: 127.0.0.2, port: 7000 } }\n`,
    "config.yaml",
  );
  assert.deepEqual(apart.admin.listen, { host: "127.0.0.2", port: 7000 });
  assert.equal(listenClash({ host: "0.0.0.0", port: 0 }, { host: "0.0.0.0", port: 0 }), undefined);
});

Deno.test("logging: access is json by default, common or off when asked, nothing else", () => {
  assert.equal(parseConfig(`${BACKEND}logging:\n`, "config.yaml").logging.access, "json");
  assert.equal(parseConfig(`${BACKEND}logging: { access: off }\n`, "c").logging.access, "off");
  assert.deepEqual(problems(`${BACKEND}logging:\n  access: combined\n`), [
    'config.yaml:4 logging.access: expected one of json | common | off, got "combined"',
  ]);
});

Deno.test("parseSize reads B, KiB, MiB, GiB and plain bytes", () => {
  assert.equal(parseSize("512B"), 512);
  assert.equal(parseSize("64KiB"), 65_536);
  assert.equal(parseSize("100MiB"), 104_857_600);
  assert.equal(parseSize("1.5GiB"), 1_610_612_736);
  assert.equal(parseSize(1000), 1000);
  for (const bad of ["64KB", "64kib", "64", "-1B", "", "1 2B"]) {
    assert.equal(parseSize(bad), undefined, bad);
  }
});

Deno.test("slow start: 0s is off, a backend's own value wins over the top-level one", () => {
  const config = parseConfig(
    "slow_start: 20s\nbackends:\n  - url: http://127.0.0.1:9001\n" +
      "  - url: http://127.0.0.1:9002\n    slow_start: 0s\n",
    "config.yaml",
  );
  assert.deepEqual(config.backends.map((backend) => backend.slow_start), [20_000, 0]);
});

Deno.test("sizes, percents, attempts and limits are checked like every other key", () => {
  assert.deepEqual(
    problems(
      `${BACKEND}retries:\n  attempts: 0\n  budget: 101\n  min: -1\n  max_body: 64KB\n` +
        "limits:\n  max_body: -5\n  max_in_flight: 1.5\n  queue: many\n" +
        "health_check:\n  passive: { consecutive_failures: 0, max_ejection_percent: -1 }\n" +
        "timeouts: { queue: 0s, idle: 0, pool_idle: 25h }\nslow_start: -1s\n",
    ),
    [
      "config.yaml:4 retries.attempts: expected an integer >= 1, got 0",
      "config.yaml:5 retries.budget: expected a percent from 0 to 100, got 101",
      "config.yaml:6 retries.min: expected an integer >= 0, got -1",
      'config.yaml:7 retries.max_body: expected a size like "64KiB", "100MiB" (B, KiB, MiB, GiB) or a number of bytes, got "64KB"',
      "config.yaml:9 limits.max_body: expected a size from 0 to 1TiB, got -5",
      "config.yaml:10 limits.max_in_flight: expected an integer >= 0, got 1.5",
      'config.yaml:11 limits.queue: expected an integer >= 0, got "many"',
      "config.yaml:13 health_check.passive.consecutive_failures: expected an integer >= 1, got 0",
      "config.yaml:13 health_check.passive.max_ejection_percent: expected a percent from 0 to 100, got -1",
      'config.yaml:14 timeouts.queue: expected a duration from 1ms to 24h, got "0s"',
      "config.yaml:14 timeouts.idle: expected a duration from 1ms to 24h, got 0",
      'config.yaml:14 timeouts.pool_idle: expected a duration from 1ms to 24h, got "25h"',
      'config.yaml:15 slow_start: expected a duration like "250ms", "5s", "1m" or a number of milliseconds, got "-1s"',
    ],
  );
});
