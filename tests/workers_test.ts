/**
 * Integration tests of `workers: 2`: the primary isolate and one worker serve
 * the same port, share the round-robin turn and the prober's health state,
 * follow reloads, and the admin API adds up what both counted.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../src/config/config.ts";
import { LoadBalancer } from "../src/load_balancer.ts";
import type { Balancer } from "../src/server.ts";
import { WorkerPool } from "../src/workers/worker_pool.ts";
import {
  adminUrl,
  adminYaml,
  backendsYaml,
  defaultPool,
  parsePrometheus,
  rawRequest,
  sampleValue,
  startBackend,
  startNamedBackend,
  startTestBalancer,
  type TestBackend,
  waitFor,
} from "./helpers.ts";

const WORKERS_YAML = "workers: 2\nlogging: { access: off }\n";

/**
 * Sends `count` GETs, each on a new connection so that the kernel spreads
 * them over both isolates' listeners, 10 at a time; returns the answers by body.
 */
async function spread(balancer: Balancer, count: number): Promise<Record<string, number>> {
  const answers: Record<string, number> = {};
  for (let sent = 0; sent < count; sent += 10) {
    const batch = Array.from({ length: Math.min(10, count - sent) }, async () => {
      const response = await rawRequest(
        balancer.addr.port,
        "GET / HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n",
      );
      assert.equal(response.status, 200);
      return new TextDecoder().decode(response.body);
    });
    for (const body of await Promise.all(batch)) answers[body] = (answers[body] ?? 0) + 1;
  }
  return answers;
}

async function workerRequests(balancer: Balancer): Promise<number[]> {
  const text = await (await fetch(`${adminUrl(balancer)}/metrics`)).text();
  const metrics = parsePrometheus(text);
  return ["0", "1"].map((worker) => sampleValue(metrics, "lb_worker_requests_total", { worker }));
}

async function closeAll(backends: TestBackend[]): Promise<void> {
  await Promise.all(backends.map((backend) => backend.close()));
}

Deno.test("workers: 2 isolates, 3 backends, 300 requests give each backend 100", async () => {
  const backends = [startNamedBackend(), startNamedBackend(), startNamedBackend()];
  const lines: string[] = [];
  const balancer = startTestBalancer(
    WORKERS_YAML + adminYaml() + backendsYaml(backends.map((backend) => backend.url)),
    (line) => lines.push(line),
  );
  try {
    await balancer.ready;
    assert.match(lines[0], /workers 2/);
    assert.ok(lines.includes("all 2 isolates listening"), lines.join("\n"));
    const answers = await spread(balancer, 300);
    assert.deepEqual(answers, Object.fromEntries(backends.map(({ port }) => [port, 100])));
    const [primary, worker] = await workerRequests(balancer);
    assert.equal(primary + worker, 300, "the admin API adds up both isolates");
    assert.ok(primary > 0 && worker > 0, `both isolates served: ${primary} and ${worker}`);
    const metrics = parsePrometheus(await (await fetch(`${adminUrl(balancer)}/metrics`)).text());
    for (const { url } of backends) {
      const backend = { backend: url };
      assert.equal(sampleValue(metrics, "lb_requests_total", { ...backend, code: "2xx" }), 100);
      // Each request went out on a new or a reused connection of one isolate's pool.
      assert.equal(
        sampleValue(metrics, "lb_upstream_connections_opened_total", backend) +
          sampleValue(metrics, "lb_upstream_connection_reuses_total", backend),
        100,
      );
    }
    const status = await (await fetch(`${adminUrl(balancer)}/status`)).json();
    assert.ok(
      status.backends.every((backend: { latency_ms: { p50: number | null } }) =>
        backend.latency_ms.p50 !== null
      ),
    );
  } finally {
    assert.equal(await balancer.shutdown(), true);
    await closeAll(backends);
  }
});

Deno.test("workers: a backend the prober marks down is skipped by every worker", async () => {
  const backends = [startNamedBackend(), startNamedBackend()];
  // Fails its health checks but would answer real traffic: only the shared state keeps it out.
  const sick: TestBackend = startBackend((request) =>
    new URL(request.url).pathname === "/health"
      ? new Response("no", { status: 503 })
      : new Response(String(sick.port))
  );
  const balancer = startTestBalancer(
    WORKERS_YAML + adminYaml() +
      "health_check: { path: /health, interval: 50ms, unhealthy_threshold: 1 }\n" +
      backendsYaml([backends[0].url, sick.url, backends[1].url]),
  );
  try {
    await balancer.ready;
    await waitFor(
      () => !defaultPool(balancer).balancer.backends[1].healthy,
      "the prober to mark it down",
    );
    const before = await workerRequests(balancer);
    const answers = await spread(balancer, 300);
    assert.deepEqual(answers, { [backends[0].port]: 150, [backends[1].port]: 150 });
    const after = await workerRequests(balancer);
    assert.ok(after[0] > before[0] && after[1] > before[1], `both isolates served: ${after}`);
  } finally {
    await balancer.shutdown();
    await closeAll([...backends, sick]);
  }
});

Deno.test("workers: a reload reaches the worker, and drain through the admin API too", async () => {
  const backends = [startNamedBackend(), startNamedBackend(), startNamedBackend()];
  const yaml = (urls: string[]) =>
    WORKERS_YAML + adminYaml("  token: a-token-of-sixteen-chars\n") + backendsYaml(urls);
  const balancer = startTestBalancer(yaml(backends.map((backend) => backend.url)));
  try {
    await balancer.ready;
    const next = yaml([backends[0].url, backends[1].url]);
    balancer.reloader.apply(
      parseConfig(`listen: { host: 127.0.0.1, port: 0 }\n${next}`, "test.yaml"),
    );
    // The worker applies the config when its message arrives: wait until it stopped using the third.
    await waitFor(
      async () => (await spread(balancer, 20))[backends[2].port] === undefined,
      "the worker to apply the reload",
    );
    assert.deepEqual(await spread(balancer, 100), {
      [backends[0].port]: 50,
      [backends[1].port]: 50,
    });
    const drain = await fetch(
      `${adminUrl(balancer)}/backends/${defaultPool(balancer).balancer.backends[0].id}/drain`,
      { method: "POST", headers: { authorization: "Bearer a-token-of-sixteen-chars" } },
    );
    assert.equal(drain.status, 200);
    await drain.body?.cancel();
    assert.deepEqual(await spread(balancer, 100), { [backends[1].port]: 100 });
  } finally {
    await balancer.shutdown();
    await closeAll(backends);
  }
});

/** A pool of one worker whose first `crashOn` command throws; `lines` gets its log. */
async function withCrashingWorker(
  crashOn: "start" | "snapshot",
  check: (pool: WorkerPool, lines: string[]) => Promise<void>,
): Promise<void> {
  await using backend = startNamedBackend();
  const config = parseConfig(
    `listen: { host: 127.0.0.1, port: 0 }\nlogging: { access: off }\n${
      backendsYaml([backend.url])
    }`,
    "test.yaml",
  );
  const lines: string[] = [];
  Deno.env.set("LB_TEST_CRASH_ON", crashOn);
  const pool = new WorkerPool(
    1,
    config,
    { default: new LoadBalancer(config).shared() },
    (line) => lines.push(line),
    new URL("./fixtures/crashing_worker.ts", import.meta.url),
  );
  try {
    await pool.ready;
    await check(pool, lines);
  } finally {
    Deno.env.delete("LB_TEST_CRASH_ON");
    Deno.env.delete("LB_TEST_CRASHED");
    assert.equal(await pool.stop(), true);
  }
}

Deno.test("workers: a worker that fails while serving is logged and replaced", async () => {
  await withCrashingWorker("snapshot", async (pool, lines) => {
    assert.deepEqual(await pool.snapshots(), [undefined], "the crashing worker does not answer");
    await waitFor(() => lines.length > 0, "the failure line");
    assert.match(lines[0], /^worker 1 failed: .*crashed on purpose; starting a new one$/);
    await waitFor(async () => (await pool.snapshots())[0] !== undefined, "its replacement");
  });
});

Deno.test("workers: a worker that fails to start is logged and not replaced", async () => {
  await withCrashingWorker("start", async (pool, lines) => {
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^worker 1 failed to start: .*crashed on purpose$/);
    assert.deepEqual(await pool.snapshots(), [undefined]);
  });
});

Deno.test("workers: every isolate routes with the same table, and /metrics adds up the routes", async () => {
  const api = startNamedBackend();
  const web = startNamedBackend();
  await using lb = startTestBalancer(
    WORKERS_YAML +
      `pools:\n  api: { backends: [{ url: ${api.url} }] }\n  web: { backends: [{ url: ${web.url} }] }\n` +
      "routes:\n  - { name: api, match: { path_prefix: /api }, pool: api }\n" +
      "  - { name: ping, match: { path: /ping }, respond: { body: pong } }\n" +
      "  - { name: web, pool: web }\n" + adminYaml(),
  );
  try {
    await lb.ready;
    const expected: Record<string, string> = {
      "/api/x": String(api.port),
      "/ping": "pong",
      "/": String(web.port),
    };
    for (let sent = 0; sent < 60; sent += 6) {
      await Promise.all(
        Object.entries(expected).flatMap(([path, body]) =>
          [0, 1].map(async () => {
            const response = await rawRequest(
              lb.addr.port,
              `GET ${path} HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n`,
            );
            assert.equal(new TextDecoder().decode(response.body), body, path);
          })
        ),
      );
    }
    const served = await workerRequests(lb);
    assert.ok(served.every((count) => count > 0), `both isolates served: ${served}`);
    const metrics = parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text());
    for (const route of ["api", "ping", "web"]) {
      assert.equal(sampleValue(metrics, "lb_route_requests_total", { route, code: "2xx" }), 20);
    }
  } finally {
    await closeAll([api, web]);
  }
});
