/**
 * One pool: a named group of backends with its own strategy state, health
 * checker, sticky cookie and connection pools.
 *
 * @module
 */

import type { BackendTlsConfig, PoolConfig, TimeoutsConfig } from "../config/types.ts";
import { readBackendTls } from "../config/tls_files.ts";
import { HealthChecker } from "../health_check.ts";
import { FetchTransport } from "../internal/fetch_transport.ts";
import { Http1Transport } from "../internal/http1_transport.ts";
import { LoadBalancer, type SharedBalancerState } from "../load_balancer.ts";
import type { Backend, TransportName } from "../types.ts";
import type { Transport } from "../transport.ts";

/** The transport keys of `timeouts`: a change of any of them takes new connection pools. */
const TRANSPORT_TIMEOUTS = ["connect", "response", "idle", "pool_idle"] as const;
/** The keys of a pool's `tls`: a change of any of them takes new connection pools too. */
const TLS_KEYS = ["ca", "server_name", "cert", "key"] as const;

/**
 * One transport of each kind, built with `timeouts` and the pool's `tls`.
 *
 * @example
 * ```ts
 * const transports = createTransports(config.timeouts, config.pools!.web.tls);
 * transports.http1.close();
 * ```
 */
export function createTransports(
  timeouts: TimeoutsConfig,
  tls?: BackendTlsConfig,
): Record<TransportName, Transport> {
  const options = {
    connectTimeoutMs: timeouts.connect,
    responseTimeoutMs: timeouts.response,
    idleTimeoutMs: timeouts.idle,
    poolIdleTimeoutMs: timeouts.pool_idle,
    tls,
  };
  return { http1: new Http1Transport(options), fetch: new FetchTransport(options) };
}

/**
 * A pool in force. A reload applies a new config of the same name to it.
 *
 * @example
 * ```ts
 * const pool = new Pool(config.pools!.api, config.timeouts, console.error);
 * const selection = pool.balancer.selectBackend(request);
 * await pool.close();
 * ```
 */
export class Pool {
  readonly name: string;
  readonly balancer: LoadBalancer;
  readonly health: HealthChecker;
  /** Replaced by a reload that changes the transport timeouts or the pool's `tls`. */
  transports: Readonly<Record<TransportName, Transport>>;
  #timeouts: TimeoutsConfig;
  #tls: BackendTlsConfig;

  /**
   * With `shared` (in a worker isolate), over the state the primary isolate
   * made for it. `joinedAt` starts its backends' slow start (a pool a reload
   * adds); by default they start at full weight.
   */
  constructor(
    config: PoolConfig,
    timeouts: TimeoutsConfig,
    log: (line: string) => void,
    shared?: SharedBalancerState,
    joinedAt?: number,
  ) {
    this.name = config.name;
    this.balancer = new LoadBalancer(config, shared, joinedAt);
    this.#tls = clientTls(config);
    this.health = new HealthChecker(this.balancer.backends, config.health_check, log, this.#tls);
    this.transports = createTransports(timeouts, this.#tls);
    this.#timeouts = timeouts;
  }

  /** The backends in config order. */
  get backends(): readonly Backend[] {
    return this.balancer.backends;
  }

  /**
   * Puts `config` in force: backends kept (same URL) keep their state. Returns
   * the backends that left and the transports a change of timeouts or `tls`
   * replaced, for the caller to drain.
   */
  apply(
    config: PoolConfig,
    timeouts: TimeoutsConfig,
    shared?: SharedBalancerState,
  ): { removed: Backend[]; replaced: Transport[] } {
    const removed = this.balancer.apply(config, shared);
    this.health.configure(this.balancer.backends, config.health_check);
    const tls = clientTls(config);
    const tlsChanged = TLS_KEYS.some((key) => tls[key] !== this.#tls[key]);
    if (tlsChanged) this.health.useTls(tls);
    const replaced: Transport[] = [];
    if (tlsChanged || TRANSPORT_TIMEOUTS.some((key) => timeouts[key] !== this.#timeouts[key])) {
      replaced.push(...Object.values(this.transports));
      this.transports = createTransports(timeouts, tls);
    }
    this.#timeouts = timeouts;
    this.#tls = tls;
    return { removed, replaced };
  }

  /** Stops health checking and closes every pooled connection. */
  async close(): Promise<void> {
    await this.health.stop();
    for (const transport of Object.values(this.transports)) transport.close();
  }
}

/**
 * The PEM text of the pool's `tls` files, which the config check read a
 * moment before; a file gone since then fails the start or the reload.
 */
function clientTls(config: PoolConfig): BackendTlsConfig {
  if (config.tls === undefined) return {};
  const tls = readBackendTls(config.tls);
  if ("problem" in tls) throw new Error(`pool ${config.name}: ${tls.problem}`);
  return tls;
}
