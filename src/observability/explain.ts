/**
 * Explainable routing: which route takes a request (or why none does), and
 * which backend of its pool it goes (or would go) to and why. The same
 * decision answers `POST /explain` on the admin API and, as the
 * `X-LB-Decision` response header, a client that sent `X-LB-Explain: 1`.
 * Route and pool are named when the config has routes or pools.
 *
 * @module
 */

import { type Config, namesPools } from "../config/types.ts";
import { backendState, type LoadBalancer } from "../load_balancer.ts";
import type { Pool } from "../pools/pool.ts";
import type { PoolSet } from "../pools/pool_set.ts";
import type { FailedAttempt, RequestContext } from "../request_context.ts";
import { redirectLocation } from "../routing/fixed_answers.ts";
import { parseTarget, type RequestTarget } from "../routing/request_target.ts";
import type { Route } from "../routing/route.ts";
import type { RouteMiss, Router } from "../routing/router.ts";
import { readCookie } from "../strategies/sticky.ts";
import type { Backend, BackendState, ClientInfo, Selection, StrategyName } from "../types.ts";

/**
 * One backend as the selection saw it.
 *
 * @example
 * ```ts
 * const candidate: Candidate = { id: "1a2b3c4d", url: "http://127.0.0.1:9001", eligible: false, reason: "draining" };
 * ```
 */
export interface Candidate {
  id: string;
  url: string;
  /** Whether the strategy could pick it. */
  eligible: boolean;
  /** Its state: `up` when eligible, else why not. */
  reason: BackendState;
}

/**
 * How the sticky cookie weighed in: a hit keeps the client on its backend.
 *
 * @example
 * ```ts
 * const sticky: StickyOutcome = { hit: false, reason: "no lb_backend cookie" };
 * ```
 */
export interface StickyOutcome {
  hit: boolean;
  reason: string;
}

/**
 * Why a backend was (or would be) chosen.
 *
 * @example
 * ```ts
 * const decision: Decision = explain(balancer, new Request("http://lb/cart"));
 * decision.backend; // "1a2b3c4d", or null when no backend is in rotation
 * ```
 */
export interface Decision {
  /** The chosen backend's id, null when none is in rotation. */
  backend: string | null;
  strategy: StrategyName;
  candidates: Candidate[];
  /** Null unless the strategy is `sticky`. */
  sticky: StickyOutcome | null;
  /** How the strategy weighed the candidates (its key, its costs), for those that say. */
  detail?: string;
}

/**
 * What routing works with, as the request flow has it.
 *
 * @example
 * ```ts
 * const routing: Routing = proxy; // the Proxy of the request flow
 * ```
 */
export interface Routing {
  config: Config;
  router: Router;
  pools: PoolSet;
  listenPort: number;
}

/**
 * `POST /explain`'s answer: the route (with the routes before it and why
 * they did not match), what it does, and for a pool the backend decision.
 *
 * @example
 * ```ts
 * const answer: RouteDecision = {
 *   route: "api", misses: [{ route: "web", failed: "host" }], action: "pool", pool: "api",
 *   backend: "1a2b3c4d", strategy: "round_robin", candidates: [], sticky: null,
 * };
 * ```
 */
export interface RouteDecision extends Partial<Decision> {
  route: string | null;
  misses: RouteMiss[];
  action: "pool" | "split" | "redirect" | "respond" | "none";
  pool?: string;
  /** What a redirect, a fixed response or no route would answer. */
  status?: number;
  location?: string;
}

/**
 * Where `request` would go now and why, without sending anything and without
 * moving a strategy or a split on (random draws a backend like a real
 * request would). Only the backend decision when the config has neither
 * routes nor pools.
 *
 * @example
 * ```ts
 * explain(proxy, new Request("http://api.example.com/v1", { headers: { cookie: "lb_backend=1a2b3c4d" } }));
 * ```
 */
export function explain(
  routing: Routing,
  request: Request,
  client?: ClientInfo,
): Decision | RouteDecision {
  const target = parseTarget(request.url);
  const route = routing.router.route(target, request);
  if (!namesPools(routing.config)) {
    const balancer = routing.pools.get(route!.config.pool!)!.balancer;
    return explainSelection(balancer, request, balancer.previewBackend(request, client), client);
  }
  const base = { route: route?.name ?? null, misses: routing.router.misses(target, request) };
  if (route === undefined) return { ...base, action: "none", status: 404 };
  const { redirect, respond } = route.config;
  if (redirect !== undefined) {
    const location = redirectLocation(redirect, target, routing.listenPort);
    return { ...base, action: "redirect", status: redirect.status, location };
  }
  if (respond !== undefined) return { ...base, action: "respond", status: respond.status };
  const inRotation = (name: string) => routing.pools.get(name)!.balancer.hasCandidates();
  const pool = routing.pools.get(route.split?.peek(inRotation) ?? route.config.pool!)!;
  const balancer = pool.balancer;
  return {
    ...base,
    action: route.split === undefined ? "pool" : "split",
    pool: pool.name,
    ...explainSelection(balancer, request, balancer.previewBackend(request, client), client),
  };
}

/**
 * The explanation of one request that asked for it, as it proceeds: the
 * flow tells it the backend selection, and it writes `X-LB-Decision`.
 *
 * @example
 * ```ts
 * const explanation = new Explanation(config, target, route);
 * explanation.selected(pool, ctx, selection);
 * explanation.annotate(response, ctx);
 * ```
 */
export class Explanation {
  #pool: string | undefined;
  #decision: Decision | undefined;

  constructor(
    readonly config: Config,
    readonly target: RequestTarget,
    readonly route: Route | undefined,
  ) {}

  /** The pool's strategy made `selection` (or found no backend) for the request of `ctx` just now. */
  selected(pool: Pool, ctx: RequestContext, selection: Selection | undefined): void {
    this.#pool = pool.name;
    this.#decision = explainSelection(pool.balancer, ctx.request, selection, ctx);
  }

  /** Sets `X-LB-Decision` on `response`, the answer to the request `ctx` recorded. */
  annotate(response: Response, ctx: RequestContext): void {
    const parts: string[] = [];
    if (namesPools(this.config)) parts.push(`route=${this.route?.name ?? "none"}`);
    const { redirect, respond } = this.route?.config ?? {};
    if (redirect !== undefined) {
      parts.push(`redirect=${response.status} ${response.headers.get("location")}`);
    } else if (respond !== undefined) parts.push(`respond=${response.status}`);
    if (this.#decision !== undefined) {
      if (parts.length > 0) parts.push(`pool=${this.#pool}`);
      parts.push(decisionHeader(this.#decision, ctx.backend, ctx.failures));
    }
    response.headers.set("x-lb-decision", parts.join("; "));
  }
}

/**
 * The decision behind `selection`, made for `request` just now.
 *
 * @example
 * ```ts
 * const selection = balancer.selectBackend(request);
 * explainSelection(balancer, request, selection).candidates; // [{ id, url, eligible, reason }, ...]
 * ```
 */
export function explainSelection(
  balancer: LoadBalancer,
  request: Request,
  selection: Selection | undefined,
  client?: ClientInfo,
): Decision {
  const decision: Decision = {
    backend: selection?.backend.id ?? null,
    strategy: balancer.strategyName,
    candidates: balancer.backends.map((backend) => {
      const state = backendState(backend);
      return { id: backend.id, url: backend.url.origin, eligible: state === "up", reason: state };
    }),
    sticky: balancer.strategyName === "sticky" ? stickyOutcome(balancer, request) : null,
  };
  const detail = balancer.strategyDetail(request, client);
  if (detail !== undefined) decision.detail = detail;
  return decision;
}

function stickyOutcome(balancer: LoadBalancer, request: Request): StickyOutcome {
  const cookie = balancer.stickyCookie;
  const id = readCookie(request.headers.get("cookie"), cookie);
  if (id === undefined) return { hit: false, reason: `no ${cookie} cookie` };
  const pinned = balancer.backendById(id);
  if (pinned === undefined) return { hit: false, reason: `${cookie} names no backend` };
  const state = backendState(pinned);
  if (state !== "up") return { hit: false, reason: `${cookie} names ${pinned.id}, ${state}` };
  return { hit: true, reason: `${cookie} names ${pinned.id}` };
}

/**
 * The `X-LB-Decision` header value: strategy, the backend that served, the
 * sticky outcome, every candidate with its state, and the attempts that
 * failed over to another backend.
 *
 * @example
 * ```ts
 * decisionHeader(decision, ctx.backend, ctx.failures);
 * // "strategy=round_robin; backend=5e6f7a8b; candidates=1a2b3c4d up, 5e6f7a8b up; retries=1a2b3c4d connect_refused"
 * ```
 */
export function decisionHeader(
  decision: Decision,
  served: Backend | undefined,
  failures: readonly FailedAttempt[],
): string {
  const parts = [`strategy=${decision.strategy}`, `backend=${served?.id ?? "none"}`];
  if (decision.detail !== undefined) parts.push(`detail=${decision.detail}`);
  if (decision.sticky !== null) {
    parts.push(`sticky=${decision.sticky.hit ? "hit" : "miss"} (${decision.sticky.reason})`);
  }
  const candidates = decision.candidates.map((candidate) => `${candidate.id} ${candidate.reason}`);
  parts.push(`candidates=${candidates.join(", ")}`);
  const retries = failures.filter((failure) => failure.retried);
  if (retries.length > 0) {
    const reasons = retries.map((retry) => `${retry.backend.id} ${retry.error.kind}`);
    parts.push(`retries=${reasons.join(", ")}`);
  }
  return parts.join("; ");
}
