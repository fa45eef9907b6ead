/**
 * Smooth weighted round robin, nginx's algorithm: weights 5, 1, 1 give
 * a a b a c a a rather than a a a a a b c.
 *
 * @module
 */

import type { Backend, Strategy, StrategyFactory } from "../types.ts";

/**
 * Each pick adds every candidate's weight to its running score, takes the
 * highest score, and lowers the winner's score by the sum of the weights. A
 * backend in slow start counts with its weight times its ramp factor. Each
 * worker isolate keeps its own scores: the weights' proportions hold across
 * workers, the smooth interleaving within each one.
 *
 * @example
 * ```ts
 * const strategy = weightedRoundRobin({ cookie: "lb_backend", turn: new Uint32Array(new SharedArrayBuffer(4)) });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const weightedRoundRobin: StrategyFactory = (): Strategy => {
  const scores = new WeakMap<Backend, number>();
  /** The pick; `commit` stores the new scores, a preview leaves them. */
  const pick = (
    candidates: readonly Backend[],
    ramps: readonly number[] | undefined,
    commit: boolean,
  ) => {
    let best = candidates[0];
    let bestScore = -Infinity;
    let total = 0;
    for (let i = 0; i < candidates.length; i++) {
      const backend = candidates[i];
      const weight = ramps === undefined ? backend.weight : backend.weight * ramps[i];
      const score = (scores.get(backend) ?? 0) + weight;
      if (commit) scores.set(backend, score);
      total += weight;
      if (score > bestScore) {
        best = backend;
        bestScore = score;
      }
    }
    if (commit) scores.set(best, bestScore - total);
    return { backend: best };
  };
  return {
    select: (candidates, _request, ramps) => pick(candidates, ramps, true),
    preview: (candidates, _request, ramps) => pick(candidates, ramps, false),
  };
};
