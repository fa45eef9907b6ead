/**
 * Every pool in force, by name: built from a config, swapped as a whole by a
 * reload (a pool kept by name keeps its backends' state), probed together.
 *
 * @module
 */

import { type Config, poolConfigs } from "../config/types.ts";
import type { SharedBalancerState } from "../load_balancer.ts";
import type { Backend } from "../types.ts";
import type { Transport } from "../transport.ts";
import { Pool } from "./pool.ts";

/**
 * What worker isolates share with the primary one: each pool's state, by name.
 *
 * @example
 * ```ts
 * worker.postMessage({ config, shared: pools.shared() });
 * ```
 */
export type SharedPoolsState = Readonly<Record<string, SharedBalancerState>>;

/**
 * What a reload took out of force, to drain: backends that left a pool kept,
 * transports replaced, and pools that left whole.
 */
export interface PoolChanges {
  removed: Backend[];
  replaced: Transport[];
  closed: Pool[];
}

/**
 * The pools of a config.
 *
 * @example
 * ```ts
 * const pools = new PoolSet(config, console.error);
 * await pools.startProbing();
 * pools.get("api")?.balancer.selectBackend(request);
 * await pools.close();
 * ```
 */
export class PoolSet implements Iterable<Pool> {
  #pools: Map<string, Pool>;
  readonly #log: (line: string) => void;
  /** Whether this isolate probes: the primary one does, workers share its results. */
  #probing = false;

  /** With `shared` (in a worker isolate), over the state the primary isolate made. */
  constructor(config: Config, log: (line: string) => void, shared?: SharedPoolsState) {
    this.#log = log;
    this.#pools = new Map(
      poolConfigs(config).map((pool) => [
        pool.name,
        new Pool(pool, config.timeouts, log, shared?.[pool.name]),
      ]),
    );
  }

  [Symbol.iterator](): Iterator<Pool> {
    return this.#pools.values();
  }

  /** The pool named `name`. */
  get(name: string): Pool | undefined {
    return this.#pools.get(name);
  }

  /** Every pool's backends, pool by pool in config order. */
  get backends(): Backend[] {
    return [...this.#pools.values()].flatMap((pool) => pool.backends);
  }

  /** The backend whose id is `id`, in whichever pool. */
  backendById(id: string): Backend | undefined {
    for (const pool of this.#pools.values()) {
      const backend = pool.balancer.backendById(id);
      if (backend !== undefined) return backend;
    }
    return undefined;
  }

  /** The state to hand to worker isolates. */
  shared(): SharedPoolsState {
    return Object.fromEntries(
      [...this.#pools].map(([name, pool]) => [name, pool.balancer.shared()]),
    );
  }

  /** Starts every pool's probes; resolves once each ran its first round. */
  async startProbing(): Promise<void> {
    this.#probing = true;
    await Promise.all([...this.#pools.values()].map((pool) => pool.health.start()));
  }

  /**
   * Puts the pools of `config` in force as one swap: a pool kept by name
   * keeps its backends' state, a new one starts (and is probed when this
   * isolate probes), one that left is returned with the other changes to
   * drain.
   */
  apply(config: Config, shared?: SharedPoolsState): PoolChanges {
    const changes: PoolChanges = { removed: [], replaced: [], closed: [] };
    const next = new Map<string, Pool>();
    for (const poolConfig of poolConfigs(config)) {
      const kept = this.#pools.get(poolConfig.name);
      if (kept === undefined) {
        // Its backends are new: they join in slow start, like any backend a reload adds.
        const pool = new Pool(
          poolConfig,
          config.timeouts,
          this.#log,
          shared?.[poolConfig.name],
          performance.now(),
        );
        if (this.#probing) void pool.health.start();
        next.set(pool.name, pool);
        continue;
      }
      const { removed, replaced } = kept.apply(
        poolConfig,
        config.timeouts,
        shared?.[poolConfig.name],
      );
      changes.removed.push(...removed);
      changes.replaced.push(...replaced);
      next.set(kept.name, kept);
    }
    for (const [name, pool] of this.#pools) {
      if (!next.has(name)) {
        changes.closed.push(pool);
        changes.removed.push(...pool.backends);
      }
    }
    this.#pools = next;
    return changes;
  }

  /** Stops every pool's probes and closes its connections. */
  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.close()));
  }
}
