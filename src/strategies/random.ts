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
export const random: StrategyFactory = (): Strategy => {
  const select: Strategy["select"] = (candidates) => ({
    backend: candidates[Math.floor(Math.random() * candidates.length)],
  });
  // Random keeps no state: a preview is a draw like any other.
  return { select, preview: select };
};
