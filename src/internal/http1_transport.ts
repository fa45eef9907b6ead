/**
 * The default upstream transport: an HTTP/1.1 client over `Deno.connect`
 * (TLS through `Deno.startTls` for `https://` backends, or `Deno.connectTls`
 * when they get a client certificate) with a keep-alive pool per backend
 * origin.
 *
 * @module
 */

import type { BackendTlsConfig } from "../config/types.ts";
import type { RequestContext } from "../request_context.ts";
import type { Backend, ConnectionStats, UpstreamRequest, UpstreamResponse } from "../types.ts";
import type { Transport } from "../transport.ts";
import { ConnectionPool } from "./connection_pool.ts";
import { DeadlineQueue } from "./deadline_queue.ts";
import { Http1Exchange } from "./http1_exchange.ts";

/** An exchange still running this long after it began starts watching its client. */
const CLIENT_WATCH_AFTER_MS = 10;

/**
 * Timeouts and pool size of an {@linkcode Http1Transport}.
 *
 * @example
 * ```ts
 * const options: Http1TransportOptions = { connectTimeoutMs: 2000, responseTimeoutMs: 30000 };
 * ```
 */
export interface Http1TransportOptions {
  /** Time allowed to establish a connection. */
  connectTimeoutMs: number;
  /** Time allowed from the start of writing the request to the complete response head. */
  responseTimeoutMs: number;
  /** Idle keep-alive connections kept per backend origin. Default 64. */
  maxIdlePerBackend?: number;
  /** The longest silence while reading a response body. Default 60 s. */
  idleTimeoutMs?: number;
  /** Pooled connections idle longer than this are closed. Default: none. */
  poolIdleTimeoutMs?: number;
  /** How `https://` backends are verified, and the client certificate they get. */
  tls?: BackendTlsConfig;
}

/**
 * Sends requests to backends over pooled HTTP/1.1 connections.
 *
 * @example
 * ```ts
 * const transport = new Http1Transport({ connectTimeoutMs: 2000, responseTimeoutMs: 30000 });
 * using ctx = RequestContext.open(request, info);
 * const response = await transport.send(ctx, backend, {
 *   method: "GET",
 *   target: "/health",
 *   headers: new Headers({ host: "backend" }),
 *   body: null,
 * });
 * await response.body?.cancel();
 * transport.close();
 * ```
 */
export class Http1Transport implements Transport {
  readonly #pool: ConnectionPool;
  readonly #responseTimeouts: DeadlineQueue<Http1Exchange>;
  readonly #idleTimeouts: DeadlineQueue<Http1Exchange>;
  readonly #clientWatches: DeadlineQueue<Http1Exchange>;
  /** The queues of routes' own timeouts, by kind and duration. */
  readonly #ownTimeouts = new Map<string, DeadlineQueue<Http1Exchange>>();

  constructor(options: Http1TransportOptions) {
    this.#pool = new ConnectionPool({
      connectTimeoutMs: options.connectTimeoutMs,
      maxIdlePerOrigin: options.maxIdlePerBackend ?? 64,
      idleTimeoutMs: options.poolIdleTimeoutMs,
      tls: options.tls,
    });
    this.#responseTimeouts = new DeadlineQueue(options.responseTimeoutMs, expireExchange);
    this.#idleTimeouts = new DeadlineQueue(options.idleTimeoutMs ?? 60_000, stallExchange);
    this.#clientWatches = new DeadlineQueue(CLIENT_WATCH_AFTER_MS, watchClient);
  }

  /**
   * Sends `request` and resolves with the response head and a streaming body.
   * Rejects with `UpstreamError`, with `TypeError` when the request head holds
   * CR, LF or NUL (nothing is written then), and with `ctx.signal.reason` when
   * the client went away first.
   */
  send(
    ctx: RequestContext,
    backend: Backend,
    request: UpstreamRequest,
  ): Promise<UpstreamResponse> {
    const own = request.timeouts;
    let exchange: Http1Exchange;
    try {
      exchange = new Http1Exchange(ctx, this.#pool, backend.url, request, {
        response: own?.response === undefined
          ? this.#responseTimeouts
          : this.#ownQueue("response", own.response, expireExchange),
        idle: own?.idle === undefined
          ? this.#idleTimeouts
          : this.#ownQueue("idle", own.idle, stallExchange),
        clientWatch: this.#clientWatches,
      });
    } catch (error) {
      // A head that cannot be written is a rejection, as every other failure is.
      return Promise.reject(error);
    }
    return exchange.run();
  }

  /** The deadline queue of one route's own timeout: deadlines of one duration share one. */
  #ownQueue(
    kind: string,
    durationMs: number,
    expire: (exchange: Http1Exchange) => void,
  ): DeadlineQueue<Http1Exchange> {
    const key = `${kind} ${durationMs}`;
    let queue = this.#ownTimeouts.get(key);
    if (queue === undefined) {
      this.#ownTimeouts.set(key, queue = new DeadlineQueue(durationMs, expire));
    }
    return queue;
  }

  /** Idle and active connections to `backend`, and how many were opened and reused. */
  connectionStats(backend: Backend): ConnectionStats {
    return this.#pool.stats(backend.url);
  }

  /** Closes the idle connections to a backend the config no longer has. */
  forget(backend: Backend): void {
    this.#pool.closeIdle(backend.url);
  }

  /** Closes every idle pooled connection; connections in use close when their exchange ends. */
  close(): void {
    this.#pool.close();
    this.#responseTimeouts.close();
    this.#idleTimeouts.close();
    this.#clientWatches.close();
    for (const queue of this.#ownTimeouts.values()) queue.close();
  }
}

function watchClient(exchange: Http1Exchange): void {
  exchange.watchClient();
}

function expireExchange(exchange: Http1Exchange): void {
  exchange.timeout();
}

function stallExchange(exchange: Http1Exchange): void {
  exchange.stalled();
}
