/**
 * Random: a uniformly random healthy backend.
 *
 * @module
 */

import type { Strategy, StrategyFactory } from "../types.ts";

/**
 * Picks any healthy backend with equal probability.
 *
 * @example
 * ```ts
 * const strategy = random({ cookie: "lb_backend" });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const random: StrategyFactory = (): Strategy => ({
  select(candidates) {
    return { backend: candidates[Math.floor(Math.random() * candidates.length)] };
  },
});
