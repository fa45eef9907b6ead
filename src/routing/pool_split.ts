/**
 * A weighted traffic split between pools (a canary): nginx's smooth weighted
 * round robin over the pools, skipping those with no backend in rotation.
 *
 * @module
 */

import type { SplitConfig } from "../config/types.ts";

/**
 * Picks a pool per request in the weights' proportion: weights 90 and 10 give
 * nine of every ten requests to the first pool, spread evenly. A pool for
 * which `inRotation` is false is skipped while another one has backends; when
 * none has, the weights alone decide (and the pool answers 503).
 *
 * @example
 * ```ts
 * const split = new PoolSplit([{ pool: "stable", weight: 90 }, { pool: "next", weight: 10 }]);
 * split.pick((name) => pools.get(name)!.balancer.hasCandidates()); // "stable"
 * ```
 */
export class PoolSplit {
  readonly #entries: readonly SplitConfig[];
  readonly #scores: number[];

  constructor(entries: readonly SplitConfig[]) {
    this.#entries = entries.filter((entry) => entry.weight > 0);
    this.#scores = this.#entries.map(() => 0);
  }

  /** The pool for the next request. */
  pick(inRotation: (pool: string) => boolean): string {
    return this.#choose(inRotation, true);
  }

  /** What {@linkcode PoolSplit.pick} would return now, leaving the split as it is. */
  peek(inRotation: (pool: string) => boolean): string {
    return this.#choose(inRotation, false);
  }

  #choose(inRotation: (pool: string) => boolean, commit: boolean): string {
    const eligible = this.#entries.map((entry) => inRotation(entry.pool));
    const any = eligible.includes(true);
    const scores = commit ? this.#scores : [...this.#scores];
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.#entries.length; i++) {
      if (any && !eligible[i]) continue;
      const weight = this.#entries[i].weight;
      scores[i] += weight;
      total += weight;
      if (best === -1 || scores[i] > scores[best]) best = i;
    }
    scores[best] -= total;
    return this.#entries[best].pool;
  }
}
