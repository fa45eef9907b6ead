/**
 * The route table, compiled once per config: routes with an exact host are
 * found through a map, wildcard hosts through a map of their suffixes, so
 * matching costs the same for 10 host routes as for 1,000; the first route
 * (in config order) whose other conditions hold takes the request.
 *
 * @module
 */

import type { RouteConfig } from "../config/types.ts";
import type { RequestTarget } from "./request_target.ts";
import { Route } from "./route.ts";

/** Hosts seen that no exact route names, with their candidate routes; cleared when full. */
const MAX_CACHED_HOSTS = 1024;

/**
 * Why a route did not take a request, for explanations.
 *
 * @example
 * ```ts
 * const miss: RouteMiss = { route: "api", failed: "host" };
 * ```
 */
export interface RouteMiss {
  route: string;
  /** The first condition that did not hold. */
  failed: string;
}

/**
 * The routes of a config.
 *
 * @example
 * ```ts
 * const router = new Router(routeConfigs(config));
 * const route = router.route(parseTarget(request.url), request);
 * route?.name; // "api", or undefined when no route matches
 * ```
 */
export class Router {
  readonly routes: readonly Route[];
  /** By exact host: the routes that may take it (exact, wildcard and host-less), in order. */
  readonly #byHost = new Map<string, readonly Route[]>();
  /** By the suffix after `*.`: wildcard routes. */
  readonly #wildcards = new Map<string, Route[]>();
  readonly #anyHost: readonly Route[];
  readonly #cached = new Map<string, readonly Route[]>();

  constructor(configs: readonly RouteConfig[]) {
    this.routes = configs.map((config, index) => new Route(config, index));
    const exact = new Map<string, Route[]>();
    const anyHost: Route[] = [];
    for (const route of this.routes) {
      const host = route.config.match.host;
      if (host === undefined) anyHost.push(route);
      else if (host.startsWith("*.")) push(this.#wildcards, host.slice(2), route);
      else push(exact, host, route);
    }
    this.#anyHost = anyHost;
    for (const [host, routes] of exact) {
      this.#byHost.set(host, inOrder([routes, ...this.#wildcardsOf(host), anyHost]));
    }
  }

  /** The route that takes the request, or undefined when none matches. */
  route(target: RequestTarget, request: Request): Route | undefined {
    for (const route of this.#candidates(target.host)) {
      if (route.matches(target, request)) return route;
    }
    return undefined;
  }

  /** The routes before the one that took the request (or all of them), each with why it did not. */
  misses(target: RequestTarget, request: Request): RouteMiss[] {
    const candidates = this.#candidates(target.host);
    const misses: RouteMiss[] = [];
    for (const route of this.routes) {
      const failed = candidates.includes(route) ? route.failedCondition(target, request) : "host";
      if (failed === undefined) break;
      misses.push({ route: route.name, failed });
    }
    return misses;
  }

  #candidates(host: string): readonly Route[] {
    const known = this.#byHost.get(host) ?? this.#cached.get(host);
    if (known !== undefined) return known;
    if (this.#wildcards.size === 0) return this.#anyHost;
    const routes = inOrder([...this.#wildcardsOf(host), this.#anyHost]);
    if (this.#cached.size >= MAX_CACHED_HOSTS) this.#cached.clear();
    this.#cached.set(host, routes);
    return routes;
  }

  /** The wildcard routes for `host`: `*.example.com` takes `a.example.com` and `a.b.example.com`. */
  #wildcardsOf(host: string): Route[][] {
    const lists: Route[][] = [];
    for (let dot = host.indexOf("."); dot !== -1; dot = host.indexOf(".", dot + 1)) {
      const routes = this.#wildcards.get(host.slice(dot + 1));
      if (routes !== undefined) lists.push(routes);
    }
    return lists;
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function inOrder(lists: readonly (readonly Route[])[]): Route[] {
  return lists.flat().sort((a, b) => a.index - b.index);
}
