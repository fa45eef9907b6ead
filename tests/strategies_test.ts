/** Unit tests of the selection strategies and the registry that dispatches to them. */

import assert from "node:assert/strict";
import { LoadBalancer, strategies } from "../src/load_balancer.ts";
import type { Backend, StrategyName } from "../src/types.ts";

const request = new Request("http://lb.test/");

function balancer(strategy: StrategyName, weights: number[], cookie = "lb_backend") {
  return new LoadBalancer({
    strategy,
    backends: weights.map((weight, i) => ({
      url: `http://127.0.0.1:${9001 + i}`,
      weight,
      transport: "http1",
    })),
    sticky: { cookie },
  });
}

function pickPorts(lb: LoadBalancer, count: number, req = request): string[] {
  return Array.from({ length: count }, () => lb.selectBackend(req)!.backend.url.port);
}

function tally(ports: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const port of ports) counts[port] = (counts[port] ?? 0) + 1;
  return counts;
}

Deno.test("registry: every strategy name has a factory", () => {
  assert.deepEqual(Object.keys(strategies).sort(), [
    "consistent_hash",
    "least_connections",
    "p2c_ewma",
    "random",
    "round_robin",
    "sticky",
    "weighted_round_robin",
  ]);
});

Deno.test("round_robin: 3 backends, 9 requests give 3/3/3 in rotation", () => {
  const ports = pickPorts(balancer("round_robin", [1, 1, 1]), 9);
  assert.deepEqual(ports.slice(0, 3), ["9001", "9002", "9003"]);
  assert.deepEqual(tally(ports), { "9001": 3, "9002": 3, "9003": 3 });
});

Deno.test("round_robin: skips unhealthy backends", () => {
  const lb = balancer("round_robin", [1, 1, 1]);
  lb.backends[1].healthy = false;
  assert.deepEqual(tally(pickPorts(lb, 8)), { "9001": 4, "9003": 4 });
});

Deno.test("weighted_round_robin: weights 5,1,1 interleave as a a b a c a a", () => {
  const names: Record<string, string> = { "9001": "a", "9002": "b", "9003": "c" };
  const order = pickPorts(balancer("weighted_round_robin", [5, 1, 1]), 7).map((p) => names[p]);
  assert.equal(order.join(" "), "a a b a c a a");
});

Deno.test("weighted_round_robin: shares follow weights and skip unhealthy backends", () => {
  const lb = balancer("weighted_round_robin", [3, 2, 1]);
  assert.deepEqual(tally(pickPorts(lb, 60)), { "9001": 30, "9002": 20, "9003": 10 });
  lb.backends[0].healthy = false;
  assert.deepEqual(tally(pickPorts(lb, 30)), { "9002": 20, "9003": 10 });
});

Deno.test("random: roughly uniform over healthy backends only", () => {
  const lb = balancer("random", [1, 1, 1, 1]);
  lb.backends[3].healthy = false;
  const counts = tally(pickPorts(lb, 3000));
  assert.deepEqual(Object.keys(counts).sort(), ["9001", "9002", "9003"]);
  // Each share is 1000 ± 150: more than 6 standard deviations, so this never flakes.
  for (const count of Object.values(counts)) assert.ok(Math.abs(count - 1000) < 150, `${count}`);
});

Deno.test("sticky: no cookie falls back to round robin and sets the cookie", () => {
  const lb = balancer("sticky", [1, 1, 1], "sess");
  const first = lb.selectBackend(request)!;
  const second = lb.selectBackend(request)!;
  assert.notEqual(first.backend, second.backend);
  assert.equal(first.setCookie, `sess=${first.backend.id}; Path=/; HttpOnly; SameSite=Lax`);
});

Deno.test("sticky: a cookie naming a healthy backend keeps the client there", () => {
  const lb = balancer("sticky", [1, 1, 1]);
  const target = lb.backends[2];
  const req = new Request("http://lb.test/", {
    headers: { cookie: `other=1; lb_backend=${target.id}; more=2` },
  });
  for (let i = 0; i < 5; i++) {
    const selection = lb.selectBackend(req)!;
    assert.equal(selection.backend, target);
    assert.equal(selection.setCookie, undefined);
  }
});

Deno.test("sticky: unknown or unhealthy ids pick anew and reset the cookie", () => {
  const lb = balancer("sticky", [1, 1, 1]);
  const unknown = new Request("http://lb.test/", { headers: { cookie: "lb_backend=ffffffff" } });
  assert.ok(lb.selectBackend(unknown)!.setCookie);
  const target = lb.backends[0];
  target.healthy = false;
  const pinnedToDown = new Request("http://lb.test/", {
    headers: { cookie: `lb_backend=${target.id}` },
  });
  const selection = lb.selectBackend(pinnedToDown)!;
  assert.notEqual(selection.backend, target);
  assert.equal(selection.setCookie?.startsWith(`lb_backend=${selection.backend.id};`), true);
});

Deno.test("sticky: ids are opaque and survive a reordering of the config", () => {
  const forward = balancer("sticky", [1, 1, 1]);
  const reversed = new LoadBalancer({
    strategy: "sticky",
    backends: [...forward.backends].reverse().map((b) => ({
      url: b.url.origin,
      weight: 1,
      transport: "http1" as const,
    })),
    sticky: { cookie: "lb_backend" },
  });
  const target: Backend = forward.backends[0];
  assert.ok(!target.id.includes("9001") && target.id !== "0");
  const req = new Request("http://lb.test/", { headers: { cookie: `lb_backend=${target.id}` } });
  assert.equal(reversed.selectBackend(req)!.backend.url.origin, target.url.origin);
});

for (const name of Object.keys(strategies) as StrategyName[]) {
  Deno.test(`${name}: no healthy backend selects nothing; exclude skips the failed ones`, () => {
    const lb = balancer(name, [1, 1, 1]);
    const excluded = new Set([lb.backends[0], lb.backends[2]]);
    for (let i = 0; i < 10; i++) {
      assert.equal(lb.selectBackend(request, excluded)!.backend, lb.backends[1]);
    }
    assert.equal(lb.selectBackend(request, new Set(lb.backends)), undefined);
    for (const backend of lb.backends) backend.healthy = false;
    assert.equal(lb.selectBackend(request), undefined);
  });
}

for (const name of Object.keys(strategies) as StrategyName[]) {
  Deno.test(`${name}: slow start ramps a joining backend from 10% to its full weight`, () => {
    const lb = balancer(name, [1, 1]);
    const ramping = lb.backends[1];
    ramping.slowStart = 60_000;
    const share = (picks: number) =>
      Array.from({ length: picks }, () => lb.selectBackend(request)!.backend)
        .filter((backend) => backend === ramping).length / picks;
    ramping.joinedAt = performance.now();
    // 0.1 against 1: a share of 1/11; random draws get 5 standard deviations of slack.
    // p2c_ewma draws its two candidates at random too.
    const slack = name === "random" || name === "p2c_ewma" ? 0.05 : 0.01;
    assert.ok(Math.abs(share(2200) - 1 / 11) < slack, `just joined: ${share(2200)}`);
    ramping.joinedAt = performance.now() - 30_000; // halfway: 0.55 against 1
    assert.ok(Math.abs(share(2200) - 0.55 / 1.55) < slack * 2, `halfway: ${share(2200)}`);
    ramping.joinedAt = performance.now() - 60_000;
    assert.ok(Math.abs(share(2200) - 0.5) < slack * 2, "full weight once the slow start is over");
  });
}

Deno.test("apply: kept backends keep their object, added ones ramp up, removed ones are returned", () => {
  const lb = new LoadBalancer({
    strategy: "weighted_round_robin",
    backends: [
      { url: "http://127.0.0.1:9001", weight: 1, transport: "http1" },
      { url: "http://127.0.0.1:9002", weight: 1, transport: "http1" },
    ],
    sticky: { cookie: "lb_backend" },
  });
  const [kept, removed] = lb.backends;
  kept.healthy = false;
  const gone = lb.apply({
    strategy: "weighted_round_robin",
    backends: [
      { url: "http://127.0.0.1:9003/", weight: 2, transport: "fetch", slow_start: 10_000 },
      { url: "http://127.0.0.1:9001", weight: 5, transport: "fetch" },
    ],
    sticky: { cookie: "lb_backend" },
  });
  assert.deepEqual(gone, [removed]);
  assert.equal(lb.backends[1], kept, "the same object, health state included");
  assert.deepEqual([kept.weight, kept.transport, kept.healthy], [5, "fetch", false]);
  const added = lb.backends[0];
  assert.equal(added.url.origin, "http://127.0.0.1:9003");
  assert.ok(performance.now() - added.joinedAt < 1000, "an added backend starts its slow start");
  assert.equal(lb.selectBackend(request)!.backend, added, "the only one in rotation");
});

Deno.test("apply: round robin's rotation carries on across a reload that keeps the strategy", () => {
  const lb = balancer("round_robin", [1, 1, 1]);
  assert.deepEqual(pickPorts(lb, 2), ["9001", "9002"]);
  lb.apply({
    strategy: "round_robin",
    backends: lb.backends.map((b) => ({ url: b.url.origin, weight: 3, transport: "http1" })),
    sticky: { cookie: "lb_backend" },
  });
  assert.deepEqual(pickPorts(lb, 2), ["9003", "9001"]);
});
