/**
 * Shared types of the balancer: backends, strategies, transports and the
 * errors an upstream exchange can end in.
 *
 * @module
 */

/** The selection algorithms a config may name. */
export type StrategyName =
  | "round_robin"
  | "weighted_round_robin"
  | "random"
  | "sticky"
  | "least_connections"
  | "p2c_ewma"
  | "consistent_hash";

/** How requests reach a backend: this project's HTTP/1.1 client, or Deno's fetch. */
export type TransportName = "http1" | "fetch";

/** One upstream server, as the balancer tracks it while running. */
export interface Backend {
  /** Stable opaque id derived from the pool and the URL, unique in the config; the sticky cookie carries it. */
  readonly id: string;
  /** The name of the pool it belongs to. */
  readonly pool: string;
  /** The DNS name discovery found it under; undefined for a configured backend. */
  readonly dns: string | undefined;
  /** The configured URL, e.g. `http://127.0.0.1:9001`. */
  readonly url: URL;
  /** Relative share of traffic for weighted strategies, an integer >= 1; a reload may change it. */
  weight: number;
  /** A reload may change it. */
  transport: TransportName;
  /** Milliseconds over which the backend ramps from 10% to full weight on joining; 0 = off. */
  slowStart: number;
  /** Whether the backend passes its health checks; health checking flips it. */
  healthy: boolean;
  /** Taken out of rotation by an operator: no new requests, in-flight ones finish. */
  draining: boolean;
  /** `performance.now()` until which outlier ejection keeps it out of rotation; 0 when never ejected. */
  ejectedUntil: number;
  /** `performance.now()` when it last joined rotation (added, up again, back from ejection). */
  joinedAt: number;
  /** Health-check and outlier-ejection counts, kept by health checking. */
  readonly streak: HealthStreak;
  /** Requests it is serving now, in every isolate: what load-aware strategies weigh. */
  readonly inFlight: number;
  /** Counts one more request in flight until the returned handle is disposed. */
  occupy(): Disposable;
}

/** A backend's results in a row, which the health thresholds are measured against. */
export interface HealthStreak {
  /** Probe successes in a row. */
  successes: number;
  /** Probe failures in a row: only a passing probe ends them. */
  failures: number;
  /** Real-traffic timeouts in a row: a real-traffic success or a passing probe ends them. */
  trafficFailures: number;
  /** 5xx answers and transport errors in a row from real traffic. */
  passiveFailures: number;
  /** Ejections so far; each one lasts twice the previous, up to the maximum. */
  ejections: number;
}

/**
 * Where a backend stands: `up` takes requests; `down` failed its health
 * checks; `ejected` is out for a while after failing in real traffic;
 * `draining` was taken out of rotation through the admin API.
 */
export type BackendState = "up" | "down" | "ejected" | "draining";

/** What a strategy picked, and the cookie to set when the choice should stick. */
export interface Selection {
  backend: Backend;
  /** A `Set-Cookie` value to send back with the response. */
  setCookie?: string;
}

/**
 * A selection algorithm. `candidates` holds only the backends in rotation and
 * is never empty; the strategy keeps whatever state it needs between calls.
 * `ramps`, when given, holds each candidate's slow-start factor (0.1 to 1, by
 * index) and the strategy scales its choice by it; it is absent when every
 * candidate is at full weight.
 */
export interface Strategy {
  select(
    candidates: readonly Backend[],
    request: Request,
    ramps?: readonly number[],
    client?: ClientInfo,
  ): Selection;
  /** What `select` would return now, leaving the strategy's state as it is. */
  preview(
    candidates: readonly Backend[],
    request: Request,
    ramps?: readonly number[],
    client?: ClientInfo,
  ): Selection;
  /**
   * How the last attempt on `backend` went: the milliseconds to its response
   * head, and whether it failed (a transport error or a 5xx answer).
   * Strategies that learn from latency keep it; others leave this out.
   */
  observe?(backend: Backend, latencyMs: number, failed: boolean): void;
  /**
   * A few words on how the strategy chose among `candidates` for `request`
   * (its key, its costs), for explanations; absent when there is nothing
   * beyond the choice itself.
   */
  explain?(
    candidates: readonly Backend[],
    request: Request,
    ramps?: readonly number[],
    client?: ClientInfo,
  ): string;
}

/** What a strategy may know of the client besides its request. */
export interface ClientInfo {
  /** The connection's peer address (never what X-Forwarded-For says). */
  readonly clientAddress: string;
}

/** Options a strategy is created with. */
export interface StrategyOptions {
  /** Name of the sticky-session cookie. */
  cookie: string;
  /**
   * The round-robin position, one Uint32 over a SharedArrayBuffer that every
   * worker isolate shares, so the rotation stays even across them.
   */
  turn: Uint32Array<SharedArrayBuffer>;
  /** `consistent_hash`: what the key is, and the bound on a backend's share of the load. */
  hash: HashOptions;
  /** `p2c_ewma`: milliseconds over which old latencies fade. */
  ewmaDecayMs: number;
}

/**
 * Where `consistent_hash` takes its key from, and `balance_factor` (0 = off,
 * else at least 100): no backend takes more than that percent of the
 * average in-flight load.
 *
 * @example
 * ```ts
 * const hash: HashOptions = { key: "header:x-user-id", balance_factor: 0 };
 * ```
 */
export interface HashOptions {
  /** `header:NAME`, `cookie:NAME`, `query:NAME`, `client_ip` or `path`. */
  key: string;
  balance_factor: number;
}

/** Creates a fresh strategy instance; each balancer owns its own state. */
export type StrategyFactory = (options: StrategyOptions) => Strategy;

/**
 * Header fields as name and value pairs, in order, repeated names kept: on
 * the hot path they are cheaper to build and read than a `Headers` object.
 */
export type HeaderPairs = [name: string, value: string][];

/** The request as it goes to a backend, after the header rules were applied. */
export interface UpstreamRequest {
  method: string;
  /** Origin-form target: the normalised (maybe rewritten) path and the query as sent. */
  target: string;
  headers: HeaderPairs;
  body: ReadableStream<Uint8Array> | null;
  /** A route's own response and idle timeouts, in milliseconds, instead of the transport's. */
  timeouts?: { response?: number; idle?: number };
}

/** The backend's answer, before the header rules for the client are applied. */
export interface UpstreamResponse {
  status: number;
  statusText: string;
  /** Lowercase names; hop-by-hop headers still included. */
  headers: HeaderPairs;
  /**
   * The body: bytes when it arrived whole with the head, else a stream whose
   * end or cancellation releases the request's resources.
   */
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null;
}

/** Why an upstream exchange failed. */
export type UpstreamErrorKind =
  | "connect_refused"
  | "connect_timeout"
  | "response_timeout"
  | "reset"
  | "invalid_response";

/** An upstream exchange that failed; the proxy turns it into a 502 or 504. */
export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    /** Whether any byte of the request reached the connection. */
    readonly requestSent: boolean,
  ) {
    super(message);
  }
}

/**
 * A transport's connection counts for one backend. A field is absent when the
 * transport cannot tell it (Deno's fetch exposes nothing of its pool).
 */
export interface ConnectionStats {
  /** Open keep-alive connections waiting for a request. */
  idle?: number;
  /** Connections serving a request now. */
  active?: number;
  /** Connections opened since the start. */
  opened?: number;
  /** Requests sent on a connection that had served an earlier one. */
  reused?: number;
}
