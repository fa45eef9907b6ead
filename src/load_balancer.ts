/**
 * The typed strategy registry and backend selection: adding a strategy is one
 * file under `strategies/` and one line here.
 *
 * @module
 */

import { DEFAULT_EWMA, DEFAULT_HASH, DEFAULT_POOL } from "./config/types.ts";
import { type BackendSettings, newBackendState, SharedBackend } from "./internal/shared_backend.ts";
import { backendId } from "./pools/backend_id.ts";
import { consistentHash } from "./strategies/consistent_hash.ts";
import { leastConnections } from "./strategies/least_connections.ts";
import { p2cEwma } from "./strategies/p2c_ewma.ts";
import { random } from "./strategies/random.ts";
import { roundRobin } from "./strategies/round_robin.ts";
import { sticky } from "./strategies/sticky.ts";
import { weightedRoundRobin } from "./strategies/weighted.ts";
import type {
  Backend,
  BackendState,
  ClientInfo,
  HashOptions,
  Selection,
  Strategy,
  StrategyFactory,
  StrategyName,
} from "./types.ts";

/** Every strategy a config may name, by name. */
export const strategies = {
  round_robin: roundRobin,
  weighted_round_robin: weightedRoundRobin,
  random,
  sticky,
  least_connections: leastConnections,
  p2c_ewma: p2cEwma,
  consistent_hash: consistentHash,
} satisfies Record<StrategyName, StrategyFactory>;

/** What the balancer needs to know of a pool's config; `slow_start` defaults to 0 (off). */
export interface BalancerConfig {
  /** The pool's name; default `default`. */
  name?: string;
  strategy: StrategyName;
  backends: readonly BackendSettings[];
  sticky: { cookie: string };
  /** `consistent_hash`'s key and bound; default the client's address, no bound. */
  hash?: HashOptions;
  /** `p2c_ewma`'s decay in milliseconds; default 10 s. */
  ewma?: { decay: number };
}

/**
 * What worker isolates share with the primary one for a pool: its round-robin
 * turn and each backend's run-time state, by backend id. SharedArrayBuffers cross
 * `postMessage` as shared memory, not as copies.
 *
 * @example
 * ```ts
 * worker.postMessage({ config, shared: balancer.shared() });
 * // in the worker:
 * const balancer = new LoadBalancer(config, shared);
 * ```
 */
export interface SharedBalancerState {
  turn: SharedArrayBuffer;
  backends: Readonly<Record<string, SharedArrayBuffer>>;
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
  /** The pool's name. */
  readonly name: string;
  strategyName: StrategyName;
  /** Name of the `sticky` strategy's cookie. */
  stickyCookie: string;
  #backends: readonly SharedBackend[];
  #strategy: Strategy;
  /** What the strategy instance was made with: a reload that changes it makes a new one. */
  #strategyKey = "";
  readonly #turn: Uint32Array<SharedArrayBuffer>;

  /**
   * Backends of `config`; with `shared` (in a worker isolate), over the
   * state the primary isolate made for them. `joinedAt` (a
   * `performance.now()` time) starts their slow start; by default they are
   * in rotation at full weight, as at startup.
   */
  constructor(config: BalancerConfig, shared?: SharedBalancerState, joinedAt = -Infinity) {
    this.name = config.name ?? DEFAULT_POOL;
    this.strategyName = config.strategy;
    this.stickyCookie = config.sticky.cookie;
    this.#turn = new Uint32Array(shared?.turn ?? new SharedArrayBuffer(4));
    this.#backends = config.backends.map((backend) =>
      attachOrCreate({ ...backend, pool: this.name }, joinedAt, shared)
    );
    this.#strategy = this.#newStrategy(config);
  }

  /** The state to hand to worker isolates, which they build their balancer over. */
  shared(): SharedBalancerState {
    const backends = Object.fromEntries(this.#backends.map((b) => [b.id, b.state]));
    return { turn: this.#turn.buffer, backends };
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
   * cookie changed. Returns the backends that left the set. With `shared`
   * (in a worker isolate), a new backend is built over the state the
   * primary isolate made for it.
   *
   * @example
   * ```ts
   * const removed = balancer.apply(config);
   * for (const backend of removed) console.error(`removed ${backend.url.origin}`);
   * ```
   */
  apply(config: BalancerConfig, shared?: SharedBalancerState): Backend[] {
    const old = new Map(this.#backends.map((backend) => [backend.url.origin, backend]));
    const now = performance.now();
    const next = config.backends.map((entry) => {
      const kept = old.get(new URL(entry.url).origin);
      if (kept === undefined) return attachOrCreate({ ...entry, pool: this.name }, now, shared);
      old.delete(kept.url.origin);
      kept.weight = entry.weight;
      kept.transport = entry.transport;
      kept.slowStart = entry.slow_start ?? 0;
      return kept;
    });
    if (strategyKey(config) !== this.#strategyKey) {
      this.#strategy = this.#newStrategy(config);
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
  selectBackend(
    request: Request,
    exclude?: ReadonlySet<Backend>,
    client?: ClientInfo,
  ): Selection | undefined {
    const now = performance.now();
    const candidates = this.#candidates(exclude, now);
    if (candidates.length === 0) return undefined;
    return this.#strategy.select(candidates, request, ramps(candidates, now), client);
  }

  /** How the last attempt on `backend` went, for strategies that learn from it. */
  observe(backend: Backend, latencyMs: number, failed: boolean): void {
    this.#strategy.observe?.(backend, latencyMs, failed);
  }

  /** What the strategy says of how it would choose for `request` now, if anything. */
  strategyDetail(request: Request, client?: ClientInfo): string | undefined {
    const now = performance.now();
    const candidates = this.#candidates(undefined, now);
    if (candidates.length === 0) return undefined;
    return this.#strategy.explain?.(candidates, request, ramps(candidates, now), client);
  }

  /** Whether any backend is in rotation. */
  hasCandidates(): boolean {
    const now = performance.now();
    return this.#backends.some((backend) => inRotation(backend, now));
  }

  /** What {@linkcode LoadBalancer.selectBackend} would pick now, without moving the strategy on. */
  previewBackend(request: Request, client?: ClientInfo): Selection | undefined {
    const now = performance.now();
    const candidates = this.#candidates(undefined, now);
    if (candidates.length === 0) return undefined;
    return this.#strategy.preview(candidates, request, ramps(candidates, now), client);
  }

  /** The backend whose id is `id`, if any. */
  backendById(id: string): Backend | undefined {
    return this.#backends.find((backend) => backend.id === id);
  }

  #newStrategy(config: BalancerConfig): Strategy {
    this.#strategyKey = strategyKey(config);
    return strategies[config.strategy]({
      cookie: config.sticky.cookie,
      turn: this.#turn,
      hash: config.hash ?? DEFAULT_HASH,
      ewmaDecayMs: (config.ewma ?? DEFAULT_EWMA).decay,
    });
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
export function newBackend(config: BackendSettings, joinedAt = performance.now()): SharedBackend {
  return new SharedBackend(config, newBackendState(joinedAt));
}

/** Over `shared`'s state for the backend when it has one, else with a new state. */
function attachOrCreate(
  config: BackendSettings,
  joinedAt: number,
  shared: SharedBalancerState | undefined,
): SharedBackend {
  if (shared === undefined) return newBackend(config, joinedAt);
  const state = shared.backends[backendId(config.pool ?? DEFAULT_POOL, config.url)];
  return state === undefined ? newBackend(config, joinedAt) : new SharedBackend(config, state);
}

function strategyKey(config: BalancerConfig): string {
  return JSON.stringify([config.strategy, config.sticky.cookie, config.hash, config.ewma]);
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
