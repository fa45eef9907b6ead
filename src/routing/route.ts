/**
 * One route compiled from its config: the conditions of its match (all but
 * the host, which the router's host table checks), its rewrite and its
 * header filters.
 *
 * @module
 */

import type { RouteConfig, RouteMatchConfig } from "../config/types.ts";
import { HeaderFilter } from "./header_filter.ts";
import { PoolSplit } from "./pool_split.ts";
import type { RequestTarget } from "./request_target.ts";

/** One condition of a match, named by its config key for explanations. */
interface Condition {
  readonly key: keyof RouteMatchConfig;
  holds(target: RequestTarget, request: Request): boolean;
}

/**
 * A route in force.
 *
 * @example
 * ```ts
 * const route = new Route({ name: "api", match: { path_prefix: "/v1" }, pool: "api" }, 0);
 * route.matches(parseTarget("http://lb/v1/users"), request); // true
 * route.upstreamPath("/v1/users"); // "/v1/users": no rewrite
 * ```
 */
export class Route {
  readonly name: string;
  readonly requestHeaders: HeaderFilter | undefined;
  readonly responseHeaders: HeaderFilter | undefined;
  /** The weighted choice between pools of a `split` route. */
  readonly split: PoolSplit | undefined;
  readonly #conditions: readonly Condition[];
  readonly #rewritePrefix: string | undefined;

  constructor(readonly config: RouteConfig, readonly index: number) {
    this.name = config.name;
    this.#conditions = conditionsOf(config.match);
    this.split = config.split === undefined ? undefined : new PoolSplit(config.split);
    this.requestHeaders = config.request_headers && new HeaderFilter(config.request_headers);
    this.responseHeaders = config.response_headers && new HeaderFilter(config.response_headers);
    const replacement = config.rewrite?.path_prefix;
    this.#rewritePrefix = replacement?.endsWith("/") ? replacement.slice(0, -1) : replacement;
  }

  /** Whether every condition but the host holds. */
  matches(target: RequestTarget, request: Request): boolean {
    for (const condition of this.#conditions) {
      if (!condition.holds(target, request)) return false;
    }
    return true;
  }

  /** The first condition (but the host) that does not hold, or undefined when all do. */
  failedCondition(target: RequestTarget, request: Request): keyof RouteMatchConfig | undefined {
    return this.#conditions.find((condition) => !condition.holds(target, request))?.key;
  }

  /**
   * The path to send upstream: `path` with the matched prefix replaced by
   * `rewrite.path_prefix` (the Gateway API's ReplacePrefixMatch), else as is.
   */
  upstreamPath(path: string): string {
    const replacement = this.#rewritePrefix;
    if (replacement === undefined) return path;
    const prefix = this.config.match.path_prefix!;
    // A `/` prefix matched nothing of the path but its leading slash, which stays.
    const rest = prefix === "/" ? path : path.slice(prefix.length);
    return replacement + rest || "/";
  }
}

function conditionsOf(match: RouteMatchConfig): Condition[] {
  const conditions: Condition[] = [];
  const { path_prefix: prefix, path, methods, headers, scheme } = match;
  if (prefix !== undefined && prefix !== "/") {
    const withSlash = `${prefix}/`;
    conditions.push({
      key: "path_prefix",
      holds: (target) => target.path === prefix || target.path.startsWith(withSlash),
    });
  }
  if (path !== undefined) conditions.push({ key: "path", holds: (target) => target.path === path });
  if (methods !== undefined) {
    conditions.push({ key: "methods", holds: (_, request) => methods.includes(request.method) });
  }
  if (headers !== undefined) {
    const wanted = Object.entries(headers);
    conditions.push({
      key: "headers",
      holds: (_, request) => wanted.every(([name, value]) => request.headers.get(name) === value),
    });
  }
  if (scheme !== undefined) {
    conditions.push({ key: "scheme", holds: (target) => target.scheme === scheme });
  }
  return conditions;
}
