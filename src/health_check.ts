/**
 * Health checking: active probes on an interval, and passive outcomes
 * reported by real traffic. Each state change is one line on stderr.
 *
 * @module
 */

import type { Backend } from "./types.ts";

/** The `health_check` section of the config, durations in milliseconds. */
export interface HealthCheckOptions {
  path: string;
  interval: number;
  timeout: number;
  healthy_threshold: number;
  unhealthy_threshold: number;
}

const PASSED = "health check passed";

interface Streak {
  successes: number;
  failures: number;
}

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
 * Keeps each backend's `healthy` flag up to date.
 *
 * A down backend comes back after `healthy_threshold` probe successes in a
 * row; an up backend goes down after `unhealthy_threshold` failures in a row,
 * probes and timeouts in real traffic alike. A refused connection in real
 * traffic takes a backend down at once.
 *
 * @example
 * ```ts
 * const health = new HealthChecker(balancer.backends, config.health_check);
 * health.start();
 * // ...
 * await health.stop();
 * ```
 */
export class HealthChecker {
  readonly #streaks = new Map<Backend, Streak>();
  readonly #lastChecks = new Map<Backend, LastCheck>();
  readonly #client = Deno.createHttpClient({});
  readonly #stopping = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> | undefined;

  constructor(
    readonly backends: readonly Backend[],
    readonly options: HealthCheckOptions,
    readonly log: (line: string) => void = console.error,
  ) {
    for (const backend of backends) this.#streaks.set(backend, { successes: 0, failures: 0 });
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

  /** Stops probing and waits for the round in progress to end. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    clearTimeout(this.#timer);
    await this.#round;
    this.#client.close();
  }

  /** Probes every backend once, concurrently. */
  async probeAll(): Promise<void> {
    await Promise.all(this.backends.map(async (backend) => {
      const failure = await this.#probe(backend);
      if (this.#stopping.signal.aborted) return;
      const at = new Date().toISOString();
      this.#lastChecks.set(backend, { ok: failure === undefined, at, detail: failure ?? PASSED });
      if (failure === undefined) this.#succeed(backend, PASSED);
      else this.reportFailure(backend, failure);
    }));
  }

  /** The latest probe's outcome, undefined before the first one ended. */
  lastCheck(backend: Backend): LastCheck | undefined {
    return this.#lastChecks.get(backend);
  }

  /** Real traffic reached the backend: its failure streak ends. */
  reportSuccess(backend: Backend): void {
    const streak = this.#streaks.get(backend);
    if (streak !== undefined && backend.healthy) streak.failures = 0;
  }

  /** A probe or a request failed; `reason` goes into the log line. */
  reportFailure(backend: Backend, reason: string): void {
    const streak = this.#streaks.get(backend);
    if (streak === undefined) return;
    streak.successes = 0;
    streak.failures++;
    if (backend.healthy && streak.failures >= this.options.unhealthy_threshold) {
      this.#markDown(backend, reason);
    }
  }

  /** Real traffic found the backend refusing connections: down at once. */
  reportRefused(backend: Backend, reason: string): void {
    const streak = this.#streaks.get(backend);
    if (streak === undefined) return;
    streak.successes = 0;
    streak.failures = Math.max(streak.failures + 1, this.options.unhealthy_threshold);
    if (backend.healthy) this.#markDown(backend, reason);
  }

  #succeed(backend: Backend, reason: string): void {
    const streak = this.#streaks.get(backend)!;
    streak.failures = 0;
    streak.successes++;
    if (!backend.healthy && streak.successes >= this.options.healthy_threshold) {
      backend.healthy = true;
      this.log(`backend ${backend.url.origin} up: ${reason}`);
    }
  }

  #markDown(backend: Backend, reason: string): void {
    backend.healthy = false;
    this.log(`backend ${backend.url.origin} down: ${reason}`);
  }

  /** Resolves to undefined on success, or the reason of the failure. */
  async #probe(backend: Backend): Promise<string | undefined> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.options.timeout);
    const signal = AbortSignal.any([timeout.signal, this.#stopping.signal]);
    try {
      const response = await fetch(new URL(this.options.path, backend.url), {
        client: this.#client,
        redirect: "manual",
        signal,
      });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 400) return undefined;
      return `health check got status ${response.status}`;
    } catch (error) {
      if (timeout.signal.aborted) return `health check timed out after ${this.options.timeout} ms`;
      return `health check failed: ${describeError(error)}`;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A one-line description of a fetch error, e.g. `connection refused`. */
function describeError(error: unknown): string {
  const message = error instanceof Error ? `${error.message} ${error.cause ?? ""}` : String(error);
  if (/refused/i.test(message)) return "connection refused";
  if (/reset/i.test(message)) return "connection reset";
  return message.split("\n")[0].trim();
}
