/**
 * Round robin: each healthy backend in turn.
 *
 * @module
 */

import type { Backend, Strategy, StrategyFactory } from "../types.ts";

/**
 * Rotates over the healthy backends: 3 backends and 9 requests give 3/3/3. A
 * backend in slow start (ramp factor f < 1) takes its turn only when its
 * credit, f more at each turn it is offered, reaches 1: it gets a share f of
 * a full backend's turns. The position is `turn`, which worker isolates
 * share: each pick takes the next number with one atomic add.
 *
 * @example
 * ```ts
 * const turn = new Uint32Array(new SharedArrayBuffer(4));
 * const strategy = roundRobin({ cookie: "lb_backend", turn });
 * const { backend } = strategy.select(healthyBackends, request);
 * ```
 */
export const roundRobin: StrategyFactory = ({ turn }): Strategy => {
  const credits = new WeakMap<Backend, number>();
  /** The pick; `commit` moves the rotation and stores credits, a preview leaves them. */
  const pick = (
    candidates: readonly Backend[],
    ramps: readonly number[] | undefined,
    commit: boolean,
  ) => {
    const count = candidates.length;
    let index = (commit ? Atomics.add(turn, 0, 1) : Atomics.load(turn, 0)) % count;
    if (ramps !== undefined) {
      for (let tried = 0; tried < count; tried++, index = (index + 1) % count) {
        const ramp = ramps[index];
        if (ramp >= 1) break;
        const backend = candidates[index];
        const credit = (credits.get(backend) ?? 0) + ramp;
        if (credit >= 1) {
          if (commit) credits.set(backend, credit - 1);
          break;
        }
        if (commit) credits.set(backend, credit);
      }
      if (commit) Atomics.store(turn, 0, index + 1);
    }
    return { backend: candidates[index] };
  };
  return {
    select: (candidates, _request, ramps) => pick(candidates, ramps, true),
    preview: (candidates, _request, ramps) => pick(candidates, ramps, false),
  };
};
