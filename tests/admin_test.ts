/**
 * The admin API against a real balancer and real backends: every endpoint,
 * its token checks, and its answers to bad input.
 */

import assert from "node:assert/strict";
import type { Decision } from "../src/observability/explain.ts";
import type { Status } from "../src/observability/telemetry.ts";
import {
  adminUrl,
  adminYaml,
  backendsYaml,
  baseUrl,
  defaultPool,
  getJson,
  parsePrometheus,
  sampleValue,
  startBackend,
  startHoldingBackend,
  startNamedBackend,
  startRawBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const TOKEN = "test-token-0123456789";

/** A backend URL nothing listens on. */
async function deadBackendUrl(): Promise<string> {
  const backend = startBackend(() => new Response("never"));
  await backend.close();
  return backend.url;
}

async function post(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, { method: "POST", ...init });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

Deno.test("admin: without an admin section there is no admin listener", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]));
  assert.equal(lb.adminAddr, null);
});

Deno.test("admin: GET /status has the strategy, the config without the token, and every backend", async () => {
  await using live = startHoldingBackend("/slow", "ok");
  const dead = await deadBackendUrl();
  await using lb = startTestBalancer(
    `strategy: weighted_round_robin\nbackends:\n  - url: ${live.url}\n    weight: 3\n  - url: ${dead}\n` +
      "health_check: { interval: 1m, unhealthy_threshold: 1 }\n" +
      adminYaml(`  token: ${TOKEN}\n  explain_from: [10.0.0.0/8]\n`),
  );
  await lb.ready;
  for (let i = 0; i < 5; i++) await (await fetch(baseUrl(lb))).text();
  const slow = fetch(`${baseUrl(lb)}/slow`);
  await live.arrived;

  const status = await getJson<Status>(`${adminUrl(lb)}/status`);
  assert.equal(status.strategy, "weighted_round_robin");
  assert.equal(JSON.stringify(status).includes(TOKEN), false, "the token never shows");
  assert.deepEqual(status.config.admin, {
    listen: { host: "127.0.0.1", port: 0 },
    explain_from: ["10.0.0.0/8"],
    writes_enabled: true,
  });
  assert.equal(status.config.health_check.interval, 60_000);
  const [up, down] = status.backends;
  assert.deepEqual(
    { ...up, latency_ms: undefined, last_check: undefined },
    {
      id: defaultPool(lb).balancer.backends[0].id,
      url: live.url,
      state: "up",
      weight: 3,
      effective_weight: 3,
      in_flight: 1,
      latency_ms: undefined,
      last_check: undefined,
    },
  );
  for (const quantile of ["p50", "p95", "p99"] as const) {
    assert.equal(typeof up.latency_ms[quantile], "number", quantile);
  }
  assert.ok(up.latency_ms.p50! <= up.latency_ms.p99!);
  assert.equal(up.last_check?.ok, true);
  assert.equal(up.last_check?.detail, "health check passed");
  assert.ok(Math.abs(Date.parse(up.last_check!.at) - Date.now()) < 60_000);
  assert.equal(down.state, "down");
  assert.equal(down.in_flight, 0);
  assert.deepEqual(down.latency_ms, { p50: null, p95: null, p99: null });
  assert.equal(down.last_check?.ok, false);
  assert.match(down.last_check!.detail, /refused/);

  live.release();
  assert.equal(await (await slow).text(), "ok");
  await waitFor(async () => {
    const after = await getJson<Status>(`${adminUrl(lb)}/status`);
    return after.backends[0].in_flight === 0;
  }, "in_flight back to 0");
});

Deno.test("admin: GET /metrics counts requests, errors, retries, health and connections", async () => {
  let probes = 0;
  await using live = startBackend((request) => {
    if (!request.headers.has("x-forwarded-for")) probes++;
    return new Response(null, { status: new URL(request.url).pathname === "/missing" ? 404 : 204 });
  });
  const dead = await deadBackendUrl();
  await using lb = startTestBalancer(
    `strategy: round_robin\n${backendsYaml([dead, live.url])}` +
      "health_check: { interval: 20ms, unhealthy_threshold: 100 }\n" + adminYaml(),
  );
  await lb.ready;
  // The dead backend comes first in rotation: the first request is retried on the live one.
  for (const path of ["/", "/", "/missing"]) {
    await (await fetch(`${baseUrl(lb)}${path}`)).body?.cancel();
  }
  // Health probes keep running meanwhile: they must not count as requests.
  const probesBefore = probes;
  await waitFor(() => probes >= probesBefore + 3, "three more probe rounds");
  const response = await fetch(`${adminUrl(lb)}/metrics`);
  assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const metrics = parsePrometheus(await response.text());

  assert.equal(metrics.get("lb_requests_total")?.type, "counter");
  assert.equal(sampleValue(metrics, "lb_requests_total", { backend: live.url, code: "2xx" }), 2);
  assert.equal(sampleValue(metrics, "lb_requests_total", { backend: live.url, code: "4xx" }), 1);
  assert.equal(sampleValue(metrics, "lb_requests_total", { backend: dead, code: "2xx" }), 0);
  assert.equal(sampleValue(metrics, "lb_requests_total", { backend: "none", code: "5xx" }), 0);
  for (const name of ["lb_request_duration_seconds", "lb_upstream_duration_seconds"]) {
    assert.equal(metrics.get(name)?.type, "histogram", name);
    assert.equal(sampleValue(metrics, `${name}_count`, { backend: live.url }), 3, name);
    assert.equal(sampleValue(metrics, `${name}_bucket`, { backend: live.url, le: "+Inf" }), 3);
    assert.ok(sampleValue(metrics, `${name}_sum`, { backend: live.url }) > 0, name);
  }
  assert.equal(sampleValue(metrics, "lb_added_latency_seconds_count", { backend: live.url }), 3);
  assert.equal(
    sampleValue(metrics, "lb_upstream_errors_total", { backend: dead, kind: "connect" }),
    1,
  );
  assert.equal(
    sampleValue(metrics, "lb_upstream_errors_total", { backend: dead, kind: "reset" }),
    0,
  );
  assert.equal(sampleValue(metrics, "lb_retries_total", { backend: dead }), 1);
  assert.equal(sampleValue(metrics, "lb_retries_total", { backend: live.url }), 0);
  assert.equal(sampleValue(metrics, "lb_backend_up", { backend: dead }), 0);
  assert.equal(sampleValue(metrics, "lb_backend_up", { backend: live.url }), 1);
  assert.equal(sampleValue(metrics, "lb_in_flight_requests", { backend: live.url }), 0);
  assert.equal(
    sampleValue(metrics, "lb_upstream_connections", { backend: live.url, state: "idle" }),
    1,
    "the keep-alive connection waits in the pool",
  );
  assert.equal(
    sampleValue(metrics, "lb_upstream_connections", { backend: live.url, state: "active" }),
    0,
  );
  assert.equal(
    sampleValue(metrics, "lb_upstream_connections_opened_total", { backend: live.url }),
    1,
  );
  assert.equal(
    sampleValue(metrics, "lb_upstream_connection_reuses_total", { backend: live.url }),
    2,
  );
  assert.equal(sampleValue(metrics, "lb_config_reloads_total", { result: "success" }), 0);
  assert.equal(sampleValue(metrics, "lb_config_reloads_total", { result: "failure" }), 0);
  // Buckets are cumulative and end with the count.
  const buckets = metrics.get("lb_request_duration_seconds")!.samples
    .filter((s) => s.name.endsWith("_bucket") && s.labels.backend === live.url)
    .map((s) => s.value);
  assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b));
});

Deno.test("admin: upstream errors are counted by kind", async () => {
  const { promise: done, resolve: finish } = Promise.withResolvers<void>();
  await using invalid = startRawBackend(async (conn) => {
    await conn.read(new Uint8Array(4096));
    await conn.write(new TextEncoder().encode("SMTP ready\r\n\r\n"));
  });
  await using reset = startRawBackend(async (conn) => {
    await conn.read(new Uint8Array(4096));
  });
  await using silent = startRawBackend(async (conn) => {
    await conn.read(new Uint8Array(4096));
    await done;
  });
  await using lb = startTestBalancer(
    backendsYaml([invalid.url, reset.url, silent.url]) +
      "health_check: { interval: 1h, unhealthy_threshold: 100 }\n" +
      "retries: { attempts: 1 }\ntimeouts: { response: 200ms }\n" + adminYaml(),
  );
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`${baseUrl(lb)}/`);
    await response.body?.cancel();
    statuses.push(response.status);
  }
  finish();
  assert.deepEqual(statuses, [502, 502, 504]);
  const metrics = parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text());
  const errors = (url: string, kind: string) =>
    sampleValue(metrics, "lb_upstream_errors_total", { backend: url, kind });
  assert.equal(errors(invalid.url, "invalid_response"), 1);
  assert.equal(errors(reset.url, "reset"), 1);
  assert.equal(errors(silent.url, "timeout"), 1);
  assert.equal(errors(silent.url, "reset"), 0);
  assert.equal(sampleValue(metrics, "lb_requests_total", { backend: silent.url, code: "5xx" }), 1);
});

Deno.test("admin: writes are disabled without a token: 403 saying so", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]) + adminYaml());
  const id = defaultPool(lb).balancer.backends[0].id;
  const denied = await post(`${adminUrl(lb)}/backends/${id}/drain`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(denied.status, 403);
  assert.equal(denied.text, "403 Forbidden: writes are disabled: set admin.token\n");
  assert.equal(defaultPool(lb).balancer.backends[0].draining, false);
});

Deno.test("admin: a missing or wrong token is 401 with WWW-Authenticate", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(
    backendsYaml([backend.url]) + adminYaml(`  token: ${TOKEN}\n`),
  );
  const url = `${adminUrl(lb)}/backends/${defaultPool(lb).balancer.backends[0].id}/drain`;
  for (
    const [authorization, reason] of [
      [undefined, "a Bearer token is required"],
      [`Bearer ${TOKEN}x`, "the Bearer token is wrong"],
      [`Basic ${btoa(`admin:${TOKEN}`)}`, "the Bearer token is wrong"],
      [`Bearer ${TOKEN.slice(0, -1)}`, "the Bearer token is wrong"],
    ]
  ) {
    const headers: HeadersInit = authorization === undefined ? {} : { authorization };
    const answer = await post(url, { headers });
    assert.equal(answer.status, 401, authorization);
    assert.equal(answer.text, `401 Unauthorized: ${reason}\n`);
    assert.match(answer.headers.get("www-authenticate")!, /^Bearer /);
  }
  assert.equal(defaultPool(lb).balancer.backends[0].draining, false);
});

Deno.test("admin: drain takes a backend out of rotation gracefully, enable brings it back", async () => {
  const { promise: release, resolve: releaseSlow } = Promise.withResolvers<void>();
  const { promise: arrived, resolve: onArrive } = Promise.withResolvers<void>();
  const first = startBackend(async (request) => {
    if (new URL(request.url).pathname === "/slow") {
      onArrive();
      await release;
      return new Response("slow done");
    }
    return new Response("first");
  });
  await using _first = first;
  await using second = startBackend(() => new Response("second"));
  await using lb = startTestBalancer(
    backendsYaml([first.url, second.url]) + adminYaml(`  token: ${TOKEN}\n`),
  );
  const [a] = defaultPool(lb).balancer.backends;
  const slow = fetch(`${baseUrl(lb)}/slow`); // round robin: the first backend
  await arrived;
  const auth = { authorization: `Bearer ${TOKEN}` };

  const drained = await post(`${adminUrl(lb)}/backends/${a.id}/drain`, { headers: auth });
  assert.equal(drained.status, 200);
  assert.deepEqual(JSON.parse(drained.text), { id: a.id, url: first.url, state: "draining" });
  for (let i = 0; i < 4; i++) assert.equal(await (await fetch(baseUrl(lb))).text(), "second");
  releaseSlow();
  assert.equal(await (await slow).text(), "slow done", "the in-flight request finished");
  assert.equal(a.healthy, true, "draining leaves the health flag alone");
  const status = await getJson<Status>(`${adminUrl(lb)}/status`);
  assert.equal(status.backends[0].state, "draining");

  const enabled = await post(`${adminUrl(lb)}/backends/${a.id}/enable`, { headers: auth });
  assert.equal(JSON.parse(enabled.text).state, "up");
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await (await fetch(baseUrl(lb))).text());
  assert.deepEqual([...seen].sort(), ["first", "second"]);
});

Deno.test("admin: every strategy skips a draining backend", async () => {
  await using first = startBackend(() => new Response("first"));
  await using second = startBackend(() => new Response("second"));
  for (const strategy of ["round_robin", "weighted_round_robin", "random", "sticky"]) {
    await using lb = startTestBalancer(
      `strategy: ${strategy}\n${backendsYaml([first.url, second.url])}`,
    );
    defaultPool(lb).balancer.backends[1].draining = true;
    const cookie = `lb_backend=${defaultPool(lb).balancer.backends[1].id}`;
    for (let i = 0; i < 6; i++) {
      const response = await fetch(baseUrl(lb), { headers: { cookie } });
      assert.equal(await response.text(), "first", strategy);
    }
  }
});

Deno.test("admin: unknown ids, paths and methods get a clear 4xx", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(
    backendsYaml([backend.url]) + adminYaml(`  token: ${TOKEN}\n`),
  );
  const auth = { authorization: `Bearer ${TOKEN}` };
  const unknown = await post(`${adminUrl(lb)}/backends/ffffffff/drain`, { headers: auth });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.text, "404 Not Found: no backend has the id ffffffff\n");
  const path = await fetch(`${adminUrl(lb)}/nope`);
  assert.equal(path.status, 404);
  assert.equal(await path.text(), "404 Not Found: no such endpoint: /nope\n");
  const method = await fetch(
    `${adminUrl(lb)}/backends/${defaultPool(lb).balancer.backends[0].id}/drain`,
  );
  assert.equal(method.status, 405);
  assert.equal(method.headers.get("allow"), "POST");
  assert.equal(
    await method.text(),
    "405 Method Not Allowed: /backends/" +
      `${defaultPool(lb).balancer.backends[0].id}/drain takes POST, not GET\n`,
  );
  const write = await post(`${adminUrl(lb)}/status`);
  assert.equal(write.status, 405);
  assert.equal(write.headers.get("allow"), "GET");
});

Deno.test("admin: POST /explain says which backend would be chosen and why, sending nothing", async () => {
  let received = 0;
  await using first = startBackend((request) => {
    if (request.headers.has("x-forwarded-for")) received++;
    return new Response("first");
  });
  await using second = startBackend(() => new Response("second"));
  await using third = startBackend(() => new Response("third"));
  await using lb = startTestBalancer(
    `strategy: sticky\n${backendsYaml([first.url, second.url, third.url])}` + adminYaml(),
  );
  const [a, b, c] = defaultPool(lb).balancer.backends;
  b.draining = true;
  c.healthy = false;
  const explainUrl = `${adminUrl(lb)}/explain`;
  const ask = async (body: unknown) =>
    await getJson<Decision>(explainUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  const hit = await ask({
    method: "GET",
    path: "/cart",
    headers: { cookie: `lb_backend=${a.id}` },
  });
  assert.deepEqual(hit, {
    backend: a.id,
    strategy: "sticky",
    candidates: [
      { id: a.id, url: first.url, eligible: true, reason: "up" },
      { id: b.id, url: second.url, eligible: false, reason: "draining" },
      { id: c.id, url: third.url, eligible: false, reason: "down" },
    ],
    sticky: { hit: true, reason: `lb_backend names ${a.id}` },
  });
  const miss = await ask({ path: "/", headers: { cookie: `lb_backend=${b.id}` } });
  assert.equal(miss.backend, a.id);
  assert.deepEqual(miss.sticky, { hit: false, reason: `lb_backend names ${b.id}, draining` });
  assert.deepEqual((await ask({ path: "/" })).sticky, {
    hit: false,
    reason: "no lb_backend cookie",
  });
  assert.equal(received, 0, "explaining sends nothing to a backend");

  a.draining = true;
  assert.equal((await ask({ path: "/" })).backend, null);
});

Deno.test("admin: POST /explain answers bad input with a one-line 4xx", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]) + adminYaml());
  const explainUrl = `${adminUrl(lb)}/explain`;
  const json = { "content-type": "application/json" };
  const cases: [RequestInit, number, RegExp][] = [
    [{ headers: json, body: "{" }, 400, /^400 Bad Request: the body is not JSON: /],
    [{ headers: json, body: "[]" }, 400, /expected an object like/],
    [
      { headers: json, body: '{"path":"x"}' },
      400,
      /path: expected a path starting with "\/", got "x"/,
    ],
    [{ headers: json, body: "{}" }, 400, /path: expected a path starting with "\/", got nothing/],
    [
      { headers: json, body: '{"path":"/","method":"G T"}' },
      400,
      /method: expected an HTTP method/,
    ],
    [
      { headers: json, body: '{"path":"/","headers":{"a":1}}' },
      400,
      /headers\.a: expected a string/,
    ],
    [
      { headers: json, body: '{"path":"/","headers":{"b d":"x"}}' },
      400,
      /cannot build that request/,
    ],
    [{ headers: json, body: '{"path":"/","body":"x"}' }, 400, /unknown key body/],
    [{ headers: { "content-type": "text/plain" }, body: "{}" }, 415, /application\/json/],
    [{ headers: json, body: `{"path":"/${"x".repeat(70_000)}"}` }, 413, /at most 65536 bytes/],
  ];
  for (const [init, status, reason] of cases) {
    const answer = await post(explainUrl, init);
    assert.equal(answer.status, status, answer.text);
    assert.match(answer.text, reason);
    assert.equal(answer.text.split("\n").length, 2, "one line");
    assert.doesNotMatch(answer.text, /\bat .*\.ts:\d+/, "no stack trace");
  }
});

Deno.test("admin: GET / is the self-contained dashboard", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]) + adminYaml());
  const response = await fetch(`${adminUrl(lb)}/`);
  assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(response.headers.get("content-security-policy")!, /default-src 'none'/);
  const html = await response.text();
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /\ssrc=|\shref=|url\(|@import/, "nothing loaded from elsewhere");
  const history = await getJson<{ slice_ms: number; backends: { points: unknown[] }[] }>(
    `${adminUrl(lb)}/history`,
  );
  assert.equal(history.slice_ms, 5000);
  assert.equal(history.backends[0].points.length, 60);
});

Deno.test("admin: GET /ready is 200 while serving and 503 from the moment the drain starts", async () => {
  await using backend = startHoldingBackend("/slow", "done");
  const lb = startTestBalancer(backendsYaml([backend.url]) + adminYaml());
  const ready = async () => {
    const response = await fetch(`${adminUrl(lb)}/ready`);
    return `${response.status} ${await response.text()}`;
  };
  assert.equal(await ready(), "200 ready\n");
  const slow = fetch(`${baseUrl(lb)}/slow`);
  await backend.arrived;
  const stopped = lb.shutdown();
  assert.equal(
    await ready(),
    "503 503 Service Unavailable: draining: the balancer is shutting down\n",
  );
  backend.release();
  assert.equal(await (await slow).text(), "done", "the request in flight finishes");
  assert.equal(await stopped, true);
});
