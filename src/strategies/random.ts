/**
 * Random: a uniformly random healthy backend.
 *
 * @module
 */

import type { Strategy, StrategyFactory } from "../types.ts";

/**
 * Picks any healthy backend with equal probability; a backend in slow start
 * with probability scaled by its ramp factor.
 *
 * @example
 * ```ts
 * const strategy = random({ cookie: "lb_backend", turn: new Uint32Array(new SharedArrayBuffer(4)) });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const random: StrategyFactory = (): Strategy => {
  const select: Strategy["select"] = (candidates, _request, ramps) => {
    if (ramps === undefined) {
      return { backend: candidates[Math.floor(Math.random() * candidates.length)] };
    }
    let draw = Math.random() * ramps.reduce((sum, ramp) => sum + ramp, 0);
    for (let i = 0; i < candidates.length - 1; i++) {
      draw -= ramps[i];
      if (draw < 0) return { backend: candidates[i] };
    }
    return { backend: candidates[candidates.length - 1] };
  };
  // Random keeps no state: a preview is a draw like any other.
  return { select, preview: select };
};
