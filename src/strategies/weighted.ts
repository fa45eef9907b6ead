/**
 * Smooth weighted round robin, nginx's algorithm: weights 5, 1, 1 give
 * a a b a c a a rather than a a a a a b c.
 *
 * @module
 */

import type { Backend, Strategy, StrategyFactory } from "../types.ts";

/**
 * Each pick adds every candidate's weight to its running score, takes the
 * highest score, and lowers the winner's score by the sum of the weights.
 *
 * @example
 * ```ts
 * const strategy = weightedRoundRobin({ cookie: "lb_backend" });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const weightedRoundRobin: StrategyFactory = (): Strategy => {
  const scores = new WeakMap<Backend, number>();
  /** The pick; `commit` stores the new scores, a preview leaves them. */
  const pick = (candidates: readonly Backend[], commit: boolean) => {
    let best = candidates[0];
    let bestScore = -Infinity;
    let total = 0;
    for (const backend of candidates) {
      const score = (scores.get(backend) ?? 0) + backend.weight;
      if (commit) scores.set(backend, score);
      total += backend.weight;
      if (score > bestScore) {
        best = backend;
        bestScore = score;
      }
    }
    if (commit) scores.set(best, bestScore - total);
    return { backend: best };
  };
  return {
    select: (candidates) => pick(candidates, true),
    preview: (candidates) => pick(candidates, false),
  };
};
