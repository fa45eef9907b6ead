/**
 * The setups the load benchmark compares, built in one list: the backend
 * hit directly, the floor (the cheapest forwarder on Deno), this balancer
 * per transport, worker count and routing, HAProxy and nginx.
 *
 * @module
 */

import { type BalancerSettings, startBalancer } from "./balancer.ts";
import type { Tools } from "./machine.ts";
import { startFloor } from "./floor.ts";
import { startHaproxy, startNginxProxy } from "./peers.ts";
import type { Target, TargetContext } from "./target.ts";

/** One thing to measure. */
export interface Setup {
  /** The name `--only` takes. */
  id: string;
  /** The row label in the tables. */
  label: string;
  /** Why it cannot run on this machine, e.g. "not installed". */
  missing?: string;
  /** Starts a fresh target for one measurement. */
  start(context: TargetContext): Promise<Target>;
}

/**
 * Every setup, in table order. A balancer variant is one more line, e.g.
 * `balancer("fetch-w2", "deno-lb fetch ×2 workers", { transport: "fetch", workers: 2 })`.
 */
export function buildSetups(tools: Tools): Setup[] {
  return [
    { id: "direct", label: "backend direct", start: direct },
    { id: "floor", label: "floor (Deno.serve + Deno.connect)", start: startFloor },
    balancer("http1", "deno-lb http1", { transport: "http1" }),
    balancer("http1-routes", "deno-lb http1, 20 routes", { transport: "http1", routes: 20 }),
    balancer("http1-w2", "deno-lb http1 ×2 workers", { transport: "http1", workers: 2 }),
    balancer("fetch", "deno-lb fetch", { transport: "fetch" }),
    peer("haproxy", "HAProxy", tools.haproxy, startHaproxy),
    peer("nginx", "nginx", tools.nginx, startNginxProxy),
  ];
}

/** The first backend, without a proxy in front. */
function direct(context: TargetContext): Promise<Target> {
  return Promise.resolve({ origin: `http://127.0.0.1:${context.backendPorts[0]}` });
}

function balancer(id: string, label: string, settings: BalancerSettings): Setup {
  return { id, label, start: (context) => startBalancer(context, id, settings) };
}

function peer(
  id: string,
  label: string,
  version: string | undefined,
  start: (context: TargetContext) => Promise<Target>,
): Setup {
  return { id, label, missing: version === undefined ? "not installed" : undefined, start };
}
