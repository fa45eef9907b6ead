/**
 * The typed strategy registry and backend selection: adding a strategy is one
 * file under `strategies/` and one line here.
 *
 * @module
 */

import { random } from "./strategies/random.ts";
import { roundRobin } from "./strategies/round_robin.ts";
import { sticky } from "./strategies/sticky.ts";
import { weightedRoundRobin } from "./strategies/weighted.ts";
import type {
  Backend,
  Selection,
  Strategy,
  StrategyFactory,
  StrategyName,
  TransportName,
} from "./types.ts";

/** Every strategy a config may name, by name. */
export const strategies = {
  round_robin: roundRobin,
  weighted_round_robin: weightedRoundRobin,
  random,
  sticky,
} satisfies Record<StrategyName, StrategyFactory>;

/** What the balancer needs to know of the config. */
export interface BalancerConfig {
  strategy: StrategyName;
  backends: readonly { url: string; weight: number; transport: TransportName }[];
  sticky: { cookie: string };
}

/**
 * The backend set and the strategy that picks from it.
 *
 * @example
 * ```ts
 * const balancer = new LoadBalancer({
 *   strategy: "round_robin",
 *   backends: [{ url: "http://127.0.0.1:9001", weight: 1, transport: "http1" }],
 *   sticky: { cookie: "lb_backend" },
 * });
 * const selection = balancer.selectBackend(new Request("http://localhost/"));
 * ```
 */
export class LoadBalancer {
  readonly strategyName: StrategyName;
  readonly backends: readonly Backend[];
  readonly #strategy: Strategy;

  constructor(config: BalancerConfig) {
    this.strategyName = config.strategy;
    this.backends = config.backends.map(({ url, weight, transport }) => ({
      id: backendId(url),
      url: new URL(url),
      weight,
      transport,
      healthy: true,
    }));
    this.#strategy = strategies[config.strategy](config.sticky);
  }

  /**
   * Picks a healthy backend other than `exclude`, or returns undefined when
   * none is left.
   */
  selectBackend(request: Request, exclude?: Backend): Selection | undefined {
    const candidates = this.#candidates(exclude);
    return candidates.length === 0 ? undefined : this.#strategy.select(candidates, request);
  }

  #candidates(exclude: Backend | undefined): readonly Backend[] {
    if (exclude === undefined && this.backends.every((backend) => backend.healthy)) {
      return this.backends;
    }
    return this.backends.filter((backend) => backend.healthy && backend !== exclude);
  }
}

/**
 * The stable opaque id of a backend: a hash of its URL, so it does not depend
 * on the backend's position in the config.
 *
 * @example
 * ```ts
 * backendId("http://127.0.0.1:9001"); // always the same 8 hex digits
 * ```
 */
export function backendId(url: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < url.length; i++) {
    hash = Math.imul(hash ^ url.charCodeAt(i), 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, "0");
}
