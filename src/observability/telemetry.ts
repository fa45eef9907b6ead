/**
 * What the balancer knows of its traffic: per-backend counters, duration
 * histograms and the last minutes of latency, filled in as requests end, and
 * the views of it the admin API serves (Prometheus metrics, status, history).
 * It is the {@linkcode RequestObserver} of every request context, and writes
 * the access log.
 *
 * @module
 */

import { type Cidr, inAnyCidr, parseCidr } from "../admin/cidr.ts";
import type { Config } from "../config/config.ts";
import { type Decision, explainSelection } from "./explain.ts";
import type { HealthChecker, LastCheck } from "../health_check.ts";
import {
  type HistoryPoint,
  LatencyWindow,
  type Percentiles,
  SLICE_MS,
  type SliceCounts,
} from "./latency_window.ts";
import { AccessLog } from "./access_log.ts";
import { backendState, type LoadBalancer, rampFactor } from "../load_balancer.ts";
import {
  DURATION_BUCKETS,
  Histogram,
  type HistogramCounts,
  type Labels,
  MetricsText,
} from "./metrics.ts";
import { originFormTarget } from "../proxy.ts";
import type { FailedAttempt, RequestContext, RequestObserver } from "../request_context.ts";
import type {
  Backend,
  BackendState,
  ConnectionStats,
  Selection,
  Transport,
  TransportName,
  UpstreamErrorKind,
} from "../types.ts";

/** The kinds `lb_upstream_errors_total` counts. */
type ErrorClass = "connect" | "timeout" | "reset" | "invalid_response";

const ERROR_CLASSES: Readonly<Record<UpstreamErrorKind, ErrorClass>> = {
  connect_refused: "connect",
  connect_timeout: "timeout",
  response_timeout: "timeout",
  reset: "reset",
  invalid_response: "invalid_response",
};

/** `lb_requests_total`'s `code` label, by status / 100. */
const CODE_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/** The `backend` label of requests that reached no backend (503 without one in rotation). */
const NO_BACKEND = "none";

const CONNECTION_FIELDS = ["idle", "active", "opened", "reused"] as const;

/** What the latency figures of `/status` cover. */
const STATUS_WINDOW_MS = 60_000;

/**
 * Everything counted for one backend, as plain data: what a copy of
 * {@linkcode BackendStats} sent from a worker isolate keeps.
 */
interface BackendCounts {
  readonly label: string;
  readonly requests: Float64Array;
  readonly duration: HistogramCounts;
  readonly upstream: HistogramCounts;
  readonly added: HistogramCounts;
  readonly errors: Readonly<Record<ErrorClass, number>>;
  readonly retries: number;
  readonly inFlight: number;
  readonly window: { readonly slices: readonly SliceCounts[] };
}

/** Everything counted for one backend (or for requests that reached none). */
class BackendStats implements BackendCounts {
  /** Requests by status class, `CODE_CLASSES` order. */
  readonly requests = new Float64Array(CODE_CLASSES.length);
  readonly duration = new Histogram(DURATION_BUCKETS);
  readonly upstream = new Histogram(DURATION_BUCKETS);
  readonly added = new Histogram(DURATION_BUCKETS);
  readonly errors: Record<ErrorClass, number> = {
    connect: 0,
    timeout: 0,
    reset: 0,
    invalid_response: 0,
  };
  retries = 0;
  inFlight = 0;
  readonly window = new LatencyWindow();

  constructor(readonly label: string) {}

  /** Adds what another isolate counted for the same backend. */
  add(other: BackendCounts): void {
    for (let i = 0; i < this.requests.length; i++) this.requests[i] += other.requests[i];
    this.duration.add(other.duration);
    this.upstream.add(other.upstream);
    this.added.add(other.added);
    for (const kind of Object.keys(this.errors) as ErrorClass[]) {
      this.errors[kind] += other.errors[kind];
    }
    this.retries += other.retries;
    this.inFlight += other.inFlight;
    this.window.add(other.window);
  }
}

/**
 * What one isolate counted, as sent from a worker to the primary isolate,
 * which adds every worker's figures into the views the admin API serves.
 *
 * @example
 * ```ts
 * // in a worker:
 * self.postMessage({ type: "snapshot", snapshot: telemetry.snapshot() });
 * // in the primary isolate:
 * telemetry.peers = () => workers.snapshots();
 * ```
 */
export interface TelemetrySnapshot {
  /** Per backend, and for requests that reached none. */
  readonly backends: readonly BackendCounts[];
  /** What the transports tell of each backend's connections, by URL origin. */
  readonly connections: Readonly<Record<string, ConnectionStats>>;
}

/** Every isolate's figures added up. */
interface Tally {
  /** By backend label (URL origin, or `none`). */
  readonly stats: Map<string, BackendStats>;
  /** By URL origin; a figure is absent when no isolate's transport tells it. */
  readonly connections: Map<string, ConnectionStats>;
  /** Requests each isolate answered: the primary first, then the workers; undefined when one did not answer. */
  readonly answered: (number | undefined)[];
}

/**
 * One backend in `GET /status`.
 *
 * @example
 * ```ts
 * const entry: BackendStatus = {
 *   id: "1a2b3c4d", url: "http://127.0.0.1:9001", state: "up", weight: 1, effective_weight: 1,
 *   in_flight: 0, latency_ms: { p50: 1.2, p95: 3.4, p99: 5.6 },
 *   last_check: { ok: true, at: "2026-11-27T16:51:00.000Z", detail: "health check passed" },
 * };
 * ```
 */
export interface BackendStatus {
  id: string;
  url: string;
  state: BackendState;
  weight: number;
  /** The weight strategies use now: lower than `weight` during a slow start. */
  effective_weight: number;
  in_flight: number;
  /** Upstream time to the response head over the last minute. */
  latency_ms: Percentiles;
  /** Null until the first probe ended. */
  last_check: LastCheck | null;
}

/**
 * `GET /status`: the strategy, the config in force (without the admin token)
 * and every backend.
 *
 * @example
 * ```ts
 * const status: Status = await telemetry.status();
 * status.backends.filter((backend) => backend.state === "up").length;
 * ```
 */
export interface Status {
  strategy: string;
  config: Omit<Config, "admin"> & {
    admin: Omit<Config["admin"], "token"> & { writes_enabled: boolean };
  };
  backends: BackendStatus[];
}

/**
 * `GET /history`: each backend's last five minutes in 5-second slices.
 *
 * @example
 * ```ts
 * const history: History = await telemetry.history();
 * history.backends[0].points.at(-1); // { at, requests, errors, p50, p95, p99 }
 * ```
 */
export interface History {
  slice_ms: number;
  backends: { id: string; url: string; points: HistoryPoint[] }[];
}

/**
 * The balancer's telemetry.
 *
 * @example
 * ```ts
 * const telemetry = new Telemetry({ config, balancer, health, transports, accessLog });
 * using ctx = RequestContext.open(request, info, { observer: telemetry });
 * // ...
 * const text = await telemetry.metricsText();
 * ```
 */
export class Telemetry implements RequestObserver {
  #config: Config;
  readonly #balancer: LoadBalancer;
  readonly #health: HealthChecker;
  #transports: Readonly<Record<TransportName, Transport>>;
  #accessLog: AccessLog;
  #explainFrom: readonly Cidr[];
  readonly #stats = new Map<Backend, BackendStats>();
  readonly #none = new BackendStats(NO_BACKEND);
  /** Config reloads by outcome. */
  readonly configReloads = { success: 0, failure: 0 };
  /** The worker isolates' figures, which the admin views add to this isolate's own. */
  peers: (() => Promise<(TelemetrySnapshot | undefined)[]>) | undefined;

  constructor(parts: {
    config: Config;
    balancer: LoadBalancer;
    health: HealthChecker;
    transports: Readonly<Record<TransportName, Transport>>;
    accessLog: AccessLog;
  }) {
    this.#config = parts.config;
    this.#balancer = parts.balancer;
    this.#health = parts.health;
    this.#transports = parts.transports;
    this.#accessLog = parts.accessLog;
    this.#explainFrom = parts.config.admin.explain_from.map((text) => parseCidr(text)!);
    for (const backend of parts.balancer.backends) {
      this.#stats.set(backend, new BackendStats(backend.url.origin));
    }
  }

  /**
   * Puts a reloaded config in force: `/status` shows it, `admin.explain_from`
   * and `logging.access` apply from the next request, and connection figures
   * come from `transports`.
   */
  configure(config: Config, transports: Readonly<Record<TransportName, Transport>>): void {
    this.#config = config;
    this.#transports = transports;
    this.#explainFrom = config.admin.explain_from.map((text) => parseCidr(text)!);
    if (config.logging.access !== this.#accessLog.format) {
      this.#accessLog = new AccessLog(config.logging.access, this.#accessLog.write);
    }
  }

  /** Requests `backend` is serving now. */
  inFlightOf(backend: Backend): number {
    return this.#stats.get(backend)?.inFlight ?? 0;
  }

  /** Drops what was counted for a backend a reload removed, once it drained. */
  forget(backend: Backend): void {
    this.#stats.delete(backend);
  }

  mayExplain(address: string): boolean {
    return inAnyCidr(address, this.#explainFrom);
  }

  decide(request: Request, selection: Selection | undefined): Decision {
    return explainSelection(this.#balancer, request, selection);
  }

  inFlight(backend: Backend, delta: 1 | -1): void {
    this.#statsOf(backend).inFlight += delta;
  }

  attemptFailed({ backend, error, retried }: FailedAttempt): void {
    const stats = this.#statsOf(backend);
    stats.errors[ERROR_CLASSES[error.kind]]++;
    if (retried) stats.retries++;
  }

  requestEnded(ctx: RequestContext): void {
    const backend = ctx.backend;
    const stats = backend === undefined ? this.#none : this.#statsOf(backend);
    const durationMs = performance.now() - ctx.startedAt;
    // 0: the handler threw, and Deno.serve's onError answered 500.
    const status = ctx.status || 500;
    stats.requests[Math.min(Math.floor(status / 100), 5) - 1]++;
    stats.duration.observe(durationMs / 1000);
    if (ctx.upstreamMs !== undefined) stats.upstream.observe(ctx.upstreamMs / 1000);
    if (ctx.respondedAt > 0) {
      stats.added.observe(Math.max(0, ctx.respondedAt - ctx.startedAt - ctx.waitedMs) / 1000);
    }
    const now = Date.now();
    stats.window.record(now, ctx.upstreamMs, status >= 500);
    if (!this.#accessLog.enabled) return;
    const request = ctx.request;
    this.#accessLog.record({
      time: new Date(now - durationMs).toISOString(),
      client: ctx.clientAddress,
      method: request.method,
      target: originFormTarget(request.url),
      status,
      bytes: ctx.bytes,
      duration_ms: roundMs(durationMs),
      upstream_ms: ctx.upstreamMs === undefined ? null : roundMs(ctx.upstreamMs),
      backend: backend?.url.origin ?? null,
      attempts: ctx.attempts,
      request_id: ctx.requestId,
    });
  }

  /** What this isolate counted, to send to the primary isolate. */
  snapshot(): TelemetrySnapshot {
    const connections = Object.fromEntries(this.#balancer.backends.map((backend) => [
      backend.url.origin,
      this.#transports[backend.transport].connectionStats(backend),
    ]));
    return { backends: [...this.#stats.values(), this.#none], connections };
  }

  /** `GET /metrics`: every metric in the Prometheus text format, over every isolate. */
  async metricsText(): Promise<string> {
    const text = new MetricsText();
    const backends = this.#balancer.backends;
    const tally = await this.#tally();
    const none = tally.stats.get(NO_BACKEND)!;
    const all = [...tally.stats.values()];
    const perBackend = all.filter((stats) => stats !== none);
    const label = (stats: BackendStats): Labels => ({ backend: stats.label });

    text.family("lb_requests_total", "counter", "Requests answered, by backend and status class.");
    for (const stats of all) {
      stats.requests.forEach((count, i) => {
        text.sample("lb_requests_total", { backend: stats.label, code: CODE_CLASSES[i] }, count);
      });
    }
    const histograms = [
      [
        "lb_request_duration_seconds",
        "duration",
        all,
        "From a request's arrival to the end of its response body.",
      ],
      [
        "lb_upstream_duration_seconds",
        "upstream",
        perBackend,
        "From sending a request to a backend until its response head arrived.",
      ],
      [
        "lb_added_latency_seconds",
        "added",
        all,
        "Time the balancer added before the response head went out: total minus time waiting on backends.",
      ],
    ] as const;
    for (const [name, field, owners, help] of histograms) {
      text.family(name, "histogram", help);
      for (const stats of owners) text.histogram(name, label(stats), stats[field]);
    }
    text.family(
      "lb_upstream_errors_total",
      "counter",
      "Failed attempts on a backend, by kind: connect, timeout, reset, invalid_response.",
    );
    for (const stats of perBackend) {
      for (const [kind, count] of Object.entries(stats.errors)) {
        text.sample("lb_upstream_errors_total", { backend: stats.label, kind }, count);
      }
    }
    text.family(
      "lb_retries_total",
      "counter",
      "Requests sent on to another backend after an attempt on this one failed.",
    );
    for (const stats of perBackend) text.sample("lb_retries_total", label(stats), stats.retries);
    text.family("lb_backend_up", "gauge", "1 when the backend passes its health checks, else 0.");
    for (const backend of backends) {
      text.sample("lb_backend_up", { backend: backend.url.origin }, backend.healthy ? 1 : 0);
    }
    text.family("lb_in_flight_requests", "gauge", "Requests a backend is serving now.");
    for (const stats of perBackend) {
      text.sample("lb_in_flight_requests", label(stats), stats.inFlight);
    }
    this.#connectionMetrics(text, tally.connections);
    text.family(
      "lb_worker_requests_total",
      "counter",
      "Requests answered by each isolate: 0 is the primary, which also probes backends and serves this API.",
    );
    tally.answered.forEach((count, worker) => {
      if (count !== undefined) {
        text.sample("lb_worker_requests_total", { worker: String(worker) }, count);
      }
    });
    text.family("lb_config_reloads_total", "counter", "Config reloads, by result.");
    for (const [result, count] of Object.entries(this.configReloads)) {
      text.sample("lb_config_reloads_total", { result }, count);
    }
    return text.toString();
  }

  /** Connection figures, only those the backend's transport can tell. */
  #connectionMetrics(text: MetricsText, connections: Map<string, ConnectionStats>): void {
    const stats = this.#balancer.backends.map((backend) => ({
      backend: backend.url.origin,
      ...connections.get(backend.url.origin),
    }));
    text.family(
      "lb_upstream_connections",
      "gauge",
      "Open connections to a backend, by state: idle (pooled) or active (serving a request).",
    );
    for (const { backend, idle, active } of stats) {
      if (idle !== undefined) {
        text.sample("lb_upstream_connections", { backend, state: "idle" }, idle);
      }
      if (active !== undefined) {
        text.sample("lb_upstream_connections", { backend, state: "active" }, active);
      }
    }
    const counters = [
      ["lb_upstream_connections_opened_total", "opened", "Connections opened to a backend."],
      [
        "lb_upstream_connection_reuses_total",
        "reused",
        "Requests sent on a pooled connection that had served an earlier one.",
      ],
    ] as const;
    for (const [name, field, help] of counters) {
      text.family(name, "counter", help);
      for (const entry of stats) {
        const value = entry[field];
        if (value !== undefined) text.sample(name, { backend: entry.backend }, value);
      }
    }
  }

  /**
   * The stats of `backend`, created on first use for a backend of the set in
   * force; a removed backend already forgotten gets stats that are not kept.
   */
  #statsOf(backend: Backend): BackendStats {
    let stats = this.#stats.get(backend);
    if (stats === undefined) {
      stats = new BackendStats(backend.url.origin);
      if (this.#balancer.backends.includes(backend)) this.#stats.set(backend, stats);
    }
    return stats;
  }

  /** Every isolate's figures added up: this one's and its peers'. */
  async #tally(): Promise<Tally> {
    const snapshots = [this.snapshot(), ...await this.peers?.() ?? []];
    const stats = new Map<string, BackendStats>();
    const connections = new Map<string, ConnectionStats>();
    const answered = snapshots.map((snapshot) => {
      if (snapshot === undefined) return undefined;
      for (const [origin, theirs] of Object.entries(snapshot.connections)) {
        const sum = connections.get(origin) ?? {};
        for (const field of CONNECTION_FIELDS) {
          if (theirs[field] !== undefined) sum[field] = (sum[field] ?? 0) + theirs[field];
        }
        connections.set(origin, sum);
      }
      let count = 0;
      for (const counts of snapshot.backends) {
        let sum = stats.get(counts.label);
        if (sum === undefined) stats.set(counts.label, sum = new BackendStats(counts.label));
        sum.add(counts);
        for (const requests of counts.requests) count += requests;
      }
      return count;
    });
    return { stats, connections, answered };
  }

  /** `GET /status`, over every isolate. */
  async status(): Promise<Status> {
    const tally = await this.#tally();
    const now = Date.now();
    const { admin, ...config } = this.#config;
    return {
      strategy: this.#balancer.strategyName,
      config: {
        ...config,
        admin: {
          listen: admin.listen,
          explain_from: admin.explain_from,
          writes_enabled: admin.token !== null,
        },
      },
      backends: this.#balancer.backends.map((backend) => {
        const stats = tally.stats.get(backend.url.origin) ?? new BackendStats(backend.url.origin);
        return {
          id: backend.id,
          url: backend.url.origin,
          state: backendState(backend),
          weight: backend.weight,
          effective_weight: roundMs(backend.weight * rampFactor(backend, performance.now())),
          in_flight: stats.inFlight,
          latency_ms: stats.window.percentiles(now, STATUS_WINDOW_MS),
          last_check: this.#health.lastCheck(backend) ?? null,
        };
      }),
    };
  }

  /** `GET /history`, over every isolate. */
  async history(): Promise<History> {
    const tally = await this.#tally();
    const now = Date.now();
    return {
      slice_ms: SLICE_MS,
      backends: this.#balancer.backends.map((backend) => ({
        id: backend.id,
        url: backend.url.origin,
        points: (tally.stats.get(backend.url.origin)?.window ?? new LatencyWindow()).history(now),
      })),
    };
  }
}

/** Three decimals: milliseconds to the microsecond, weights to a thousandth. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
