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

/** What the balancer needs to know of the config; `slow_start` defaults to 0 (off). */
export interface BalancerConfig {
  strategy: StrategyName;
  backends: readonly {
    url: string;
    weight: number;
    transport: TransportName;
    slow_start?: number;
  }[];
  sticky: { cookie: string };
}

/** A slow start begins at this share of the backend's weight. */
const RAMP_FLOOR = 0.1;

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
  strategyName: StrategyName;
  /** Name of the `sticky` strategy's cookie. */
  stickyCookie: string;
  #backends: readonly Backend[];
  #strategy: Strategy;

  constructor(config: BalancerConfig) {
    this.strategyName = config.strategy;
    this.stickyCookie = config.sticky.cookie;
    // The first backends are in rotation at full weight: nothing to ramp up from.
    this.#backends = config.backends.map((backend) => newBackend(backend, -Infinity));
    this.#strategy = strategies[config.strategy](config.sticky);
  }

  /** The backends in config order: the set in force, replaced as a whole by a reload. */
  get backends(): readonly Backend[] {
    return this.#backends;
  }

  /**
   * Puts `config`'s backends and strategy in force in one swap. A backend
   * whose URL was there before keeps its object (health, ejection, counters,
   * the strategy's state) with the new weight, transport and slow start; a new
   * one joins in slow start; the strategy instance stays unless its name or
   * cookie changed. Returns the backends that left the set.
   *
   * @example
   * ```ts
   * const removed = balancer.apply(config);
   * for (const backend of removed) console.error(`removed ${backend.url.origin}`);
   * ```
   */
  apply(config: BalancerConfig): Backend[] {
    const old = new Map(this.#backends.map((backend) => [backend.url.origin, backend]));
    const now = performance.now();
    const next = config.backends.map((entry) => {
      const kept = old.get(new URL(entry.url).origin);
      if (kept === undefined) return newBackend(entry, now);
      old.delete(kept.url.origin);
      kept.weight = entry.weight;
      kept.transport = entry.transport;
      kept.slowStart = entry.slow_start ?? 0;
      return kept;
    });
    if (config.strategy !== this.strategyName || config.sticky.cookie !== this.stickyCookie) {
      this.#strategy = strategies[config.strategy](config.sticky);
      this.strategyName = config.strategy;
      this.stickyCookie = config.sticky.cookie;
    }
    this.#backends = next;
    return [...old.values()];
  }

  /**
   * Picks a backend in rotation (healthy, not draining, not ejected) outside
   * `exclude`, or returns undefined when none is left.
   */
  selectBackend(request: Request, exclude?: ReadonlySet<Backend>): Selection | undefined {
    const now = performance.now();
    const candidates = this.#candidates(exclude, now);
    if (candidates.length === 0) return undefined;
    return this.#strategy.select(candidates, request, ramps(candidates, now));
  }

  /** What {@linkcode LoadBalancer.selectBackend} would pick now, without moving the strategy on. */
  previewBackend(request: Request): Selection | undefined {
    const now = performance.now();
    const candidates = this.#candidates(undefined, now);
    if (candidates.length === 0) return undefined;
    return this.#strategy.preview(candidates, request, ramps(candidates, now));
  }

  /** The backend whose id is `id`, if any. */
  backendById(id: string): Backend | undefined {
    return this.#backends.find((backend) => backend.id === id);
  }

  #candidates(exclude: ReadonlySet<Backend> | undefined, now: number): readonly Backend[] {
    const all = this.#backends;
    if (exclude === undefined && all.every((backend) => inRotation(backend, now))) return all;
    return all.filter((backend) => inRotation(backend, now) && !exclude?.has(backend));
  }
}

/**
 * A backend as it starts, `joinedAt` (a `performance.now()` time) the start of its slow start.
 *
 * @example
 * ```ts
 * const backend = newBackend({ url: "http://127.0.0.1:9001", weight: 1, transport: "http1" });
 * backend.healthy; // true
 * ```
 */
export function newBackend(
  config: BalancerConfig["backends"][number],
  joinedAt = performance.now(),
): Backend {
  return {
    id: backendId(config.url),
    url: new URL(config.url),
    weight: config.weight,
    transport: config.transport,
    slowStart: config.slow_start ?? 0,
    healthy: true,
    draining: false,
    ejectedUntil: 0,
    joinedAt,
  };
}

function inRotation(backend: Backend, now: number): boolean {
  return backend.healthy && !backend.draining && backend.ejectedUntil <= now;
}

/** Each candidate's ramp factor, or undefined when all are at full weight. */
function ramps(candidates: readonly Backend[], now: number): number[] | undefined {
  let factors: number[] | undefined;
  for (let i = 0; i < candidates.length; i++) {
    const factor = rampFactor(candidates[i], now);
    if (factor === 1 && factors === undefined) continue;
    factors ??= new Array(i).fill(1);
    factors.push(factor);
  }
  return factors;
}

/**
 * The share of its weight `backend` gets at `now` (a `performance.now()`
 * time): from 0.1 when it joined rotation rising linearly to 1 at the end of
 * its slow start; always 1 without slow start.
 *
 * @example
 * ```ts
 * rampFactor(backend, performance.now()); // 1 unless the backend is in slow start
 * ```
 */
export function rampFactor(backend: Backend, now: number): number {
  const elapsed = now - backend.joinedAt;
  if (backend.slowStart <= 0 || elapsed >= backend.slowStart) return 1;
  return RAMP_FLOOR + (1 - RAMP_FLOOR) * Math.max(0, elapsed) / backend.slowStart;
}

/**
 * Where `backend` stands at `now`. Draining wins over down, and down over
 * ejected: draining is what the operator asked for, and it stays until they
 * enable the backend again.
 *
 * @example
 * ```ts
 * backendState(balancer.backends[0]); // "up"
 * ```
 */
export function backendState(backend: Backend, now = performance.now()): BackendState {
  if (backend.draining) return "draining";
  if (!backend.healthy) return "down";
  return backend.ejectedUntil > now ? "ejected" : "up";
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
