/**
 * The zod schema of the whole config file: every key, its default and the
 * "expected ..." text of its errors. The top-level `backends` and each of the
 * `pools` share the backend, health-check and sticky schemas; routes have
 * their own module.
 *
 * @module
 */

import { z } from "zod";
import type { AccessLogFormat } from "../observability/access_log.ts";
import { parseCidr } from "../admin/cidr.ts";
import type { StrategyName, TransportName } from "../types.ts";
import { formatAddress, type ListenConfig } from "./listen_address.ts";
import { resolveRouting, routesSchema } from "./routes_schema.ts";
import {
  choice,
  duration,
  DURATION_TEXT,
  durationValue,
  intAtLeast,
  MAX_WEIGHT,
  optionalSection,
  percent,
  section,
  size,
} from "./schema_parts.ts";
import {
  type AcmeConfig,
  type AdminConfig,
  type BackendTlsFiles,
  type Config,
  DEFAULT_EWMA,
  DEFAULT_HASH,
  type HealthCheckConfig,
  isTls,
  type ListenerConfig,
  type PoolConfig,
} from "./types.ts";

const STRATEGIES: { [Name in StrategyName]: Name } = {
  round_robin: "round_robin",
  weighted_round_robin: "weighted_round_robin",
  random: "random",
  sticky: "sticky",
  least_connections: "least_connections",
  p2c_ewma: "p2c_ewma",
  consistent_hash: "consistent_hash",
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
export function normalizeBackendUrl(raw: string): { origin: string } | { expected: string } {
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

function listenSection(defaultHost: string, defaultPort: number) {
  return optionalSection(section({
    host: z.string({ error: HOST_TEXT }).regex(/^\S+$/, { error: HOST_TEXT }).default(defaultHost),
    port: z.int({ error: PORT_TEXT }).min(0, { error: PORT_TEXT }).max(65535, { error: PORT_TEXT })
      .default(defaultPort),
  }));
}

const PEM_PATH_TEXT = "the path of a PEM file";
const pemPath = z.string({ error: PEM_PATH_TEXT }).min(1, { error: PEM_PATH_TEXT });
const certificatePair = section({ cert: pemPath, key: pemPath });

const DIRECTORY_TEXT = 'an https:// URL like "https://acme-v02.api.letsencrypt.org/directory"';
/** A DNS name, or one under `*.`; lowercase is what the CA puts in the certificate. */
const DOMAIN_PATTERN =
  /^(?=.{1,253}$)(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const DOMAIN_TEXT = 'a DNS name like "example.com" or "*.example.com"';
const EMAIL_TEXT = 'an e-mail address like "ops@example.com"';
const RENEW_BEFORE_TEXT = `${DURATION_TEXT}, or days like "30d"; default a third of the lifetime`;
/** A certificate lives at most 398 days (CA/Browser Forum); a longer window is a typo. */
const MAX_RENEW_BEFORE_DAYS = 3650;

/** `tls.acme`: a certificate an ACME CA issues; the checks of `ca` and `storage` are in config.ts. */
const acmeSection = section({
  directory: z.string({ error: DIRECTORY_TEXT }).refine(
    (url) => /^https:\/\//i.test(url) && URL.canParse(url),
    { error: DIRECTORY_TEXT },
  ),
  email: z.string({ error: EMAIL_TEXT }).regex(/^[^\s@]+@[^\s@]+$/, { error: EMAIL_TEXT })
    .optional(),
  domains: z.array(
    z.string({ error: DOMAIN_TEXT }).transform((name) => name.toLowerCase()).pipe(
      z.string().regex(DOMAIN_PATTERN, { error: DOMAIN_TEXT }),
    ),
    { error: "a list of domain names" },
  ).min(1, { error: "at least one domain" }),
  storage: z.string({ error: "a folder path" }).min(1, { error: "a folder path" })
    .default("./acme"),
  renew_before: durationValue(1, RENEW_BEFORE_TEXT, MAX_RENEW_BEFORE_DAYS).optional(),
  ca: pemPath.optional(),
  challenge: choice({ "http-01": "http-01", "tls-alpn-01": "tls-alpn-01" } as const)
    .default("http-01"),
});

/**
 * A listener's `tls`: `cert` and `key`, or `certificates` (which would be
 * chosen by SNI; Deno 2.9's server takes one certificate, so one entry only),
 * or `acme`.
 */
const tlsSection = section({
  cert: pemPath.optional(),
  key: pemPath.optional(),
  certificates: z.array(certificatePair, { error: "a list of { cert, key }" }).min(1, {
    error: "at least one { cert, key }",
  }).optional(),
  acme: acmeSection.optional(),
});

const listenerSection = section({
  host: z.string({ error: HOST_TEXT }).regex(/^\S+$/, { error: HOST_TEXT }).default("0.0.0.0"),
  port: z.int({ error: PORT_TEXT }).min(0, { error: PORT_TEXT }).max(65535, { error: PORT_TEXT })
    .default(8080),
  tls: tlsSection.optional(),
});

/** One listener or a list of them; a single one is checked as the list of it. */
const listenersSchema = z.preprocess(
  (value) => value === null || value === undefined ? [{}] : Array.isArray(value) ? value : [value],
  z.array(listenerSection, { error: "a listener { host, port, tls } or a list of them" }).min(1, {
    error: "at least one listener",
  }),
);

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

const healthPath = z.string({ error: HEALTH_PATH_TEXT }).regex(HEALTH_PATH_PATTERN, {
  error: HEALTH_PATH_TEXT,
});
const cookieName = z.string({ error: COOKIE_NAME_TEXT }).regex(COOKIE_NAME_PATTERN, {
  error: COOKIE_NAME_TEXT,
});

const backendList = z.array(
  section({
    url: backendUrl,
    weight: intAtLeast(1, MAX_WEIGHT).default(1),
    transport: choice(TRANSPORTS).optional(),
    slow_start: durationValue(0, `${DURATION_TEXT}; default the pool's slow_start`).optional(),
  }),
  { error: "a list of backends" },
).min(1, { error: "at least one backend" });

/** A pool's own health_check: every key it leaves out is the top-level one's. */
const poolHealthCheck = (text: string) =>
  section({
    path: healthPath.optional(),
    interval: durationValue(1, text).optional(),
    timeout: durationValue(1, text).optional(),
    healthy_threshold: intAtLeast(1).optional(),
    unhealthy_threshold: intAtLeast(1).optional(),
    passive: section({
      consecutive_failures: intAtLeast(1).optional(),
      ejection_time: durationValue(1, text).optional(),
      max_ejection_time: durationValue(1, text).optional(),
      max_ejection_percent: percent(50).optional(),
    }).optional(),
  });

const HASH_KEY_PATTERN =
  /^(?:(?:header|cookie|query):[!#$%&'*+\-.^_`|~0-9A-Za-z]+|client_ip|path)$/;
const HASH_KEY_TEXT = "header:NAME, cookie:NAME, query:NAME, client_ip or path";
const BALANCE_FACTOR_TEXT = "0 (off) or an integer of at least 100 (percent of the average load)";

/** `consistent_hash`'s key and load bound. */
const hashSection = section({
  key: z.string({ error: HASH_KEY_TEXT }).regex(HASH_KEY_PATTERN, { error: HASH_KEY_TEXT })
    .default(DEFAULT_HASH.key),
  balance_factor: z.int({ error: BALANCE_FACTOR_TEXT })
    .refine((factor) => factor === 0 || factor >= 100, { error: BALANCE_FACTOR_TEXT })
    .default(DEFAULT_HASH.balance_factor),
});
const ewmaSection = section({ decay: duration(DEFAULT_EWMA.decay) });
/** A pool's own `hash` and `ewma`: every key it leaves out is the top level's. */
const poolHashSection = section({
  key: z.string({ error: HASH_KEY_TEXT }).regex(HASH_KEY_PATTERN, { error: HASH_KEY_TEXT })
    .optional(),
  balance_factor: z.int({ error: BALANCE_FACTOR_TEXT })
    .refine((factor) => factor === 0 || factor >= 100, { error: BALANCE_FACTOR_TEXT })
    .optional(),
});
const poolEwmaSection = section({
  decay: durationValue(1, `${DURATION_TEXT}; default the top-level ewma.decay`).optional(),
});

const DNS_NAME_PATTERN =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?$/;
const DNS_NAME_TEXT = 'a DNS name like "api.service.consul"';
const NAMESERVER_PATTERN = /^(?:(\d{1,3}(?:\.\d{1,3}){3})|\[([0-9a-fA-F:]+)\]):(\d{1,5})$/;
const NAMESERVER_TEXT = 'an address and port like "127.0.0.1:8600" or "[::1]:53"';
const DISCOVERY_PORT_TEXT = "an integer from 1 to 65535";

/** Backends found in DNS; the checks that need two keys are in `resolvePool`. */
const discoverySection = section({
  dns: z.string({ error: DNS_NAME_TEXT }).regex(DNS_NAME_PATTERN, { error: DNS_NAME_TEXT }),
  type: choice({ A: "A", AAAA: "AAAA", SRV: "SRV" } as const).default("A"),
  port: z.int({ error: DISCOVERY_PORT_TEXT }).min(1, { error: DISCOVERY_PORT_TEXT })
    .max(65535, { error: DISCOVERY_PORT_TEXT }).optional(),
  scheme: choice({ http: "http", https: "https" } as const).default("http"),
  interval: duration(10_000),
  nameserver: z.string({ error: NAMESERVER_TEXT }).regex(NAMESERVER_PATTERN, {
    error: NAMESERVER_TEXT,
  }).transform((text) => {
    const [, v4, v6, port] = NAMESERVER_PATTERN.exec(text)!;
    return { ipAddr: v4 ?? v6, port: Number(port) };
  }).optional(),
});

const SERVER_NAME_TEXT = 'a DNS name like "web.internal"';

/** A pool's TLS to its https:// backends; `resolveBackendTls` reads the files. */
const poolTlsSection = section({
  ca: pemPath.optional(),
  server_name: z.string({ error: SERVER_NAME_TEXT }).regex(DNS_NAME_PATTERN, {
    error: SERVER_NAME_TEXT,
  }).optional(),
  cert: pemPath.optional(),
  key: pemPath.optional(),
});

const poolSection = section({
  strategy: choice(STRATEGIES).optional(),
  transport: choice(TRANSPORTS).optional(),
  slow_start: durationValue(0, `${DURATION_TEXT}; default the top-level slow_start`).optional(),
  backends: backendList.optional(),
  health_check: poolHealthCheck(`${DURATION_TEXT}; default the top-level health_check's`)
    .optional(),
  sticky: section({ cookie: cookieName.optional() }).optional(),
  hash: poolHashSection.optional(),
  ewma: poolEwmaSection.optional(),
  discovery: discoverySection.optional(),
  tls: poolTlsSection.optional(),
});

const configSchema = section({
  listen: listenersSchema,
  workers: z.union([
    z.literal("auto"),
    z.int({ error: WORKERS_TEXT }).min(1, { error: WORKERS_TEXT })
      .max(MAX_WORKERS, { error: WORKERS_TEXT }),
  ], { error: WORKERS_TEXT })
    .meta({ description: `${WORKERS_TEXT}; default 1` })
    .default(1),
  strategy: choice(STRATEGIES).default("round_robin"),
  transport: choice(TRANSPORTS).default("http1"),
  backends: backendList.optional(),
  health_check: optionalSection(section({
    path: healthPath.default("/"),
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
  sticky: optionalSection(section({ cookie: cookieName.default("lb_backend") })),
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
    tunnel: duration(3_600_000),
  })),
  admin: adminSection,
  logging: optionalSection(section({
    access: choice(ACCESS_LOG_FORMATS).default("json"),
  })),
  hash: hashSection.optional(),
  ewma: ewmaSection.optional(),
  pools: z.record(z.string(), poolSection, { error: "a mapping of pool names to pools" })
    .optional(),
  routes: routesSchema.optional(),
}).transform((config, ctx): Config => {
  const admin: AdminConfig = {
    listen: config.admin?.listen ?? null,
    token: config.admin?.token ?? null,
    explain_from: config.admin?.explain_from ?? LOOPBACK_CIDRS,
  };
  const listeners = config.listen.map((listener, index) => resolveListener(ctx, listener, index));
  const addresses = new Map<string, number>();
  listeners.forEach((listener, index) => {
    const address = formatAddress(listener);
    const first = addresses.get(address);
    if (listener.port !== 0 && first !== undefined) {
      const detail = `${address} is listen.${first}'s address already: give each listener its own`;
      ctx.addIssue({
        code: "custom",
        message: detail,
        path: ["listen", index],
        params: { detail },
      });
    }
    addresses.set(address, index);
  });
  const acmeAt = listeners.findIndex((listener) => listener.acme !== undefined);
  if (acmeAt !== -1 && listeners.every(isTls)) {
    const detail = "tls.acme answers the CA's http-01 challenges on a plain listener: " +
      "add one (the CA connects to port 80)";
    ctx.addIssue({
      code: "custom",
      message: detail,
      path: ["listen", acmeAt, "tls", "acme"],
      params: { detail },
    });
  }
  for (const listener of listeners) {
    const clash = listenClash(listener, admin.listen);
    if (clash !== undefined) {
      ctx.addIssue({ code: "custom", message: clash, path: ["admin", "listen", "port"] });
    }
  }
  const { pools, routes, hash, ewma, ...rest } = config;
  const resolved: Config = {
    ...rest,
    listen: { host: listeners[0].host, port: listeners[0].port },
    workers: config.workers === "auto" ? navigator.hardwareConcurrency : config.workers,
    backends: resolveBackends(config.backends ?? [], config.transport, config.slow_start),
    admin,
  };
  if (listeners.length > 1 || isTls(listeners[0])) resolved.listeners = listeners;
  if (hash !== undefined) resolved.hash = hash;
  if (ewma !== undefined) resolved.ewma = ewma;
  if (pools !== undefined) {
    resolved.pools = Object.fromEntries(
      Object.entries(pools).map(([name, pool]) => [name, resolvePool(ctx, name, pool, resolved)]),
    );
  }
  const routing = resolveRouting(ctx, resolved, routes);
  if (routing !== undefined) resolved.routes = routing;
  return resolved;
});

/** A listener with its `tls` as one certificate pair, or a problem on `ctx`. */
function resolveListener(
  ctx: z.core.$RefinementCtx,
  listener: z.output<typeof listenerSection>,
  index: number,
): ListenerConfig {
  const { host, port, tls } = listener;
  if (tls === undefined) return { host, port };
  const at = ["listen", index, "tls"];
  const report = (detail: string, key?: string) =>
    ctx.addIssue({
      code: "custom",
      message: detail,
      path: key === undefined ? at : [...at, ...key.split(".")],
      params: { detail },
    });
  const given = (tls.cert !== undefined || tls.key !== undefined) ? 1 : 0;
  if (tls.acme !== undefined) {
    if (given || tls.certificates !== undefined) {
      report("give acme, or certificate files, not both");
    }
    return { host, port, acme: resolveAcme(tls.acme, (detail, key) => report(detail, key)) };
  }
  if (tls.certificates !== undefined && given) {
    report("give cert and key, or certificates, not both");
  } else if (tls.certificates !== undefined && tls.certificates.length > 1) {
    report(
      "several certificates would be chosen by SNI, which Deno's server cannot do: give one " +
        "certificate per listener (a certificate with several names covers several hosts)",
    );
  } else if (tls.certificates === undefined && (tls.cert === undefined || tls.key === undefined)) {
    report("tls needs both cert and key");
  }
  const pair = tls.certificates?.[0] ?? { cert: tls.cert ?? "", key: tls.key ?? "" };
  return { host, port, tls: pair };
}

/**
 * `tls.acme` as the config keeps it; reports what Deno or the challenge
 * cannot do. `storage` and `ca` are made absolute by config.ts.
 */
function resolveAcme(
  acme: z.output<typeof acmeSection>,
  report: (detail: string, key: string) => void,
): AcmeConfig {
  const { challenge, ...rest } = acme;
  if (challenge === "tls-alpn-01") {
    report(
      "tls-alpn-01 needs a certificate chosen per handshake (by ALPN and SNI), which Deno's " +
        "server cannot do: use http-01 with a plain listener on port 80",
      "acme.challenge",
    );
  }
  const wildcard = acme.domains.find((domain) => domain.startsWith("*."));
  if (wildcard !== undefined) {
    report(
      `${wildcard}: a wildcard certificate needs the dns-01 challenge; http-01 cannot prove it ` +
        "(the CA would refuse the order)",
      "acme.domains",
    );
  }
  const duplicate = acme.domains.find((domain, i) => acme.domains.indexOf(domain) !== i);
  if (duplicate !== undefined) report(`${duplicate} is listed twice`, "acme.domains");
  return { ...rest, challenge: "http-01" };
}

type BackendInput = NonNullable<z.output<typeof backendList>>[number];

function resolveBackends(
  backends: BackendInput[],
  transport: TransportName,
  slowStart: number,
): Config["backends"] {
  return backends.map((backend) => ({
    url: backend.url,
    weight: backend.weight,
    transport: backend.transport ?? transport,
    slow_start: backend.slow_start ?? slowStart,
  }));
}

/**
 * A pool with every key it left out taken from the top level and the files
 * of its `tls` read; reports on `ctx` what needs two of its keys (backends
 * or discovery, a port for A and AAAA answers, an interval of at least a
 * second) and the problems of its `tls`.
 */
function resolvePool(
  ctx: z.core.$RefinementCtx,
  name: string,
  pool: z.output<typeof poolSection>,
  top: Config,
): PoolConfig {
  const at = (...keys: string[]) => ["pools", name, ...keys];
  const { discovery } = pool;
  if (pool.backends === undefined && discovery === undefined) {
    const detail = "a pool needs backends, discovery or both";
    ctx.addIssue({ code: "custom", message: detail, path: at(), params: { detail } });
  }
  if (discovery !== undefined && discovery.type !== "SRV" && discovery.port === undefined) {
    const detail = `${discovery.type} answers carry no port: give discovery.port`;
    ctx.addIssue({ code: "custom", message: detail, path: at("discovery"), params: { detail } });
  }
  if (discovery !== undefined && discovery.interval < 1000) {
    const detail = "re-resolving more often than every second is not allowed: give at least 1s";
    const path = at("discovery", "interval");
    ctx.addIssue({ code: "custom", message: detail, path, params: { detail } });
  }
  const transport = pool.transport ?? top.transport;
  const slowStart = pool.slow_start ?? top.slow_start;
  const backends = resolveBackends(pool.backends ?? [], transport, slowStart);
  const usesFetch = backends.some((backend) => backend.transport === "fetch") ||
    (discovery !== undefined && transport === "fetch");
  const own = pool.health_check ?? {};
  const health: HealthCheckConfig = {
    ...top.health_check,
    ...own,
    passive: { ...top.health_check.passive, ...own.passive },
  };
  return {
    name,
    strategy: pool.strategy ?? top.strategy,
    transport,
    slow_start: slowStart,
    backends,
    health_check: health,
    sticky: { cookie: pool.sticky?.cookie ?? top.sticky.cookie },
    hash: { ...DEFAULT_HASH, ...top.hash, ...pool.hash },
    ewma: { ...DEFAULT_EWMA, ...top.ewma, ...pool.ewma },
    ...(discovery === undefined ? {} : { discovery }),
    ...(pool.tls === undefined
      ? {}
      : { tls: resolveBackendTls(ctx, at("tls"), pool.tls, usesFetch) }),
  };
}

/**
 * A pool's `tls` as given (its files are checked with the listeners'
 * certificates, once the whole file is valid); reports on `ctx` `cert`
 * without `key` and a `server_name` that could not be honoured: beside a
 * client certificate, or when some backend uses the fetch transport.
 */
function resolveBackendTls(
  ctx: z.core.$RefinementCtx,
  at: string[],
  tls: z.output<typeof poolTlsSection>,
  usesFetch: boolean,
): BackendTlsFiles {
  const report = (detail: string, key: string) =>
    ctx.addIssue({ code: "custom", message: detail, path: [...at, key], params: { detail } });
  if (tls.server_name !== undefined) {
    if (tls.cert !== undefined) {
      report(
        "a client certificate cannot go with server_name: Deno sends one only on connections " +
          "that check the name they dial, so give the backends' URLs by that name instead",
        "server_name",
      );
    }
    if (usesFetch) {
      report(
        "server_name works with the http1 transport only: fetch checks the certificate " +
          "against the URL's host",
        "server_name",
      );
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    report("a client certificate needs both cert and key", tls.cert === undefined ? "key" : "cert");
  }
  return tls;
}

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
 * schema.properties; // { listen, workers, strategy, ... }
 * ```
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: "input" }),
    title: "deno-lb config",
    description: "The balancer's YAML config; docs/configuration.md describes every key.",
  };
}

/** The schema `parseConfig` validates with. */
export { configSchema };
