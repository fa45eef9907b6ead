/**
 * Least connections: the candidate with the fewest requests in flight for
 * its weight, nginx's `least_conn` and HAProxy's `leastconn`.
 *
 * @module
 */

import type { Backend, Strategy, StrategyFactory } from "../types.ts";

/**
 * Picks the candidate with the lowest in-flight requests per unit of weight
 * (weight times its slow-start ramp). In-flight counts are the backends'
 * shared ones, so with workers they are the whole process's. Ties go in
 * rotation: the scan starts one place further at each pick (the shared
 * round-robin turn), so an idle pool still spreads evenly.
 *
 * @example
 * ```ts
 * const strategy = leastConnections({ ...options, turn: new Uint32Array(new SharedArrayBuffer(4)) });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const leastConnections: StrategyFactory = ({ turn }): Strategy => {
  const pick = (
    candidates: readonly Backend[],
    ramps: readonly number[] | undefined,
    commit: boolean,
  ) => {
    const count = candidates.length;
    const start = (commit ? Atomics.add(turn, 0, 1) : Atomics.load(turn, 0)) % count;
    let best = candidates[start];
    let bestLoad = Infinity;
    for (let step = 0; step < count; step++) {
      const index = (start + step) % count;
      const backend = candidates[index];
      const load = backend.inFlight / (backend.weight * (ramps?.[index] ?? 1));
      if (load < bestLoad) {
        best = backend;
        bestLoad = load;
      }
    }
    return { backend: best };
  };
  return {
    select: (candidates, _request, ramps) => pick(candidates, ramps, true),
    preview: (candidates, _request, ramps) => pick(candidates, ramps, false),
    explain: (candidates) =>
      `in flight ${candidates.map((backend) => `${backend.id} ${backend.inFlight}`).join(", ")}`,
  };
};
