/**
 * The balancer's YAML config: the zod schema with its defaults, loading from
 * disk, and error messages that name the file, the line and the key of every
 * problem, one line each.
 *
 * @module
 */

import { z } from "zod";
import { type Document, isMap, isScalar, LineCounter, parseDocument, visit } from "yaml";
import type { AccessLogFormat } from "../observability/access_log.ts";
import { parseCidr } from "../admin/cidr.ts";
import { formatAddress, type ListenConfig } from "./listen_address.ts";
import type { StrategyName, TransportName } from "../types.ts";

export { formatAddress, type ListenConfig };

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
  listen: ListenConfig;
  /** Isolates serving the proxy's port; `auto` in the file is resolved to the CPU count. */
  workers: number;
  strategy: StrategyName;
  /** The default transport; every backend's own `transport` is already resolved. */
  transport: TransportName;
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
}

/**
 * A config that could not be read or is invalid. The message has one line per
 * problem, in file order, e.g.
 * `config.yaml:3 strategy: expected one of round_robin | weighted_round_robin | random | sticky, got "round-robin"`.
 *
 * @example
 * ```ts
 * try {
 *   await loadConfig("config.yaml");
 * } catch (error) {
 *   if (!(error instanceof ConfigError)) throw error;
 *   console.error(error.message);
 *   Deno.exit(2);
 * }
 * ```
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The problems, one per line of the message. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.problems = problems;
  }
}

/** Durations are whole milliseconds from 1 to this (24 hours). */
const MAX_DURATION_MS = 24 * 60 * 60 * 1000;
/** Large enough for any real traffic split, small enough that weight sums stay exact. */
const MAX_WEIGHT = 1_000_000;

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};
const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s?(B|KiB|MiB|GiB)$/;

/**
 * Converts a duration to milliseconds: a string with a unit (`"250ms"`,
 * `"5s"`, `"1.5m"`, `"1h"`) or a plain number of milliseconds. The result is
 * rounded to whole milliseconds; `undefined` means the value is not a
 * duration. Bounds are not checked here: the schema wants 1ms to 24h.
 *
 * @example
 * ```ts
 * parseDuration("250ms"); // 250
 * parseDuration("5s"); // 5000
 * parseDuration("1m"); // 60000
 * parseDuration(1500); // 1500
 * parseDuration("5 seconds"); // undefined
 * ```
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isNaN(value) ? undefined : Math.round(value);
  const match = DURATION_PATTERN.exec(value);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]]);
}

/**
 * Converts a size to bytes: a string with a unit (`"512B"`, `"64KiB"`,
 * `"100MiB"`, `"1.5GiB"`) or a plain number of bytes, rounded down to whole
 * bytes; `undefined` means the value is not a size.
 *
 * @example
 * ```ts
 * parseSize("64KiB"); // 65536
 * parseSize(1000); // 1000
 * parseSize("64KB"); // undefined
 * ```
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? Math.floor(value) : undefined;
  const match = SIZE_PATTERN.exec(value);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * SIZE_UNITS[match[2]]);
}

// Each schema below carries its own "expected ..." text (zod's `error` param),
// so a problem reads `KEYPATH: expected <text>, got <value>`.

const DURATION_TEXT = 'a duration like "250ms", "5s", "1m" or a number of milliseconds';

/**
 * A duration from `minMs` (1 unless 0 means "off") to 24 h, in milliseconds,
 * without a default: `description` goes into the JSON schema.
 */
function durationValue(minMs: number, description: string) {
  const rangeText = `a duration from ${minMs === 0 ? "0s" : "1ms"} to 24h`;
  return z.union([z.string().regex(DURATION_PATTERN, { error: DURATION_TEXT }), z.number()], {
    error: DURATION_TEXT,
  })
    .meta({ description })
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: "custom", message: DURATION_TEXT, input: value });
        return z.NEVER;
      }
      if (ms < minMs || ms > MAX_DURATION_MS) {
        ctx.addIssue({ code: "custom", message: rangeText, input: value });
        return z.NEVER;
      }
      return ms;
    });
}

function duration(defaultMs: number, minMs = 1) {
  return durationValue(minMs, `${DURATION_TEXT}; default ${defaultMs} ms`)
    .meta({ default: defaultMs })
    .default(defaultMs);
}

const SIZE_TEXT = 'a size like "64KiB", "100MiB" (B, KiB, MiB, GiB) or a number of bytes';
/** Sizes up to 1 TiB; larger is surely a typo. */
const MAX_SIZE = 1024 ** 4;
const SIZE_RANGE_TEXT = "a size from 0 to 1TiB";

function size(defaultBytes: number) {
  return z.union([z.string().regex(SIZE_PATTERN, { error: SIZE_TEXT }), z.number()], {
    error: SIZE_TEXT,
  })
    .meta({ description: `${SIZE_TEXT}; default ${defaultBytes} bytes`, default: defaultBytes })
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === undefined || bytes < 0 || bytes > MAX_SIZE) {
        ctx.addIssue({ code: "custom", message: SIZE_RANGE_TEXT, input: value });
        return z.NEVER;
      }
      return bytes;
    })
    .default(defaultBytes);
}

const PERCENT_TEXT = "a percent from 0 to 100";

function percent(defaultPercent: number) {
  return z.number({ error: PERCENT_TEXT }).min(0, { error: PERCENT_TEXT })
    .max(100, { error: PERCENT_TEXT }).default(defaultPercent);
}

function intAtLeast(min: number, max = Number.MAX_SAFE_INTEGER) {
  const text = `an integer >= ${min}`;
  return z.int({ error: text }).min(min, { error: text })
    .max(max, { error: `an integer <= ${max}` });
}

/** A strict mapping: unknown keys are typos, reported with the keys allowed here. */
function section<Shape extends z.ZodRawShape>(shape: Shape) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown key (expected one of ${keys})`
        : `a mapping with keys ${keys}`,
  });
}

/** An optional section: missing or empty (`key:` with nothing under it) means all defaults. */
function optionalSection<Schema extends z.ZodType>(schema: Schema) {
  // prefault (rather than a preprocess step) keeps the section optional in the JSON schema.
  return z.preprocess((value) => value ?? undefined, schema.prefault({} as z.input<Schema>));
}

const STRATEGIES: { [Name in StrategyName]: Name } = {
  round_robin: "round_robin",
  weighted_round_robin: "weighted_round_robin",
  random: "random",
  sticky: "sticky",
};
const TRANSPORTS: { [Name in TransportName]: Name } = { http1: "http1", fetch: "fetch" };

/** An RFC 6265 cookie-name: an RFC 2616 token. */
const COOKIE_NAME_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_NAME_TEXT = "a cookie name made of letters, digits and !#$%&'*+-.^_`|~";
/** Starts with one `/` (`//host` would name another server), no whitespace, controls or `#`. */
const HEALTH_PATH_PATTERN = /^\/(?!\/)[^\s#\p{Cc}]*$/u;
const HEALTH_PATH_TEXT = 'a path starting with a single "/", without spaces or "#"';
const HOST_TEXT = "a host name or IP address";
const PORT_TEXT = "an integer from 0 to 65535";
/** Printable ASCII without spaces, long enough not to be guessed. */
const TOKEN_PATTERN = /^[\x21-\x7e]{16,}$/;
const TOKEN_TEXT = "a token of at least 16 printable characters without spaces";
const CIDR_TEXT = 'a CIDR block like "10.0.0.0/8" or "::1/128"';
/** Who may use X-LB-Explain when the config does not say: loopback only. */
const LOOPBACK_CIDRS = ["127.0.0.0/8", "::1/128"];
const ACCESS_LOG_FORMATS: { [Format in AccessLogFormat]: Format } = {
  json: "json",
  common: "common",
  off: "off",
};

/** More isolates than this would only contend for the same cores. */
const MAX_WORKERS = 64;
const WORKERS_TEXT = `"auto" (one per CPU) or an integer from 1 to ${MAX_WORKERS}`;

const URL_TEXT = 'an absolute http:// or https:// URL like "http://127.0.0.1:9001"';

/**
 * Normalizes a backend URL to its origin, or says what a valid one looks like.
 * Used by the schema and by the duplicate check, so both agree on identity.
 */
function normalizeBackendUrl(raw: string): { origin: string } | { expected: string } {
  if (!/^https?:\/\//i.test(raw) || !URL.canParse(raw)) {
    return /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) && URL.canParse(raw)
      ? { expected: "an http:// or https:// URL" }
      : { expected: URL_TEXT };
  }
  const url = new URL(raw);
  if (url.username || url.password) return { expected: "a URL without credentials" };
  if (url.pathname !== "/") return { expected: 'a URL without a path (at most a trailing "/")' };
  if (raw.includes("?") || raw.includes("#")) {
    return { expected: "a URL without a query or fragment" };
  }
  return { origin: url.origin };
}

const backendUrl = z.string({ error: URL_TEXT }).transform((raw, ctx) => {
  const result = normalizeBackendUrl(raw);
  if ("origin" in result) return result.origin;
  ctx.addIssue({ code: "custom", message: result.expected, input: raw });
  return z.NEVER;
});

function choice<Values extends Readonly<Record<string, string>>>(values: Values) {
  const text = `one of ${Object.values(values).join(" | ")}`;
  return z.enum(values, { error: text });
}

function listenSection(defaultHost: string, defaultPort: number) {
  return optionalSection(section({
    host: z.string({ error: HOST_TEXT }).regex(/^\S+$/, { error: HOST_TEXT }).default(defaultHost),
    port: z.int({ error: PORT_TEXT }).min(0, { error: PORT_TEXT }).max(65535, { error: PORT_TEXT })
      .default(defaultPort),
  }));
}

const cidr = z.string({ error: CIDR_TEXT }).refine((text) => parseCidr(text) !== undefined, {
  error: CIDR_TEXT,
});

/** Present (even empty) turns the admin listener on; absent leaves it off. */
const adminSection = z.preprocess(
  (value) => value === null ? {} : value,
  section({
    listen: listenSection("127.0.0.1", 9090),
    token: z.string({ error: TOKEN_TEXT }).regex(TOKEN_PATTERN, { error: TOKEN_TEXT }).optional(),
    explain_from: z.array(cidr, { error: "a list of CIDR blocks" }).default(LOOPBACK_CIDRS),
  }).optional(),
);

const configSchema = section({
  listen: listenSection("0.0.0.0", 8080),
  workers: z.union([
    z.literal("auto"),
    z.int({ error: WORKERS_TEXT }).min(1, { error: WORKERS_TEXT })
      .max(MAX_WORKERS, { error: WORKERS_TEXT }),
  ], { error: WORKERS_TEXT })
    .meta({ description: `${WORKERS_TEXT}; default 1` })
    .default(1),
  strategy: choice(STRATEGIES).default("round_robin"),
  transport: choice(TRANSPORTS).default("http1"),
  backends: z.array(
    section({
      url: backendUrl,
      weight: intAtLeast(1, MAX_WEIGHT).default(1),
      transport: choice(TRANSPORTS).optional(),
      slow_start: durationValue(0, `${DURATION_TEXT}; default the top-level slow_start`)
        .optional(),
    }),
    { error: "a list of backends" },
  ).min(1, { error: "at least one backend" }),
  health_check: optionalSection(section({
    path: z.string({ error: HEALTH_PATH_TEXT }).regex(HEALTH_PATH_PATTERN, {
      error: HEALTH_PATH_TEXT,
    }).default("/"),
    interval: duration(5000),
    timeout: duration(2000),
    healthy_threshold: intAtLeast(1).default(2),
    unhealthy_threshold: intAtLeast(1).default(3),
    passive: optionalSection(section({
      consecutive_failures: intAtLeast(1).default(5),
      ejection_time: duration(10_000),
      max_ejection_time: duration(300_000),
      max_ejection_percent: percent(50),
    })),
  })),
  sticky: optionalSection(section({
    cookie: z.string({ error: COOKIE_NAME_TEXT }).regex(COOKIE_NAME_PATTERN, {
      error: COOKIE_NAME_TEXT,
    }).default("lb_backend"),
  })),
  slow_start: duration(0, 0),
  retries: optionalSection(section({
    attempts: intAtLeast(1, 10).default(2),
    budget: percent(20),
    min: intAtLeast(0).default(10),
    max_body: size(64 * 1024),
  })),
  limits: optionalSection(section({
    max_body: size(100 * 1024 * 1024),
    max_in_flight: intAtLeast(0).default(0),
    queue: intAtLeast(0).default(100),
  })),
  timeouts: optionalSection(section({
    connect: duration(2000),
    response: duration(30_000),
    drain: duration(10_000),
    queue: duration(1000),
    idle: duration(60_000),
    pool_idle: duration(4000),
  })),
  admin: adminSection,
  logging: optionalSection(section({
    access: choice(ACCESS_LOG_FORMATS).default("json"),
  })),
}).transform((config, ctx): Config => {
  const admin: AdminConfig = {
    listen: config.admin?.listen ?? null,
    token: config.admin?.token ?? null,
    explain_from: config.admin?.explain_from ?? LOOPBACK_CIDRS,
  };
  const clash = listenClash(config.listen, admin.listen);
  if (clash !== undefined) {
    ctx.addIssue({ code: "custom", message: clash, path: ["admin", "listen", "port"] });
  }
  return {
    ...config,
    workers: config.workers === "auto" ? navigator.hardwareConcurrency : config.workers,
    backends: config.backends.map((backend) => ({
      url: backend.url,
      weight: backend.weight,
      transport: backend.transport ?? config.transport,
      slow_start: backend.slow_start ?? config.slow_start,
    })),
    admin,
  };
});

const ANY_ADDRESS = ["0.0.0.0", "::", "[::]"];

/**
 * Says why the admin listener cannot share the proxy's address (a backend's
 * own `/metrics` must stay reachable through the balancer), or undefined
 * when it does not. A wildcard host clashes with every host on the same port.
 *
 * @example
 * ```ts
 * listenClash({ host: "0.0.0.0", port: 8080 }, { host: "127.0.0.1", port: 8080 });
 * // "a port other than the proxy's (listen 0.0.0.0:8080)"
 * listenClash({ host: "0.0.0.0", port: 8080 }, null); // undefined
 * ```
 */
export function listenClash(proxy: ListenConfig, admin: ListenConfig | null): string | undefined {
  if (admin === null || admin.port === 0 || admin.port !== proxy.port) return undefined;
  const wildcard = ANY_ADDRESS.includes(proxy.host) || ANY_ADDRESS.includes(admin.host);
  if (!wildcard && proxy.host !== admin.host) return undefined;
  return `a port other than the proxy's (listen ${formatAddress(proxy)})`;
}

/**
 * The JSON Schema of the config file as written (durations as strings or
 * numbers, every default shown), for editors: `deno task schema` writes it to
 * `config.schema.json`.
 *
 * @example
 * ```ts
 * const schema = configJsonSchema();
 * schema.required; // ["backends"]
 * ```
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: "input" }),
    title: "deno-lb config",
    description: "The balancer's YAML config; README.md describes every key.",
  };
}

/** Fallback wording for any issue a schema above did not word itself. */
function expectedText(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return `a value of type ${issue.expected}`;
    case "invalid_value":
      return `one of ${issue.values.map((value) => JSON.stringify(value)).join(" | ")}`;
    case "unrecognized_keys":
      return "unknown key";
    default:
      return "a valid value";
  }
}

type Path = readonly PropertyKey[];

/** One problem and where it sits in the file, for sorting into file order. */
interface Problem {
  offset: number;
  /** The dotted key path, empty for the whole document. */
  keyPath: string;
  detail: string;
}

/** The YAML node at `path`, or the nearest ancestor that exists. */
function nearestNode(doc: Document, path: Path): unknown {
  for (let length = path.length; length >= 0; length--) {
    const node = doc.getIn(path.slice(0, length), true);
    if (nodeOffset(node) !== undefined) return node;
  }
  return doc.contents;
}

function nodeOffset(node: unknown): number | undefined {
  const range = (node as { range?: unknown } | null | undefined)?.range;
  return Array.isArray(range) && typeof range[0] === "number" ? range[0] : undefined;
}

/** The key node of `key` in the mapping at `path`, so unknown keys point at themselves. */
function keyNode(doc: Document, path: Path, key: string): unknown {
  const map = doc.getIn(path, true);
  if (!isMap(map)) return undefined;
  const pair = map.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
  return pair?.key;
}

function lookup(data: unknown, path: Path): { found: false } | { found: true; value: unknown } {
  let value = data;
  for (const key of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) {
      return { found: false };
    }
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return { found: true, value };
}

/** The value JSON-style (strings quoted), shortened to stay on one readable line. */
function show(value: unknown): string {
  const text = typeof value === "number" || value === undefined
    ? String(value)
    : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function keyPath(path: Path): string {
  return path.map(String).join(".");
}

function issueProblems(
  issue: z.core.$ZodIssue,
  doc: Document,
  data: unknown,
): Problem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      offset: nodeOffset(keyNode(doc, issue.path, key)) ??
        nodeOffset(nearestNode(doc, issue.path)) ?? 0,
      keyPath: keyPath([...issue.path, key]),
      detail: issue.message,
    }));
  }
  const got = lookup(data, issue.path);
  return [{
    offset: nodeOffset(nearestNode(doc, issue.path)) ?? 0,
    keyPath: keyPath(issue.path),
    detail: `expected ${issue.message}, got ${
      got.found ? show(got.value) : "nothing (the key is missing)"
    }`,
  }];
}

/** Backends are identified by URL, so two with the same origin are an error. */
function duplicateUrlProblems(doc: Document, data: unknown): Problem[] {
  const backends = (data as { backends?: unknown } | null)?.backends;
  if (!Array.isArray(backends)) return [];
  const firstIndex = new Map<string, number>();
  const problems: Problem[] = [];
  backends.forEach((backend, index) => {
    const raw = (backend as { url?: unknown } | null)?.url;
    if (typeof raw !== "string") return;
    const result = normalizeBackendUrl(raw);
    if (!("origin" in result)) return;
    const first = firstIndex.get(result.origin);
    if (first === undefined) {
      firstIndex.set(result.origin, index);
      return;
    }
    const path = ["backends", index, "url"];
    problems.push({
      offset: nodeOffset(nearestNode(doc, path)) ?? 0,
      keyPath: keyPath(path),
      detail: `expected a URL no other backend has, got ${
        show(raw)
      } (same as backends.${first}.url)`,
    });
  });
  return problems;
}

function unresolvedAliasOffset(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, alias) {
      if (alias.resolve(doc) !== undefined) return;
      offset = nodeOffset(alias);
      return visit.BREAK;
    },
  });
  return offset;
}

function lineOf(lineCounter: LineCounter, offset: number): number {
  return Math.max(1, lineCounter.linePos(offset).line);
}

/**
 * Parses and validates config YAML. `fileName` only prefixes the messages.
 * Throws {@linkcode ConfigError} listing every problem, one per line, in file order.
 *
 * @example
 * ```ts
 * const config = parseConfig(
 *   "strategy: random\nbackends:\n  - url: http://127.0.0.1:9001\n    transport: fetch\n",
 *   "config.yaml",
 * );
 * config.backends[0]; // { url: "http://127.0.0.1:9001", weight: 1, transport: "fetch", slow_start: 0 }
 * config.health_check.interval; // 5000
 * ```
 */
export function parseConfig(text: string, fileName: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lineCounter, prettyErrors: false });
  const at = (offset: number) => `${fileName}:${lineOf(lineCounter, offset)}`;

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((error) => {
        const reason = error.code === "MULTIPLE_DOCS"
          ? "the file holds more than one document"
          : error.message;
        return `${at(error.pos[0])}: invalid YAML: ${reason}`;
      }),
    );
  }
  if (doc.contents === null) {
    throw new ConfigError([
      `${fileName}:1: expected a mapping with at least a backends key, got an empty file`,
    ]);
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    // an alias whose anchor is missing, or too many aliases
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError([`${at(unresolvedAliasOffset(doc) ?? 0)}: invalid YAML: ${reason}`]);
  }

  const result = configSchema.safeParse(data, { error: expectedText });
  const problems = [
    ...(result.success ? [] : result.error.issues.flatMap((i) => issueProblems(i, doc, data))),
    ...duplicateUrlProblems(doc, data),
  ];
  if (problems.length > 0 || !result.success) {
    problems.sort((a, b) => a.offset - b.offset);
    throw new ConfigError(problems.map((problem) => {
      const where = problem.keyPath
        ? `${at(problem.offset)} ${problem.keyPath}`
        : at(problem.offset);
      return `${where}: ${problem.detail}`;
    }));
  }
  return result.data;
}

/**
 * Reads and parses a config file. Throws {@linkcode ConfigError} when the file
 * cannot be read (`other.yaml: cannot read file: not found`) or is invalid.
 *
 * @example
 * ```ts
 * const config = await loadConfig("config.yaml");
 * console.log(summarizeConfig(config));
 * ```
 */
export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError([`${path}: cannot read file: ${readErrorReason(error)}`]);
  }
  return parseConfig(text, path);
}

function readErrorReason(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * The one-line summary `--check` prints.
 *
 * @example
 * ```ts
 * const config = parseConfig("backends: [{ url: http://127.0.0.1:9001 }]", "config.yaml");
 * summarizeConfig(config); // "config ok: listen 0.0.0.0:8080, strategy round_robin, 1 backend"
 * ```
 */
export function summarizeConfig(config: Config): string {
  const address = formatAddress(config.listen);
  const count = config.backends.length;
  return `config ok: listen ${address}, strategy ${config.strategy}, ${count} backend${
    count === 1 ? "" : "s"
  }`;
}
