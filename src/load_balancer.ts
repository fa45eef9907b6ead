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
  BackendState,
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
  /** Name of the `sticky` strategy's cookie. */
  readonly stickyCookie: string;
  readonly backends: readonly Backend[];
  readonly #strategy: Strategy;

  constructor(config: BalancerConfig) {
    this.strategyName = config.strategy;
    this.stickyCookie = config.sticky.cookie;
    this.backends = config.backends.map(({ url, weight, transport }) => ({
      id: backendId(url),
      url: new URL(url),
      weight,
      transport,
      healthy: true,
      draining: false,
    }));
    this.#strategy = strategies[config.strategy](config.sticky);
  }

  /**
   * Picks a backend in rotation (healthy, not draining) other than `exclude`,
   * or returns undefined when none is left.
   */
  selectBackend(request: Request, exclude?: Backend): Selection | undefined {
    const candidates = this.#candidates(exclude);
    return candidates.length === 0 ? undefined : this.#strategy.select(candidates, request);
  }

  /** What {@linkcode LoadBalancer.selectBackend} would pick now, without moving the strategy on. */
  previewBackend(request: Request): Selection | undefined {
    const candidates = this.#candidates(undefined);
    return candidates.length === 0 ? undefined : this.#strategy.preview(candidates, request);
  }

  /** The backend whose id is `id`, if any. */
  backendById(id: string): Backend | undefined {
    return this.backends.find((backend) => backend.id === id);
  }

  #candidates(exclude: Backend | undefined): readonly Backend[] {
    if (exclude === undefined && this.backends.every(inRotation)) return this.backends;
    return this.backends.filter((backend) => inRotation(backend) && backend !== exclude);
  }
}

function inRotation(backend: Backend): boolean {
  return backend.healthy && !backend.draining;
}

/**
 * Where `backend` stands. Draining wins over down: it is what the operator
 * asked for, and it stays until they enable the backend again.
 *
 * @example
 * ```ts
 * backendState(balancer.backends[0]); // "up"
 * ```
 */
export function backendState(backend: Backend): BackendState {
  if (backend.draining) return "draining";
  return backend.healthy ? "up" : "down";
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
