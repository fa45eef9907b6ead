/**
 * Unit tests of the state worker isolates share: backends over one state
 * buffer, and balancers over one shared round-robin turn.
 */

import assert from "node:assert/strict";
import { type BalancerConfig, LoadBalancer } from "../src/load_balancer.ts";
import { newBackendState, SharedBackend } from "../src/internal/shared_backend.ts";

const settings = { url: "http://127.0.0.1:9001", weight: 1, transport: "http1" } as const;

Deno.test("shared backend: two objects over one state see each other's writes", () => {
  const primary = new SharedBackend(settings, newBackendState(-Infinity));
  const worker = new SharedBackend(settings, primary.state);
  assert.equal(worker.healthy, true);
  assert.equal(worker.draining, false);
  primary.healthy = false;
  worker.draining = true;
  assert.equal(worker.healthy, false);
  assert.equal(primary.draining, true);
  worker.streak.failures = 3;
  primary.streak.ejections++;
  assert.deepEqual(
    [primary.streak.failures, worker.streak.ejections, worker.streak.successes],
    [3, 1, 0],
  );
});

Deno.test("shared backend: times round-trip, with 0 and -Infinity kept as never", () => {
  const backend = new SharedBackend(settings, newBackendState(-Infinity));
  assert.equal(backend.joinedAt, -Infinity, "a first backend has no slow start to ramp from");
  assert.equal(backend.ejectedUntil, 0, "never ejected");
  const now = performance.now();
  backend.ejectedUntil = now + 1500;
  backend.joinedAt = now;
  assert.ok(Math.abs(backend.ejectedUntil - (now + 1500)) < 0.002, `${backend.ejectedUntil}`);
  assert.ok(Math.abs(backend.joinedAt - now) < 0.002);
  assert.ok(Math.abs(new SharedBackend(settings, newBackendState(now)).joinedAt - now) < 0.002);
});

Deno.test("shared backend: a time written in another isolate reads in this isolate's clock", async () => {
  const state = newBackendState(-Infinity);
  const source = `
    import { SharedBackend } from ${
    JSON.stringify(import.meta.resolve("../src/internal/shared_backend.ts"))
  };
    self.onmessage = ({ data }) => {
      const backend = new SharedBackend(data.settings, data.state);
      backend.ejectedUntil = performance.now() + 10_000;
      backend.healthy = false;
      self.postMessage("done");
    };`;
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    const done = new Promise((resolve) => worker.onmessage = resolve);
    worker.postMessage({ settings, state });
    await done;
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
  const backend = new SharedBackend(settings, state);
  assert.equal(backend.healthy, false);
  const left = backend.ejectedUntil - performance.now();
  assert.ok(left > 9_000 && left <= 10_000, `ejected for ${left} ms more, expected about 10 s`);
});

function config(strategy: BalancerConfig["strategy"]): BalancerConfig {
  return {
    strategy,
    backends: [9001, 9002, 9003].map((port) => ({
      url: `http://127.0.0.1:${port}`,
      weight: 1,
      transport: "http1",
    })),
    sticky: { cookie: "lb_backend" },
  };
}

Deno.test("shared turn: two balancers over one state split 300 picks 100/100/100", () => {
  const primary = new LoadBalancer(config("round_robin"));
  const worker = new LoadBalancer(config("round_robin"), primary.shared());
  const counts = new Map<string, number>();
  const request = new Request("http://lb.test/");
  // An uneven interleaving: the worker takes two picks for each of the primary's.
  for (let i = 0; i < 300; i++) {
    const selection = (i % 3 === 0 ? primary : worker).selectBackend(request)!;
    counts.set(selection.backend.url.port, (counts.get(selection.backend.url.port) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { 9001: 100, 9002: 100, 9003: 100 });
});

Deno.test("shared turn: a backend down in one balancer is skipped by the other", () => {
  const primary = new LoadBalancer(config("sticky"));
  const worker = new LoadBalancer(config("sticky"), primary.shared());
  primary.backends[1].healthy = false;
  const request = new Request("http://lb.test/");
  const ports = Array.from({ length: 6 }, () => worker.selectBackend(request)!.backend.url.port);
  assert.deepEqual(ports, ["9001", "9003", "9001", "9003", "9001", "9003"]);
});

Deno.test("shared state: a reload's new backend in a worker joins over the primary's state", () => {
  const primary = new LoadBalancer(config("round_robin"));
  const worker = new LoadBalancer(config("round_robin"), primary.shared());
  const next = config("round_robin");
  next.backends = [...next.backends.slice(1), {
    url: "http://127.0.0.1:9004",
    weight: 1,
    transport: "http1",
  }];
  const kept = worker.backends[1];
  primary.apply(next);
  primary.backends[2].draining = true;
  const removed = worker.apply(next, primary.shared());
  assert.deepEqual(removed.map((backend) => backend.url.port), ["9001"]);
  assert.equal(worker.backends[2].url.port, "9004");
  assert.equal(worker.backends[2].draining, true, "the worker reads the primary's state");
  assert.equal(worker.backends[0], kept, "kept backends keep their objects");
});
