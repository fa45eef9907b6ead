/**
 * Health checking: active probes on an interval, passive outcomes reported by
 * real traffic, and outlier ejection. Each state change is one line on stderr.
 *
 * @module
 */

import type { BackendTlsConfig, HealthCheckConfig } from "./config/config.ts";
import { ConnectionPool, tlsFailureIn } from "./internal/connection_pool.ts";
import { httpClientTls } from "./internal/fetch_transport.ts";
import type { Backend } from "./types.ts";

/** The `health_check` section of the config, durations in milliseconds. */
export type HealthCheckOptions = HealthCheckConfig;

const PASSED = "health check passed";
/** Room for the status line of a probe's answer. */
const STATUS_LINE_SIZE = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The outcome of the latest probe of a backend.
 *
 * @example
 * ```ts
 * const check: LastCheck = { ok: false, at: "2026-11-27T16:51:00.000Z", detail: "connection refused" };
 * ```
 */
export interface LastCheck {
  ok: boolean;
  /** When the probe ended, ISO 8601 in UTC. */
  at: string;
  /** `health check passed`, or why it failed. */
  detail: string;
}

/**
 * Keeps each backend's `healthy` flag and ejection up to date.
 *
 * A down backend comes back after `healthy_threshold` probe successes in a
 * row; an up backend goes down once its probe failures in a row and its
 * real-traffic timeouts in a row reach `unhealthy_threshold` together. A
 * real-traffic success ends only the timeouts' streak: a backend whose probes
 * fail goes down while it still serves. A refused connection in real traffic
 * takes a backend down at once. Outlier ejection: after
 * `passive.consecutive_failures` 5xx answers or transport errors in a row
 * from real traffic, a backend is out for `passive.ejection_time`, doubled at
 * each repeat up to `passive.max_ejection_time`, as long as no more than
 * `passive.max_ejection_percent` of the backends (at least one of two or
 * more) are ejected at once.
 *
 * Probes of `https://` backends use the pool's `tls`. Fetch checks
 * certificates against the URL's host, so with `tls.server_name` they go over
 * a connection of their own, as the http1 transport's do.
 *
 * @example
 * ```ts
 * const pool = config.pools!.web;
 * const health = new HealthChecker(balancer.backends, pool.health_check, console.error, pool.tls);
 * health.start();
 * // ...
 * await health.stop();
 * ```
 */
export class HealthChecker {
  readonly #lastChecks = new WeakMap<Backend, LastCheck>();
  #tls: BackendTlsConfig;
  #client: Deno.HttpClient;
  readonly #stopping = new AbortController();
  /** The timers that log the end of each ejection. */
  readonly #returns = new Set<ReturnType<typeof setTimeout>>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> | undefined;

  constructor(
    public backends: readonly Backend[],
    public options: HealthCheckOptions,
    readonly log: (line: string) => void = console.error,
    tls: BackendTlsConfig = {},
  ) {
    this.#tls = tls;
    this.#client = Deno.createHttpClient(httpClientTls(tls));
  }

  /**
   * Checks `backends` with `options` from the next probe round on; a backend
   * checked before keeps its streaks.
   *
   * @example
   * ```ts
   * health.configure(balancer.backends, config.health_check);
   * ```
   */
  configure(backends: readonly Backend[], options: HealthCheckOptions): void {
    this.backends = backends;
    this.options = options;
  }

  /**
   * Probes with `tls` from the next probe round on.
   *
   * @example
   * ```ts
   * health.useTls({ ca: Deno.readTextFileSync("/etc/lb/internal-ca.pem") });
   * ```
   */
  useTls(tls: BackendTlsConfig): void {
    const replaced = this.#client;
    this.#tls = tls;
    this.#client = Deno.createHttpClient(httpClientTls(tls));
    void Promise.resolve(this.#round).then(() => replaced.close());
  }

  /**
   * Runs the first probe round now, then one every `interval`. Resolves when
   * the first round is over.
   */
  start(): Promise<void> {
    const loop = () => {
      this.#round = this.probeAll().then(() => {
        if (!this.#stopping.signal.aborted) this.#timer = setTimeout(loop, this.options.interval);
      });
    };
    loop();
    return this.#round!;
  }

  /** Stops probing and the ejection-end lines, and waits for the round in progress to end. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    clearTimeout(this.#timer);
    for (const timer of this.#returns) clearTimeout(timer);
    await this.#round;
    this.#client.close();
  }

  /** Probes every backend once, concurrently. */
  async probeAll(): Promise<void> {
    const own = this.#tls.server_name === undefined
      ? undefined
      : new ConnectionPool({ connectTimeoutMs: this.options.timeout, tls: this.#tls });
    await Promise.all(this.backends.map(async (backend) => {
      const failure = await this.#probe(backend, own);
      if (this.#stopping.signal.aborted) return;
      const at = new Date().toISOString();
      this.#lastChecks.set(backend, { ok: failure === undefined, at, detail: failure ?? PASSED });
      if (failure === undefined) this.#succeed(backend, PASSED);
      else this.#probeFailed(backend, failure);
    }));
  }

  /** The latest probe's outcome, undefined before the first one ended. */
  lastCheck(backend: Backend): LastCheck | undefined {
    return this.#lastChecks.get(backend);
  }

  /** Real traffic reached the backend: the streak of its real-traffic timeouts ends. */
  reportSuccess(backend: Backend): void {
    // Read before writing: the streak may be shared memory that every worker writes.
    const streak = backend.streak;
    if (streak.trafficFailures !== 0) streak.trafficFailures = 0;
  }

  /**
   * The outcome of real traffic for outlier ejection: `failed` for a 5xx
   * answer or a transport error, which count in a row; anything else ends the
   * streak. `reason` goes into the log line of an ejection.
   */
  reportOutcome(backend: Backend, failed: boolean, reason: string): void {
    const streak = backend.streak;
    if (!failed) {
      if (streak.passiveFailures !== 0) streak.passiveFailures = 0;
      return;
    }
    const now = performance.now();
    if (!backend.healthy || backend.ejectedUntil > now) return;
    const passive = this.options.passive;
    if (++streak.passiveFailures < passive.consecutive_failures) return;
    const count = this.backends.length;
    const allowed = Math.max(
      Math.floor(count * passive.max_ejection_percent / 100),
      count >= 2 ? 1 : 0,
    );
    const ejected = this.backends.filter((other) => other.ejectedUntil > now).length;
    if (ejected >= allowed) return;
    // A backend that stayed in for a whole max_ejection_time starts over.
    if (now - backend.ejectedUntil > passive.max_ejection_time) streak.ejections = 0;
    const ms = Math.min(passive.ejection_time * 2 ** streak.ejections, passive.max_ejection_time);
    streak.ejections++;
    streak.passiveFailures = 0;
    backend.ejectedUntil = now + ms;
    backend.joinedAt = backend.ejectedUntil;
    this.log(
      `backend ${backend.url.origin} ejected for ${ms} ms: ` +
        `${passive.consecutive_failures} failures in a row, the last: ${reason}`,
    );
    this.#announceReturn(backend, ms);
  }

  /** Logs the end of the ejection that lasts `ms`, unless another replaced it or the backend left. */
  #announceReturn(backend: Backend, ms: number): void {
    const until = backend.ejectedUntil;
    const timer = setTimeout(() => {
      this.#returns.delete(timer);
      if (backend.ejectedUntil === until && this.backends.includes(backend)) {
        this.log(`backend ${backend.url.origin} back from ejection`);
      }
    }, ms);
    this.#returns.add(timer);
  }

  /** A request to the backend timed out; `reason` goes into the log line. */
  reportFailure(backend: Backend, reason: string): void {
    backend.streak.trafficFailures++;
    this.#failed(backend, reason);
  }

  #probeFailed(backend: Backend, reason: string): void {
    backend.streak.failures++;
    this.#failed(backend, reason);
  }

  #failed(backend: Backend, reason: string): void {
    const streak = backend.streak;
    streak.successes = 0;
    const failures = streak.failures + streak.trafficFailures;
    if (backend.healthy && failures >= this.options.unhealthy_threshold) {
      this.#markDown(backend, reason);
    }
  }

  /** Real traffic found the backend refusing connections: down at once. */
  reportRefused(backend: Backend, reason: string): void {
    const streak = backend.streak;
    streak.successes = 0;
    streak.failures = Math.max(streak.failures + 1, this.options.unhealthy_threshold);
    if (backend.healthy) this.#markDown(backend, reason);
  }

  #succeed(backend: Backend, reason: string): void {
    const streak = backend.streak;
    streak.failures = 0;
    streak.trafficFailures = 0;
    streak.successes++;
    if (!backend.healthy && streak.successes >= this.options.healthy_threshold) {
      backend.healthy = true;
      backend.joinedAt = performance.now();
      this.log(`backend ${backend.url.origin} up: ${reason}`);
    }
  }

  #markDown(backend: Backend, reason: string): void {
    backend.healthy = false;
    this.log(`backend ${backend.url.origin} down: ${reason}`);
  }

  /**
   * Resolves to undefined on success, or the reason of the failure. An
   * `https://` backend is probed over a connection of `own` when given.
   */
  async #probe(backend: Backend, own: ConnectionPool | undefined): Promise<string | undefined> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.options.timeout);
    const signal = AbortSignal.any([timeout.signal, this.#stopping.signal]);
    try {
      const status = own !== undefined && backend.url.protocol === "https:"
        ? await probeStatus(own, backend.url, this.options.path, signal)
        : await this.#fetchStatus(backend.url, signal);
      if (status >= 200 && status < 400) return undefined;
      return `health check got status ${status}`;
    } catch (error) {
      if (timeout.signal.aborted) return `health check timed out after ${this.options.timeout} ms`;
      return `health check failed: ${describeError(error)}`;
    } finally {
      clearTimeout(timer);
    }
  }

  async #fetchStatus(url: URL, signal: AbortSignal): Promise<number> {
    const response = await fetch(new URL(this.options.path, url), {
      client: this.#client,
      redirect: "manual",
      signal,
    });
    await response.body?.cancel();
    return response.status;
  }
}

/** The status of a `GET path` over a fresh connection of `pool`, closed when `signal` aborts. */
async function probeStatus(
  pool: ConnectionPool,
  url: URL,
  path: string,
  signal: AbortSignal,
): Promise<number> {
  const connection = await pool.connect(url);
  const close = () => connection.close();
  signal.addEventListener("abort", close);
  try {
    signal.throwIfAborted();
    const { conn } = connection;
    await conn.write(
      encoder.encode(`GET ${path} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n\r\n`),
    );
    const line = new Uint8Array(STATUS_LINE_SIZE);
    let length = 0;
    while (length < line.length && !line.subarray(0, length).includes(10)) {
      const count = await conn.read(line.subarray(length));
      if (count === null) break;
      length += count;
    }
    const status = /^HTTP\/1\.[01] (\d{3})\b/.exec(decoder.decode(line.subarray(0, length)));
    if (status === null) throw new Error("the answer holds no HTTP/1.1 status line");
    return Number(status[1]);
  } finally {
    signal.removeEventListener("abort", close);
    connection.close();
  }
}

/** A one-line description of a fetch error, e.g. `connection refused`. */
function describeError(error: unknown): string {
  const message = error instanceof Error ? `${error.message} ${error.cause ?? ""}` : String(error);
  const tls = tlsFailureIn(message);
  if (tls !== undefined) return `tls: ${tls}`;
  if (/refused/i.test(message)) return "connection refused";
  if (/reset/i.test(message)) return "connection reset";
  return message.split("\n")[0].trim();
}
