/**
 * Power of two choices over peak-EWMA latency (Finagle's and Linkerd's
 * balancer): of two random candidates, the one that looks faster now.
 *
 * @module
 */

import type { Backend, Strategy, StrategyFactory } from "../types.ts";

/** What a failed attempt or a 5xx answer counts as: a slow answer, so fast failures repel. */
const FAILURE_SAMPLE_MS = 1000;

interface Latency {
  /** Milliseconds, as of `at`. */
  ewma: number;
  /** `performance.now()` of the last sample. */
  at: number;
}

/**
 * Takes two distinct candidates at random and sends to the one with the
 * lower cost: its latency estimate × (its requests in flight + 1), per unit
 * of weight (weight times its slow-start ramp). The estimate jumps up at
 * once on a slower answer and otherwise follows answers with a weight that
 * fades over `ewmaDecayMs`; it also decays toward zero while no answer comes,
 * so a backend that was slow is tried again. A backend with no answer yet
 * counts as fast, so a new one gets traffic at once. The estimates are this
 * isolate's own.
 *
 * @example
 * ```ts
 * const strategy = p2cEwma({ ...options, ewmaDecayMs: 10_000 });
 * const { backend } = strategy.select(healthyBackends, request);
 * strategy.observe?.(backend, 12.5, false);
 * ```
 */
export const p2cEwma: StrategyFactory = ({ ewmaDecayMs }): Strategy => {
  const latencies = new WeakMap<Backend, Latency>();
  const estimate = (backend: Backend, now: number) => {
    const latency = latencies.get(backend);
    if (latency === undefined) return 0;
    return latency.ewma * Math.exp(-(now - latency.at) / ewmaDecayMs);
  };
  const cost = (backend: Backend, ramp: number, now: number) =>
    estimate(backend, now) * (backend.inFlight + 1) / (backend.weight * ramp);
  /**
   * Two distinct candidates drawn in proportion to their weight (times their
   * ramp), each with its cost, the cheaper first; on a tie the first drawn
   * stays first, so a backend in slow start is drawn, and so chosen, less.
   */
  const draw = (candidates: readonly Backend[], ramps: readonly number[] | undefined) => {
    const now = performance.now();
    const shares = candidates.map((backend, i) => backend.weight * (ramps?.[i] ?? 1));
    const first = weightedIndex(shares, -1);
    const second = weightedIndex(shares, first);
    const pair = [first, second].map((index) => ({
      backend: candidates[index],
      cost: cost(candidates[index], ramps?.[index] ?? 1, now),
    }));
    return pair[1].cost < pair[0].cost ? [pair[1], pair[0]] : pair;
  };
  const select: Strategy["select"] = (candidates, _request, ramps) =>
    candidates.length === 1
      ? { backend: candidates[0] }
      : { backend: draw(candidates, ramps)[0].backend };
  return {
    select,
    // No state moves on a pick: a preview is a draw like any other.
    preview: select,
    observe(backend, latencyMs, failed) {
      const now = performance.now();
      const sample = failed ? Math.max(latencyMs, FAILURE_SAMPLE_MS) : latencyMs;
      const latency = latencies.get(backend);
      // The older the estimate, the less of it stays in the average.
      const kept = latency === undefined ? 0 : Math.exp(-(now - latency.at) / ewmaDecayMs);
      const ewma = latency === undefined || sample > estimate(backend, now)
        ? sample
        : latency.ewma * kept + sample * (1 - kept);
      latencies.set(backend, { ewma, at: now });
    },
    explain(candidates, _request, ramps) {
      if (candidates.length === 1) return `only ${candidates[0].id}`;
      const shown = draw(candidates, ramps).map(({ backend, cost }) =>
        `${backend.id} cost ${Math.round(cost * 1000) / 1000}`
      );
      return `two drawn: ${shown.join(" < ")}`;
    },
  };
};

/** A random index in proportion to `shares`, other than `skip`. */
function weightedIndex(shares: readonly number[], skip: number): number {
  let total = 0;
  for (let i = 0; i < shares.length; i++) if (i !== skip) total += shares[i];
  let draw = Math.random() * total;
  let last = -1;
  for (let i = 0; i < shares.length; i++) {
    if (i === skip) continue;
    last = i;
    draw -= shares[i];
    if (draw < 0) return i;
  }
  return last;
}
