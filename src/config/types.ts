/**
 * The parsed config's types: what `parseConfig` returns, every default filled
 * in and every duration in milliseconds.
 *
 * @module
 */

import type { AccessLogFormat } from "../observability/access_log.ts";
import type { HashOptions, StrategyName, TransportName } from "../types.ts";
import type { ListenConfig } from "./listen_address.ts";

/**
 * One upstream server as configured, with every default filled in.
 *
 * @example
 * ```ts
 * const backend: BackendConfig = {
 *   url: "http://127.0.0.1:9001",
 *   weight: 1,
 *   transport: "http1",
 *   slow_start: 0,
 * };
 * ```
 */
export interface BackendConfig {
  /** The normalized origin, e.g. `http://127.0.0.1:9001`; unique across backends. */
  url: string;
  /** An integer >= 1. */
  weight: number;
  /** The backend's own transport, or else the top-level one. */
  transport: TransportName;
  /** Milliseconds to ramp from 10% to full weight on joining; 0 = off. Else the top-level one. */
  slow_start: number;
  /** The DNS name it was found under, for a backend that `discovery` found. */
  dns?: string;
}

/**
 * Outlier ejection from real traffic; durations in milliseconds.
 *
 * @example
 * ```ts
 * const passive: PassiveHealthConfig = {
 *   consecutive_failures: 5,
 *   ejection_time: 10_000,
 *   max_ejection_time: 300_000,
 *   max_ejection_percent: 50,
 * };
 * ```
 */
export interface PassiveHealthConfig {
  /** 5xx responses or transport errors in a row that eject a backend. */
  consecutive_failures: number;
  /** The first ejection's length; each repeat doubles it. */
  ejection_time: number;
  /** The longest an ejection lasts. */
  max_ejection_time: number;
  /** At most this percent of the backends are ejected at once (at least one of two or more). */
  max_ejection_percent: number;
}

/**
 * Health checking, active and passive; durations in milliseconds.
 *
 * @example
 * ```ts
 * const health: HealthCheckConfig = {
 *   path: "/",
 *   interval: 5000,
 *   timeout: 2000,
 *   healthy_threshold: 2,
 *   unhealthy_threshold: 3,
 *   passive: {
 *     consecutive_failures: 5,
 *     ejection_time: 10_000,
 *     max_ejection_time: 300_000,
 *     max_ejection_percent: 50,
 *   },
 * };
 * ```
 */
export interface HealthCheckConfig {
  /** Origin-form path (may carry a query) requested on each backend. */
  path: string;
  interval: number;
  timeout: number;
  /** Consecutive successes that mark a down backend up. */
  healthy_threshold: number;
  /** Consecutive failures that mark an up backend down. */
  unhealthy_threshold: number;
  passive: PassiveHealthConfig;
}

/**
 * The balancer's timeouts, in milliseconds.
 *
 * @example
 * ```ts
 * const timeouts: TimeoutsConfig = {
 *   connect: 2000,
 *   response: 30000,
 *   drain: 10000,
 *   queue: 1000,
 *   idle: 60000,
 *   pool_idle: 4000,
 *   tunnel: 3_600_000,
 * };
 * ```
 */
export interface TimeoutsConfig {
  connect: number;
  /** Until the backend's response headers have arrived. */
  response: number;
  /** On SIGINT/SIGTERM (and for backends a reload removed), how long in-flight requests may take. */
  drain: number;
  /** The longest wait for a backend's in-flight slot before 503. */
  queue: number;
  /** The longest silence while reading an upstream body. */
  idle: number;
  /** Pooled upstream connections idle longer than this are closed. */
  pool_idle: number;
  /** A WebSocket with no message either way for this long is closed (1001). */
  tunnel: number;
}

/**
 * Retries of failed attempts on another backend.
 *
 * @example
 * ```ts
 * const retries: RetriesConfig = { attempts: 2, budget: 20, min: 10, max_body: 65536 };
 * ```
 */
export interface RetriesConfig {
  /** Tries per request in all, the first included. */
  attempts: number;
  /** Percent of the requests of a 10 s sliding window that may be retries. */
  budget: number;
  /** Retries always allowed per 10 s window, whatever the budget. */
  min: number;
  /** Bytes of request body kept for replay; a larger body is not retried. */
  max_body: number;
}

/**
 * Request size and concurrency limits.
 *
 * @example
 * ```ts
 * const limits: LimitsConfig = { max_body: 100 * 1024 * 1024, max_in_flight: 0, queue: 100 };
 * ```
 */
export interface LimitsConfig {
  /** The largest request body in bytes; larger ones get 413. */
  max_body: number;
  /** Requests one backend serves at once; 0 = no limit. */
  max_in_flight: number;
  /** Requests waiting for a slot, per backend. */
  queue: number;
}

/**
 * The admin API and who may ask for routing explanations.
 *
 * @example
 * ```ts
 * const admin: AdminConfig = {
 *   listen: { host: "127.0.0.1", port: 9090 },
 *   token: null,
 *   explain_from: ["127.0.0.0/8", "::1/128"],
 * };
 * ```
 */
export interface AdminConfig {
  /** Where the admin API listens; null when the config has no `admin` section. */
  listen: ListenConfig | null;
  /** The Bearer token write actions need; null disables writes. */
  token: string | null;
  /** CIDR blocks whose clients get an `X-LB-Decision` for `X-LB-Explain: 1`. */
  explain_from: string[];
}

/**
 * What the balancer logs besides errors.
 *
 * @example
 * ```ts
 * const logging: LoggingConfig = { access: "json" };
 * ```
 */
export interface LoggingConfig {
  /** The access log's format on stdout, or `off`. */
  access: AccessLogFormat;
}

/**
 * The parsed config: the YAML's keys, every optional one filled with its
 * default and every duration converted to milliseconds.
 *
 * @example
 * ```ts
 * const config: Config = parseConfig("backends: [{ url: http://127.0.0.1:9001 }]", "config.yaml");
 * config.listen.port; // 8080
 * config.timeouts.response; // 30000
 * ```
 */
export interface Config {
  /** The (first) listener's address; `--port` changes its port. */
  listen: ListenConfig;
  /**
   * Every listener, when the file lists several or gives one `tls`; absent
   * for a single plain listener, which is `listen`. {@linkcode listenersOf}
   * gives the list either way.
   */
  listeners?: ListenerConfig[];
  /** Isolates serving the proxy's port; `auto` in the file is resolved to the CPU count. */
  workers: number;
  strategy: StrategyName;
  /** The default transport; every backend's own `transport` is already resolved. */
  transport: TransportName;
  /** The `default` pool's backends; empty when the config has only `pools`. */
  backends: BackendConfig[];
  health_check: HealthCheckConfig;
  sticky: { cookie: string };
  /** The default slow start of backends in milliseconds; 0 = off. */
  slow_start: number;
  retries: RetriesConfig;
  limits: LimitsConfig;
  timeouts: TimeoutsConfig;
  admin: AdminConfig;
  logging: LoggingConfig;
  /**
   * The pools the file names under `pools`, their defaults taken from the
   * top level; absent when it has none. {@linkcode poolConfigs} adds the
   * `default` pool of the top-level `backends`.
   */
  pools?: Record<string, PoolConfig>;
  /** The routes as written, in order; absent when the file has none: every request goes to `default`. */
  routes?: RouteConfig[];
  /** `consistent_hash`'s key and bound for every pool that sets none; absent when not written. */
  hash?: HashOptions;
  /** `p2c_ewma`'s decay for every pool that sets none; absent when not written. */
  ewma?: EwmaConfig;
}

/** `hash` when the file has none: the client's address, no bound. */
export const DEFAULT_HASH: HashOptions = { key: "client_ip", balance_factor: 0 };
/** `ewma` when the file has none. */
export const DEFAULT_EWMA: EwmaConfig = { decay: 10_000 };

/**
 * `p2c_ewma`'s settings.
 *
 * @example
 * ```ts
 * const ewma: EwmaConfig = { decay: 10_000 };
 * ```
 */
export interface EwmaConfig {
  /** Milliseconds over which old latencies fade. */
  decay: number;
}

/**
 * Where a pool finds backends in DNS, re-resolved every `interval`.
 *
 * @example
 * ```ts
 * const discovery: DiscoveryConfig = {
 *   dns: "api.service.consul", type: "A", port: 8080, scheme: "http", interval: 10_000,
 * };
 * ```
 */
export interface DiscoveryConfig {
  dns: string;
  type: "A" | "AAAA" | "SRV";
  /** For A and AAAA answers; SRV records carry their own. */
  port?: number;
  scheme: "http" | "https";
  /** Milliseconds, at least 1000. */
  interval: number;
  /** `host:port` of the name server to ask; absent: the system resolver. */
  nameserver?: { ipAddr: string; port: number };
}

/**
 * One address the proxy listens on, with TLS when `tls` is given.
 *
 * @example
 * ```ts
 * const https: ListenerConfig = {
 *   host: "0.0.0.0", port: 443, tls: { cert: "/etc/lb/site.pem", key: "/etc/lb/site.key" },
 * };
 * ```
 */
export interface ListenerConfig extends ListenConfig {
  tls?: TlsConfig;
  /** A certificate from an ACME CA instead of files: such a listener is TLS too. */
  acme?: AcmeConfig;
}

/**
 * Where a listener's certificate comes from when an ACME CA issues it
 * (`tls.acme` in the file): orders, renewal and storage.
 *
 * @example
 * ```ts
 * const acme: AcmeConfig = {
 *   directory: "https://acme-v02.api.letsencrypt.org/directory",
 *   domains: ["example.com", "www.example.com"],
 *   storage: "/etc/lb/acme",
 *   challenge: "http-01",
 * };
 * ```
 */
export interface AcmeConfig {
  /** The CA's directory URL, `https://`. */
  directory: string;
  /** The account's contact address, if any. */
  email?: string;
  /** The names of the one certificate, lowercase, in the file's order. */
  domains: string[];
  /** An absolute folder for the account key and the certificates. */
  storage: string;
  /** Milliseconds before expiry at which to renew; absent: a third of the lifetime. */
  renew_before?: number;
  /** An absolute path of a PEM CA certificate trusted for the directory's own HTTPS. */
  ca?: string;
  challenge: "http-01";
}

/** Whether `listener` speaks TLS: with certificate files or with an ACME certificate. */
export function isTls(listener: ListenerConfig): boolean {
  return listener.tls !== undefined || listener.acme !== undefined;
}

/**
 * A listener's certificate: PEM files, read at start and when they change.
 *
 * @example
 * ```ts
 * const tls: TlsConfig = { cert: "/etc/lb/site.pem", key: "/etc/lb/site.key" };
 * ```
 */
export interface TlsConfig {
  /** The certificate chain, leaf first. */
  cert: string;
  key: string;
}

/**
 * Every listener of `config`, the first one at `config.listen` (whose port
 * `--port` may have changed).
 *
 * @example
 * ```ts
 * listenersOf(parseConfig("backends: [{ url: http://127.0.0.1:9001 }]", "c.yaml"));
 * // [{ host: "0.0.0.0", port: 8080 }]
 * ```
 */
export function listenersOf(config: Config): ListenerConfig[] {
  const [first, ...others] = config.listeners ?? [config.listen];
  return [{ ...first, ...config.listen }, ...others];
}

/**
 * Whether `config` has `pools` or `routes`: explanations, `--check`, the
 * banner and reload lines name pools and routes only then, and read as
 * before for a config of one list of backends.
 *
 * @example
 * ```ts
 * namesPools(parseConfig("backends: [{ url: http://127.0.0.1:9001 }]", "c.yaml")); // false
 * ```
 */
export function namesPools(config: Config): boolean {
  return config.pools !== undefined || config.routes !== undefined;
}

/** The name of the pool that the top-level `backends` make, and routes-less configs use. */
export const DEFAULT_POOL = "default";

/**
 * One named group of backends with its own strategy, health checks, sticky
 * cookie and connection pools; each key left out takes the top-level one.
 *
 * @example
 * ```ts
 * const pool: PoolConfig = {
 *   name: "api", strategy: "round_robin", transport: "http1", slow_start: 0,
 *   backends: [{ url: "http://127.0.0.1:9001", weight: 1, transport: "http1", slow_start: 0 }],
 *   health_check: config.health_check, sticky: { cookie: "lb_backend" },
 *   hash: DEFAULT_HASH, ewma: DEFAULT_EWMA,
 * };
 * ```
 */
export interface PoolConfig {
  name: string;
  strategy: StrategyName;
  transport: TransportName;
  /** Milliseconds; every backend's own `slow_start` is already resolved. */
  slow_start: number;
  /** The configured backends; those `discovery` finds join them. */
  backends: BackendConfig[];
  health_check: HealthCheckConfig;
  sticky: { cookie: string };
  hash: HashOptions;
  ewma: EwmaConfig;
  discovery?: DiscoveryConfig;
  /**
   * How `https://` backends are verified and whom they see: file paths, made
   * absolute; absent when the file gives no `tls`.
   */
  tls?: BackendTlsFiles;
}

/**
 * A pool's `tls` as the file gives it: `ca`, `cert` and `key` are paths,
 * checked when the config is loaded and read where the pool builds its
 * clients, so that `/status` shows where they are, never a key.
 *
 * @example
 * ```ts
 * const files: BackendTlsFiles = { ca: "/etc/lb/internal-ca.pem", server_name: "web.internal" };
 * ```
 */
export interface BackendTlsFiles {
  ca?: string;
  server_name?: string;
  cert?: string;
  key?: string;
}

/**
 * A pool's TLS to its `https://` backends as its clients use it: `ca`,
 * `cert` and `key` hold the PEM text of the files.
 *
 * @example
 * ```ts
 * const tls: BackendTlsConfig = {
 *   ca: Deno.readTextFileSync("/etc/lb/internal-ca.pem"),
 *   server_name: "web.internal",
 * };
 * ```
 */
export interface BackendTlsConfig {
  /** Certificates trusted besides the system roots. */
  ca?: string;
  /** The name sent in SNI and that the backend's certificate must carry; default the URL's host. */
  server_name?: string;
  /** The client certificate chain, for mutual TLS; given with `key`. */
  cert?: string;
  /** The client certificate's private key. */
  key?: string;
}

/**
 * The conditions of a route; each one given must hold. Host names are
 * lowercase, path prefixes normalised and without a trailing `/`, methods
 * uppercase and header names lowercase.
 *
 * @example
 * ```ts
 * const match: RouteMatchConfig = { host: "*.example.com", path_prefix: "/v1", methods: ["GET"] };
 * ```
 */
export interface RouteMatchConfig {
  /** Exact, or `*.example.com` for one or more labels in front of `example.com`. */
  host?: string;
  /** Segment-aware: `/v1` matches `/v1`, `/v1/` and `/v1/x`, not `/v10`. */
  path_prefix?: string;
  /** Exact path, instead of a prefix. */
  path?: string;
  methods?: string[];
  /** Exact, case-sensitive values by lowercase name. */
  headers?: Record<string, string>;
  scheme?: "http" | "https";
}

/**
 * One pool of a traffic split and its share.
 *
 * @example
 * ```ts
 * const canary: SplitConfig[] = [{ pool: "stable", weight: 90 }, { pool: "next", weight: 10 }];
 * ```
 */
export interface SplitConfig {
  pool: string;
  weight: number;
}

/**
 * An answer without a backend: a redirect to the request's URL with the
 * parts given replaced.
 *
 * @example
 * ```ts
 * const redirect: RedirectConfig = { scheme: "https", status: 301 };
 * ```
 */
export interface RedirectConfig {
  scheme?: "http" | "https";
  host?: string;
  port?: number;
  /** Replaces the whole path; the query is kept. */
  path?: string;
  /** 301, 302, 303, 307 or 308. */
  status: number;
}

/**
 * A fixed answer.
 *
 * @example
 * ```ts
 * const respond: RespondConfig = { status: 200, body: "ok\n", headers: { "content-type": "text/plain" } };
 * ```
 */
export interface RespondConfig {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/**
 * Header changes: `set` replaces every value of a header, `add` appends one
 * more, `remove` deletes every value. Names are lowercase.
 *
 * @example
 * ```ts
 * const filter: HeaderFilterConfig = { set: { "x-env": "prod" }, add: {}, remove: ["x-debug"] };
 * ```
 */
export interface HeaderFilterConfig {
  set: Record<string, string>;
  add: Record<string, string>;
  remove: string[];
}

/**
 * One route: the first whose match holds takes the request and does one of
 * `pool`, `split`, `redirect` or `respond`.
 *
 * @example
 * ```ts
 * const route: RouteConfig = { name: "api", match: { host: "api.example.com" }, pool: "api" };
 * ```
 */
export interface RouteConfig {
  /** As written, or `route-N` by position from 1. */
  name: string;
  /** Empty for a catch-all. */
  match: RouteMatchConfig;
  pool?: string;
  split?: SplitConfig[];
  redirect?: RedirectConfig;
  respond?: RespondConfig;
  /** Only with `pool` or `split`. */
  rewrite?: { path_prefix?: string; host?: string };
  request_headers?: HeaderFilterConfig;
  response_headers?: HeaderFilterConfig;
  /** Overrides of `timeouts.response` and `timeouts.idle` for this route, in milliseconds. */
  timeouts?: { response?: number; idle?: number };
}

/**
 * Every pool in force: the top-level `backends` as the `default` pool (when
 * there are any), then the `pools` in file order.
 *
 * @example
 * ```ts
 * poolConfigs(parseConfig("backends: [{ url: http://127.0.0.1:9001 }]", "c.yaml")).map((p) => p.name);
 * // ["default"]
 * ```
 */
export function poolConfigs(config: Config): PoolConfig[] {
  const pools = Object.values(config.pools ?? {});
  if (config.backends.length === 0) return pools;
  return [{
    name: DEFAULT_POOL,
    strategy: config.strategy,
    transport: config.transport,
    slow_start: config.slow_start,
    backends: config.backends,
    health_check: config.health_check,
    sticky: config.sticky,
    hash: config.hash ?? DEFAULT_HASH,
    ewma: config.ewma ?? DEFAULT_EWMA,
  }, ...pools];
}

/**
 * The routes in force: those of the file, or one catch-all route named
 * `default` to the `default` pool.
 *
 * @example
 * ```ts
 * routeConfigs(parseConfig("backends: [{ url: http://127.0.0.1:9001 }]", "c.yaml"));
 * // [{ name: "default", match: {}, pool: "default" }]
 * ```
 */
export function routeConfigs(config: Config): RouteConfig[] {
  return config.routes ?? [{ name: DEFAULT_POOL, match: {}, pool: DEFAULT_POOL }];
}

/**
 * A pool's configured backends, and where it discovers more.
 *
 * @example
 * ```ts
 * describeBackends(poolConfigs(config)[0]); // "2 backends http://127.0.0.1:9001 http://127.0.0.1:9002"
 * ```
 */
export function describeBackends(pool: PoolConfig): string {
  const parts = [];
  if (pool.backends.length > 0 || pool.discovery === undefined) {
    const urls = pool.backends.map((backend) => ` ${backend.url}`).join("");
    parts.push(
      `${`${pool.backends.length} backend${pool.backends.length === 1 ? "" : "s"}`}${urls}`,
    );
  }
  if (pool.discovery !== undefined) {
    parts.push(`discovery ${pool.discovery.type} ${pool.discovery.dns}`);
  }
  return parts.join(", ");
}
