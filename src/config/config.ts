/**
 * The balancer's YAML config: loading it from disk, validating it against
 * the schema, and error messages that name the file, the line and the key of
 * every problem, one line each.
 *
 * @module
 */

import { LineCounter, parseDocument } from "yaml";
import { formatAddress, type ListenConfig } from "./listen_address.ts";
import {
  duplicateUrlProblems,
  expectedText,
  issueProblems,
  lineOf,
  missingBackendsProblems,
  unresolvedAliasOffset,
} from "./problems.ts";
import { configSchema } from "./schema.ts";
import { readErrorReason } from "./read_error.ts";
import { readBackendTls, readCaCertificate, readCertificatePair } from "./tls_files.ts";
import {
  type Config,
  describeBackends,
  listenersOf,
  namesPools,
  poolConfigs,
  type RouteConfig,
  routeConfigs,
} from "./types.ts";

export { formatAddress, type ListenConfig };
export { parseDuration, parseSize } from "./schema_parts.ts";
export { configJsonSchema, listenClash } from "./schema.ts";
export * from "./types.ts";

/**
 * A config that could not be read or is invalid. The message has one line per
 * problem, in file order, e.g.
 * `config.yaml:3 strategy: expected one of round_robin | weighted_round_robin | random | sticky | least_connections | p2c_ewma | consistent_hash, got "round-robin"`.
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
    ...missingBackendsProblems(doc, data),
    ...(result.success ? certificateProblems(result.data, fileName, doc, data) : []),
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
 * Checks each TLS listener's certificate files (or its ACME CA's `ca`) and
 * each pool's `tls` files (relative paths, `tls.acme.storage` among them, are
 * taken from the config file's folder and made absolute in `config`), as
 * problems of their keys.
 */
function certificateProblems(
  config: Config,
  fileName: string,
  doc: Parameters<typeof issueProblems>[1],
  data: unknown,
): ReturnType<typeof issueProblems> {
  const folder = fileName.includes("/") ? fileName.slice(0, fileName.lastIndexOf("/") + 1) : "";
  const base = folder.startsWith("/") ? folder : `${Deno.cwd()}/${folder}`;
  const absolute = (path: string) =>
    path.startsWith("/") ? path : `${base}${path.replace(/^(?:\.\/)+/, "")}`;
  const problemAt = (path: PropertyKey[], detail: string) =>
    issueProblems(
      { code: "custom", message: detail, path, params: { detail }, input: undefined },
      doc,
      data,
    );
  const listeners = (config.listeners ?? []).flatMap((listener, index) => {
    const { acme } = listener;
    if (acme !== undefined) {
      acme.storage = absolute(acme.storage);
      if (acme.ca === undefined) return [];
      acme.ca = absolute(acme.ca);
      const ca = readCaCertificate(acme.ca);
      return "problem" in ca ? problemAt(["listen", index, "tls", "acme", "ca"], ca.problem) : [];
    }
    if (listener.tls === undefined) return [];
    listener.tls = { cert: absolute(listener.tls.cert), key: absolute(listener.tls.key) };
    const pair = readCertificatePair(listener.tls);
    return "problem" in pair ? problemAt(["listen", index, "tls", pair.file], pair.problem) : [];
  });
  const pools = Object.values(config.pools ?? {}).flatMap((pool) => {
    if (pool.tls === undefined) return [];
    const files = pool.tls;
    for (const key of ["ca", "cert", "key"] as const) {
      if (files[key] !== undefined) files[key] = absolute(files[key]);
    }
    const tls = readBackendTls(files);
    return "problem" in tls ? problemAt(["pools", pool.name, "tls", tls.file], tls.problem) : [];
  });
  return [...listeners, ...pools];
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

/**
 * What `--check` prints: one line for a config without pools or routes, else
 * that line and one more for each pool and each route.
 *
 * @example
 * ```ts
 * const config = parseConfig("backends: [{ url: http://127.0.0.1:9001 }]", "config.yaml");
 * summarizeConfig(config); // "config ok: listen 0.0.0.0:8080, strategy round_robin, 1 backend"
 * ```
 */
export function summarizeConfig(config: Config): string {
  const address = listenersOf(config).map((listener) =>
    `${formatAddress(listener)}${
      listener.acme !== undefined
        ? ` (tls from acme: ${listener.acme.domains.join(" ")})`
        : listener.tls === undefined
        ? ""
        : " (tls)"
    }`
  ).join(" ");
  if (!namesPools(config)) {
    return `config ok: listen ${address}, strategy ${config.strategy}, ${
      count(config.backends.length, "backend")
    }`;
  }
  const pools = poolConfigs(config);
  const routes = routeConfigs(config);
  return [
    `config ok: listen ${address}, ${count(pools.length, "pool")}, ${
      count(routes.length, "route")
    }`,
    ...pools.map((pool) =>
      `pool ${pool.name}: strategy ${pool.strategy}, ${describeBackends(pool)}`
    ),
    ...routes.map((route) => `route ${route.name}: ${describeRoute(route)}`),
  ].join("\n");
}

/**
 * A route in one line: its conditions, then what it does.
 *
 * @example
 * ```ts
 * describeRoute({ name: "api", match: { host: "api.example.com" }, pool: "api" });
 * // "host api.example.com -> pool api"
 * ```
 */
export function describeRoute(route: RouteConfig): string {
  const conditions = Object.entries(route.match).map(([key, value]) =>
    `${key} ${typeof value === "string" ? value : JSON.stringify(value)}`
  );
  const when = conditions.length === 0 ? "every request" : conditions.join(", ");
  return `${when} -> ${describeAction(route)}`;
}

function describeAction(route: RouteConfig): string {
  if (route.pool !== undefined) return `pool ${route.pool}`;
  if (route.split !== undefined) {
    return `split ${route.split.map((entry) => `${entry.pool} ${entry.weight}`).join(", ")}`;
  }
  if (route.redirect !== undefined) {
    const { status, ...parts } = route.redirect;
    const changes = Object.entries(parts).map(([key, value]) => `${key} ${value}`);
    return `redirect ${status}${changes.length > 0 ? ` (${changes.join(", ")})` : ""}`;
  }
  return `respond ${route.respond!.status}`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
