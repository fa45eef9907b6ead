/**
 * Least connections: the candidate with the fewest requests in flight for
 * its weight, nginx's `least_conn` and HAProxy's `leastconn`.
 *
 * @module
 */

import type { Backend, Strategy, StrategyFactory } from "../types.ts";
import { roundRobin } from "./round_robin.ts";

/**
 * Picks the candidate with the lowest in-flight requests per unit of weight
 * (weight times its slow-start ramp). In-flight counts are the backends'
 * shared ones, so with workers they are the whole process's. Candidates tied
 * for the lowest go by round robin (ramps included), so an idle pool still
 * spreads evenly and a backend in slow start still gets only its share.
 *
 * @example
 * ```ts
 * const strategy = leastConnections({ ...options, turn: new Uint32Array(new SharedArrayBuffer(4)) });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const leastConnections: StrategyFactory = (options): Strategy => {
  const ties = roundRobin(options);
  /** The candidates tied for the lowest load, with their ramps. */
  const least = (candidates: readonly Backend[], ramps: readonly number[] | undefined) => {
    let lowest = Infinity;
    const tied: Backend[] = [];
    const tiedRamps: number[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const backend = candidates[i];
      const ramp = ramps?.[i] ?? 1;
      const load = backend.inFlight / (backend.weight * ramp);
      if (load > lowest) continue;
      if (load < lowest) {
        lowest = load;
        tied.length = 0;
        tiedRamps.length = 0;
      }
      tied.push(backend);
      tiedRamps.push(ramp);
    }
    return { tied, tiedRamps: ramps === undefined ? undefined : tiedRamps };
  };
  const choose = (pick: Strategy["select"]): Strategy["select"] => (candidates, request, ramps) => {
    const { tied, tiedRamps } = least(candidates, ramps);
    return tied.length === 1 ? { backend: tied[0] } : pick(tied, request, tiedRamps);
  };
  return {
    select: choose(ties.select),
    preview: choose(ties.preview),
    explain: (candidates) =>
      `in flight ${candidates.map((backend) => `${backend.id} ${backend.inFlight}`).join(", ")}`,
  };
};
