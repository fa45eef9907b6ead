/**
 * What the balancer knows of its traffic: per-backend and per-route
 * counters, duration histograms and the last minutes of latency, filled in as
 * the request flow hands it each request's record, and the views of it the
 * admin API serves (Prometheus metrics, status, history). It writes the
 * access log.
 *
 * @module
 */

import type { AcmeStats, CertificateStatus } from "../acme/certificate_manager.ts";
import { type Cidr, inAnyCidr, parseCidr } from "../admin/cidr.ts";
import {
  type Config,
  DEFAULT_POOL,
  poolConfigs,
  type RouteConfig,
  routeConfigs,
} from "../config/types.ts";
import type { LastCheck } from "../health_check.ts";
import {
  type HistoryPoint,
  LatencyWindow,
  type Percentiles,
  SLICE_MS,
  type SliceCounts,
} from "./latency_window.ts";
import { AccessLog } from "./access_log.ts";
import { backendState, rampFactor } from "../load_balancer.ts";
import {
  DURATION_BUCKETS,
  Histogram,
  type HistogramCounts,
  type Labels,
  MetricsText,
} from "./metrics.ts";
import { originFormTarget } from "../routing/request_target.ts";
import type { LookupStats } from "../pools/dns_discovery.ts";
import type { PoolSet } from "../pools/pool_set.ts";
import type { FailedAttempt, RequestContext } from "../request_context.ts";
import type { TunnelRecord } from "../websocket/tunnel.ts";
import type { Backend, BackendState, ConnectionStats, UpstreamErrorKind } from "../types.ts";

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

/**
 * The `backend` label of requests that reached no backend (503 without one
 * in rotation), and the `pool` label of those that reached no pool
 * (redirects, fixed responses, no route).
 */
const NONE = "none";

const CONNECTION_FIELDS = ["idle", "active", "opened", "reused"] as const;

/** What the latency figures of `/status` cover. */
const STATUS_WINDOW_MS = 60_000;

/**
 * Everything counted for one backend, as plain data: what a copy of
 * {@linkcode BackendStats} sent from a worker isolate keeps.
 */
interface BackendCounts {
  /** The backend's id; for requests that reached no backend, `none` and the pool's name. */
  readonly key: string;
  readonly pool: string;
  /** The URL origin, or `none`. */
  readonly backend: string;
  readonly requests: Float64Array;
  readonly duration: HistogramCounts;
  readonly upstream: HistogramCounts;
  readonly added: HistogramCounts;
  readonly errors: Readonly<Record<ErrorClass, number>>;
  readonly retries: number;
  readonly inFlight: number;
  readonly window: { readonly slices: readonly SliceCounts[] };
  /** WebSocket tunnels open now, and what the closed ones carried: in (from clients), out. */
  readonly websockets: number;
  readonly websocketMessages: readonly [number, number];
  readonly websocketBytes: readonly [number, number];
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
  websockets = 0;
  readonly websocketMessages: [number, number] = [0, 0];
  readonly websocketBytes: [number, number] = [0, 0];

  constructor(readonly key: string, readonly pool: string, readonly backend: string) {}

  static of(backend: Backend): BackendStats {
    return new BackendStats(backend.id, backend.pool, backend.url.origin);
  }

  /** Requests of `pool` (or of none) that reached no backend. */
  static none(pool = NONE): BackendStats {
    return new BackendStats(`${NONE} ${pool}`, pool, NONE);
  }

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
    this.websockets += other.websockets;
    for (const i of [0, 1]) {
      this.websocketMessages[i] += other.websocketMessages[i];
      this.websocketBytes[i] += other.websocketBytes[i];
    }
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
  /** What the transports tell of each backend's connections, by backend id. */
  readonly connections: Readonly<Record<string, ConnectionStats>>;
  /** Answers by route and status class (`CODE_CLASSES` order). */
  readonly routes: Readonly<Record<string, readonly number[]>>;
}

/** Every isolate's figures added up. */
interface Tally {
  /** By key: backend id, or `none` and a pool's name. */
  readonly stats: Map<string, BackendStats>;
  /** By backend id; a figure is absent when no isolate's transport tells it. */
  readonly connections: Map<string, ConnectionStats>;
  /** By route name. */
  readonly routes: Map<string, number[]>;
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
  /** The DNS name discovery found it under; absent for a configured backend. */
  dns?: string;
}

/**
 * One pool in `GET /status`.
 *
 * @example
 * ```ts
 * const pool: PoolStatus = { name: "api", strategy: "round_robin", backends: [] };
 * ```
 */
export interface PoolStatus {
  name: string;
  strategy: string;
  backends: BackendStatus[];
}

/**
 * `GET /status`: the `default` pool's strategy (else the top-level one), the
 * config in force (without the admin token), every backend, the backends
 * by pool, and the routes in force.
 *
 * @example
 * ```ts
 * const status: Status = await telemetry.status();
 * status.backends.filter((backend) => backend.state === "up").length;
 * status.pools.map((pool) => pool.name); // ["default"]
 * ```
 */
export interface Status {
  strategy: string;
  config: Omit<Config, "admin"> & {
    admin: Omit<Config["admin"], "token"> & { writes_enabled: boolean };
  };
  backends: BackendStatus[];
  pools: PoolStatus[];
  routes: RouteConfig[];
  /** The ACME certificates: names, expiry, the next order, the last failure. */
  certificates: CertificateStatus[];
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
 * The balancer's telemetry. The request flow hands it each request's record:
 * `requestEnded` is the `onEnd` of every request context.
 *
 * @example
 * ```ts
 * const telemetry = new Telemetry({ config, pools, accessLog });
 * using ctx = RequestContext.open(request, info, { onEnd: telemetry.requestEnded });
 * // ...
 * const text = await telemetry.metricsText();
 * ```
 */
export class Telemetry {
  #config: Config;
  readonly #pools: PoolSet;
  #accessLog: AccessLog;
  #explainFrom: readonly Cidr[];
  readonly #stats = new Map<Backend, BackendStats>();
  /** By pool name, and `none` for requests that reached no pool. */
  readonly #none = new Map<string, BackendStats>();
  /** Answers by route name and status class. */
  readonly #routes = new Map<string, Float64Array>();
  /** Config reloads by outcome. */
  readonly configReloads = { success: 0, failure: 0 };
  /** The worker isolates' figures, which the admin views add to this isolate's own. */
  peers: (() => Promise<(TelemetrySnapshot | undefined)[]>) | undefined;
  /** DNS discovery's lookups, in the primary isolate. */
  lookups: (() => LookupStats[]) | undefined;
  /** ACME's orders and certificates, in the primary isolate. */
  certificates: (() => AcmeStats) | undefined;

  constructor(parts: { config: Config; pools: PoolSet; accessLog: AccessLog }) {
    this.#config = parts.config;
    this.#pools = parts.pools;
    this.#accessLog = parts.accessLog;
    this.#explainFrom = parts.config.admin.explain_from.map((text) => parseCidr(text)!);
    this.#track(parts.config);
  }

  /**
   * Puts a reloaded config in force: `/status` shows it, `admin.explain_from`
   * and `logging.access` apply from the next request, and new pools, backends
   * and routes get their series.
   */
  configure(config: Config): void {
    this.#config = config;
    this.#explainFrom = config.admin.explain_from.map((text) => parseCidr(text)!);
    if (config.logging.access !== this.#accessLog.format) {
      this.#accessLog = new AccessLog(config.logging.access, this.#accessLog.write);
    }
    this.#track(config);
  }

  /** Requests `backend` is serving now. */
  inFlightOf(backend: Backend): number {
    return this.#stats.get(backend)?.inFlight ?? 0;
  }

  /** Drops what was counted for a backend a reload removed, once it drained. */
  forget(backend: Backend): void {
    this.#stats.delete(backend);
  }

  /** Whether a client at `address` may ask for an `X-LB-Decision` with `X-LB-Explain: 1`. */
  mayExplain(address: string): boolean {
    return inAnyCidr(address, this.#explainFrom);
  }

  /** The request goes to `next` now, after `previous` (its earlier attempt) if any. */
  attemptStarted(previous: Backend | undefined, next: Backend): void {
    if (previous !== undefined) this.#statsOf(previous).inFlight--;
    this.#statsOf(next).inFlight++;
  }

  /** A WebSocket tunnel to `backend` opened. */
  tunnelOpened(backend: Backend): void {
    this.#statsOf(backend).websockets++;
  }

  /** A WebSocket tunnel to `backend` closed, having carried `record`. */
  tunnelClosed(backend: Backend, record: TunnelRecord): void {
    const stats = this.#statsOf(backend);
    stats.websockets--;
    stats.websocketMessages[0] += record.messagesIn;
    stats.websocketMessages[1] += record.messagesOut;
    stats.websocketBytes[0] += record.bytesIn;
    stats.websocketBytes[1] += record.bytesOut;
  }

  /** An attempt on a backend failed. */
  attemptFailed({ backend, error, retried }: FailedAttempt): void {
    const stats = this.#statsOf(backend);
    stats.errors[ERROR_CLASSES[error.kind]]++;
    if (retried) stats.retries++;
  }

  /** The response went out whole, or the client went away: the record is complete. */
  requestEnded = (ctx: RequestContext): void => {
    const backend = ctx.backend;
    if (backend !== undefined) this.#statsOf(backend).inFlight--;
    const stats = backend === undefined ? this.#noneOf(ctx.pool ?? NONE) : this.#statsOf(backend);
    const durationMs = performance.now() - ctx.startedAt;
    // 0: the handler threw, and Deno.serve's onError answered 500.
    const status = ctx.status || 500;
    const code = Math.min(Math.floor(status / 100), 5) - 1;
    stats.requests[code]++;
    if (ctx.route !== undefined) this.#routeCounts(ctx.route)[code]++;
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
      route: ctx.route ?? null,
      pool: ctx.pool ?? null,
      backend: backend?.url.origin ?? null,
      attempts: ctx.attempts,
      request_id: ctx.requestId,
      ...(ctx.tunnel === undefined ? {} : {
        websocket: {
          messages_in: ctx.tunnel.messagesIn,
          messages_out: ctx.tunnel.messagesOut,
          bytes_in: ctx.tunnel.bytesIn,
          bytes_out: ctx.tunnel.bytesOut,
          close_code: ctx.tunnel.closeCode,
        },
      }),
    });
  };

  /** What this isolate counted, to send to the primary isolate. */
  snapshot(): TelemetrySnapshot {
    const connections: Record<string, ConnectionStats> = {};
    for (const pool of this.#pools) {
      for (const backend of pool.backends) {
        connections[backend.id] = pool.transports[backend.transport].connectionStats(backend);
      }
    }
    return {
      backends: [...this.#stats.values(), ...this.#none.values()],
      connections,
      routes: Object.fromEntries([...this.#routes].map(([name, counts]) => [name, [...counts]])),
    };
  }

  /** `GET /metrics`: every metric in the Prometheus text format, over every isolate. */
  async metricsText(): Promise<string> {
    const text = new MetricsText();
    const tally = await this.#tally();
    const all = [...tally.stats.values()].filter((stats) =>
      // Requests that reached no pool show only once there were some.
      stats.pool !== NONE || stats.requests.some((count) => count > 0)
    );
    const perBackend = all.filter((stats) => stats.backend !== NONE);
    const label = (stats: BackendStats): Labels => ({ pool: stats.pool, backend: stats.backend });

    text.family("lb_requests_total", "counter", "Requests answered, by backend and status class.");
    for (const stats of all) {
      stats.requests.forEach((count, i) => {
        text.sample("lb_requests_total", { ...label(stats), code: CODE_CLASSES[i] }, count);
      });
    }
    text.family(
      "lb_route_requests_total",
      "counter",
      "Requests answered by each route, redirects and fixed responses included, by status class.",
    );
    for (const [route, counts] of tally.routes) {
      counts.forEach((count, i) => {
        text.sample("lb_route_requests_total", { route, code: CODE_CLASSES[i] }, count);
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
        text.sample("lb_upstream_errors_total", { ...label(stats), kind }, count);
      }
    }
    text.family(
      "lb_retries_total",
      "counter",
      "Requests sent on to another backend after an attempt on this one failed.",
    );
    for (const stats of perBackend) text.sample("lb_retries_total", label(stats), stats.retries);
    text.family("lb_backend_up", "gauge", "1 when the backend passes its health checks, else 0.");
    for (const backend of this.#pools.backends) {
      text.sample("lb_backend_up", backendLabels(backend), backend.healthy ? 1 : 0);
    }
    text.family("lb_in_flight_requests", "gauge", "Requests a backend is serving now.");
    for (const stats of perBackend) {
      text.sample("lb_in_flight_requests", label(stats), stats.inFlight);
    }
    this.#connectionMetrics(text, tally.connections);
    text.family("lb_websockets_open", "gauge", "WebSocket tunnels open to a backend now.");
    for (const stats of perBackend) {
      text.sample("lb_websockets_open", label(stats), stats.websockets);
    }
    const tunnels = [
      ["lb_websocket_messages_total", "websocketMessages", "WebSocket messages carried"],
      ["lb_websocket_bytes_total", "websocketBytes", "WebSocket message bytes carried"],
    ] as const;
    for (const [name, field, help] of tunnels) {
      text.family(
        name,
        "counter",
        `${help}, by direction (in: from clients), once a tunnel closed.`,
      );
      for (const stats of perBackend) {
        text.sample(name, { ...label(stats), direction: "in" }, stats[field][0]);
        text.sample(name, { ...label(stats), direction: "out" }, stats[field][1]);
      }
    }
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
    const lookups = this.lookups?.() ?? [];
    text.family("lb_dns_lookups_total", "counter", "DNS discovery lookups, by pool and result.");
    for (const { pool, dns, successes, failures } of lookups) {
      text.sample("lb_dns_lookups_total", { pool, dns, result: "success" }, successes);
      text.sample("lb_dns_lookups_total", { pool, dns, result: "failure" }, failures);
    }
    text.family(
      "lb_dns_backends",
      "gauge",
      "Backends of the last good DNS answer, by pool: what the pool keeps through failed lookups.",
    );
    for (const { pool, dns, backends } of lookups) {
      text.sample("lb_dns_backends", { pool, dns }, backends);
    }
    const acme = this.certificates?.() ?? { orders: { success: 0, failure: 0 }, certificates: [] };
    text.family("lb_acme_orders_total", "counter", "ACME certificate orders, by result.");
    for (const [result, count] of Object.entries(acme.orders)) {
      text.sample("lb_acme_orders_total", { result }, count);
    }
    text.family(
      "lb_certificate_expiry_seconds",
      "gauge",
      "When each ACME certificate in force expires, as a Unix time in seconds, by domain.",
    );
    for (const { domains, not_after } of acme.certificates) {
      if (not_after === null) continue;
      for (const domain of domains) {
        text.sample("lb_certificate_expiry_seconds", { domain }, Date.parse(not_after) / 1000);
      }
    }
    text.family("lb_config_reloads_total", "counter", "Config reloads, by result.");
    for (const [result, count] of Object.entries(this.configReloads)) {
      text.sample("lb_config_reloads_total", { result }, count);
    }
    return text.toString();
  }

  /** Connection figures, only those the backend's transport can tell. */
  #connectionMetrics(text: MetricsText, connections: Map<string, ConnectionStats>): void {
    const stats = this.#pools.backends.map((backend) => ({
      labels: backendLabels(backend),
      ...connections.get(backend.id),
    }));
    text.family(
      "lb_upstream_connections",
      "gauge",
      "Open connections to a backend, by state: idle (pooled) or active (serving a request).",
    );
    for (const { labels, idle, active } of stats) {
      if (idle !== undefined) {
        text.sample("lb_upstream_connections", { ...labels, state: "idle" }, idle);
      }
      if (active !== undefined) {
        text.sample("lb_upstream_connections", { ...labels, state: "active" }, active);
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
        if (value !== undefined) text.sample(name, entry.labels, value);
      }
    }
  }

  /** Series for every pool, backend and route of `config`, so they show before any traffic. */
  #track(config: Config): void {
    for (const pool of poolConfigs(config)) this.#noneOf(pool.name);
    for (const backend of this.#pools.backends) this.#statsOf(backend);
    for (const route of routeConfigs(config)) this.#routeCounts(route.name);
  }

  /**
   * The stats of `backend`, created on first use for a backend of the set in
   * force; a removed backend already forgotten gets stats that are not kept.
   */
  #statsOf(backend: Backend): BackendStats {
    let stats = this.#stats.get(backend);
    if (stats === undefined) {
      stats = BackendStats.of(backend);
      if (this.#pools.get(backend.pool)?.backends.includes(backend)) {
        this.#stats.set(backend, stats);
      }
    }
    return stats;
  }

  #noneOf(pool: string): BackendStats {
    let stats = this.#none.get(pool);
    if (stats === undefined) this.#none.set(pool, stats = BackendStats.none(pool));
    return stats;
  }

  #routeCounts(route: string): Float64Array {
    let counts = this.#routes.get(route);
    if (counts === undefined) {
      this.#routes.set(route, counts = new Float64Array(CODE_CLASSES.length));
    }
    return counts;
  }

  /** Every isolate's figures added up: this one's and its peers'. */
  async #tally(): Promise<Tally> {
    const snapshots = [this.snapshot(), ...await this.peers?.() ?? []];
    const stats = new Map<string, BackendStats>();
    const connections = new Map<string, ConnectionStats>();
    const routes = new Map<string, number[]>();
    const answered = snapshots.map((snapshot) => {
      if (snapshot === undefined) return undefined;
      for (const [id, theirs] of Object.entries(snapshot.connections)) {
        const sum = connections.get(id) ?? {};
        for (const field of CONNECTION_FIELDS) {
          if (theirs[field] !== undefined) sum[field] = (sum[field] ?? 0) + theirs[field];
        }
        connections.set(id, sum);
      }
      for (const [route, counts] of Object.entries(snapshot.routes)) {
        const sum = routes.get(route) ?? CODE_CLASSES.map(() => 0);
        counts.forEach((count, i) => sum[i] += count);
        routes.set(route, sum);
      }
      let count = 0;
      for (const counts of snapshot.backends) {
        let sum = stats.get(counts.key);
        if (sum === undefined) {
          stats.set(counts.key, sum = new BackendStats(counts.key, counts.pool, counts.backend));
        }
        sum.add(counts);
        for (const requests of counts.requests) count += requests;
      }
      return count;
    });
    return { stats, connections, routes, answered };
  }

  /** `GET /status`, over every isolate. */
  async status(): Promise<Status> {
    const tally = await this.#tally();
    const now = Date.now();
    const { admin, ...config } = this.#config;
    const backendStatus = (backend: Backend): BackendStatus => {
      const stats = tally.stats.get(backend.id) ?? BackendStats.of(backend);
      const status: BackendStatus = {
        id: backend.id,
        url: backend.url.origin,
        state: backendState(backend),
        weight: backend.weight,
        effective_weight: roundMs(backend.weight * rampFactor(backend, performance.now())),
        in_flight: stats.inFlight,
        latency_ms: stats.window.percentiles(now, STATUS_WINDOW_MS),
        last_check: this.#pools.get(backend.pool)?.health.lastCheck(backend) ?? null,
      };
      if (backend.dns !== undefined) status.dns = backend.dns;
      return status;
    };
    const pools = [...this.#pools].map((pool) => ({
      name: pool.name,
      strategy: pool.balancer.strategyName,
      backends: pool.backends.map(backendStatus),
    }));
    return {
      strategy: this.#pools.get(DEFAULT_POOL)?.balancer.strategyName ?? this.#config.strategy,
      config: {
        ...config,
        admin: {
          listen: admin.listen,
          explain_from: admin.explain_from,
          writes_enabled: admin.token !== null,
        },
      },
      backends: pools.flatMap((pool) => pool.backends),
      pools,
      routes: routeConfigs(this.#config),
      certificates: this.certificates?.().certificates ?? [],
    };
  }

  /** `GET /history`, over every isolate. */
  async history(): Promise<History> {
    const tally = await this.#tally();
    const now = Date.now();
    return {
      slice_ms: SLICE_MS,
      backends: this.#pools.backends.map((backend) => ({
        id: backend.id,
        url: backend.url.origin,
        points: (tally.stats.get(backend.id)?.window ?? new LatencyWindow()).history(now),
      })),
    };
  }
}

function backendLabels(backend: Backend): Labels {
  return { pool: backend.pool, backend: backend.url.origin };
}

/** Three decimals: milliseconds to the microsecond, weights to a thousandth. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
