/**
 * Round robin: each healthy backend in turn.
 *
 * @module
 */

import type { Strategy, StrategyFactory } from "../types.ts";

/**
 * Rotates over the healthy backends: 3 backends and 9 requests give 3/3/3.
 *
 * @example
 * ```ts
 * const strategy = roundRobin({ cookie: "lb_backend" });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const roundRobin: StrategyFactory = (): Strategy => {
  let next = 0;
  return {
    select(candidates) {
      const index = next % candidates.length;
      next = index + 1;
      return { backend: candidates[index] };
    },
    preview(candidates) {
      return { backend: candidates[next % candidates.length] };
    },
  };
};
