/**
 * Selection cost of each strategy at 3, 16 and 256 backends, all healthy and
 * with three in four down (consistent_hash on a header that every request
 * has, so it looks its key up rather than falling back to round robin). Round robin over healthy backends is the baseline
 * of each group.
 *
 * @module
 */

import { LoadBalancer, strategies } from "../src/load_balancer.ts";
import type { StrategyName } from "../src/types.ts";

const request = new Request("http://lb.test/", {
  headers: { cookie: "lb_backend=00000000", "x-user-id": "user-42" },
});
const client = { clientAddress: "192.0.2.7" };

function balancer(strategy: StrategyName, count: number, downShare: number): LoadBalancer {
  const lb = new LoadBalancer({
    strategy,
    backends: Array.from({ length: count }, (_, i) => ({
      url: `http://10.0.${Math.floor(i / 250)}.${i % 250}:8080`,
      weight: 1 + (i % 3),
      transport: "http1" as const,
    })),
    sticky: { cookie: "lb_backend" },
    hash: { key: "header:x-user-id", balance_factor: 0 },
  });
  lb.backends.forEach((backend, i) => backend.healthy = i % 4 >= Math.round(downShare * 4));
  return lb;
}

for (const count of [3, 16, 256]) {
  for (const [label, downShare] of [["all up", 0], ["3 of 4 down", 0.75]] as const) {
    const group = `${count} backends, ${label}`;
    for (const name of Object.keys(strategies) as StrategyName[]) {
      const lb = balancer(name, count, downShare);
      Deno.bench({
        name: `${name} (${group})`,
        group,
        baseline: name === "round_robin",
        fn: () => void lb.selectBackend(request, undefined, client),
      });
    }
  }
}
