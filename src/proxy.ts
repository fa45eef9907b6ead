/**
 * The request flow: open the request context, route, then for a pool: select
 * a backend and forward.
 *
 * @module
 */

import type { Config } from "./config/types.ts";
import type { HealthChecker } from "./health_check.ts";
import { errorResponse, upstreamErrorResponse } from "./internal/error_response.ts";
import { clientHeaders, upstreamHeaders } from "./internal/header_rules.ts";
import { Explanation } from "./observability/explain.ts";
import type { Telemetry } from "./observability/telemetry.ts";
import type { Pool } from "./pools/pool.ts";
import type { PoolSet } from "./pools/pool_set.ts";
import { RequestContext } from "./request_context.ts";
import { bodyTooLarge, refuseEarly } from "./resilience/admission.ts";
import type { BackendLimiter } from "./resilience/backend_limiter.ts";
import { ReplayableBody } from "./resilience/replayable_body.ts";
import type { RetryBudget } from "./resilience/retry_budget.ts";
import { mayRetry } from "./resilience/retry_policy.ts";
import { fixedResponse, redirectResponse } from "./routing/fixed_answers.ts";
import { parseTarget, type RequestTarget } from "./routing/request_target.ts";
import type { Route } from "./routing/route.ts";
import type { Router } from "./routing/router.ts";
import { type OpenTunnel, proxyWebSocket } from "./websocket/websocket_proxy.ts";
import { upgradeOf } from "./websocket/tunnel.ts";
import {
  type Backend,
  type Selection,
  UpstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./types.ts";

/** What the request flow works with; a reload replaces `config`, `router` and the pools' contents. */
export interface Proxy {
  /** The config in force: retries and limits are read from it for each request. */
  config: Config;
  router: Router;
  pools: PoolSet;
  /** Records every request: metrics, the access log. */
  telemetry: Telemetry;
  /** `limits.max_in_flight` and the queue in front of each backend. */
  limiter: BackendLimiter;
  /** Caps retries to a share of the requests of the last 10 seconds. */
  retryBudget: RetryBudget;
  /** The first listener's port: what `POST /explain` takes a request to have come in on. */
  listenPort: number;
  /** The WebSocket tunnels open now, which a drain closes. */
  tunnels: Set<OpenTunnel>;
  /** The ACME listeners, which look for their certificate again when a reload changes its domains. */
  acmeListeners: { refresh(): void }[];
}

/**
 * Routes one request and answers it: by redirect or fixed response, or by
 * proxying it to a healthy backend of the route's pool and streaming its
 * response back.
 *
 * @example
 * ```ts
 * Deno.serve((request, info) => handleRequest(request, info, proxy, 8080));
 * ```
 */
export async function handleRequest(
  request: Request,
  info: Deno.ServeHandlerInfo,
  proxy: Proxy,
  listenPort: number = proxy.listenPort,
): Promise<Response> {
  using ctx = RequestContext.open(request, info, { onEnd: proxy.telemetry.requestEnded });
  const target = parseTarget(request.url);
  const route = proxy.router.route(target, request);
  ctx.route = route?.name;
  const explanation = ctx.explainAsked && proxy.telemetry.mayExplain(ctx.clientAddress)
    ? new Explanation(proxy.config, target, route)
    : undefined;
  const response = route === undefined
    ? errorResponse(404, `no route for ${request.method} ${target.host}${target.path}`)
    : await serveRoute(ctx, proxy, route, target, explanation, listenPort);
  explanation?.annotate(response, ctx);
  return ctx.respond(response);
}

async function serveRoute(
  ctx: RequestContext,
  proxy: Proxy,
  route: Route,
  target: RequestTarget,
  explanation: Explanation | undefined,
  listenPort: number,
): Promise<Response> {
  const { redirect, respond } = route.config;
  if (redirect !== undefined) {
    return redirectResponse(redirect, target, listenPort, route.responseHeaders);
  }
  if (respond !== undefined) return fixedResponse(respond, route.responseHeaders);
  const upgrade = upgradeOf(ctx.request);
  if (upgrade !== undefined && upgrade !== "websocket") {
    return errorResponse(501, `the balancer does not switch to ${upgrade || "another protocol"}`);
  }
  const pool = poolOf(route, proxy.pools);
  ctx.pool = pool.name;
  const selection = pool.balancer.selectBackend(ctx.request, undefined, ctx);
  explanation?.selected(pool, ctx, selection);
  if (selection === undefined) return noHealthyBackend(pool.health);
  const destination = { route, pool, target };
  if (upgrade === "websocket") {
    const upstream = toUpstreamRequest(ctx, destination);
    const switched = await proxyWebSocket(ctx, proxy, selection.backend, upstream);
    // Else the backend answered without switching: sent as a plain request, its answer goes back.
    if (switched !== undefined) return switched;
  }
  return await forward(ctx, proxy, destination, selection);
}

/** The pool of a `pool` route, or the one a `split` route picks for this request. */
function poolOf(route: Route, pools: PoolSet): Pool {
  const name = route.split?.pick((pool) => pools.get(pool)!.balancer.hasCandidates()) ??
    route.config.pool!;
  return pools.get(name)!;
}

/** Where a request goes: its route, the route's pool, and what it asked for. */
interface Destination {
  route: Route;
  pool: Pool;
  target: RequestTarget;
}

/**
 * Sends the request to the selected backend, once a slot on it is free
 * (`limits.max_in_flight`). A failed attempt goes on to a backend not tried
 * yet while the retry rules, `retries.attempts` and the retry budget allow.
 * A body larger than `limits.max_body` gets 413: at once when its length is
 * declared, else when it crosses the limit, which aborts the upstream request.
 * CONNECT is refused (501).
 */
async function forward(
  ctx: RequestContext,
  proxy: Proxy,
  destination: Destination,
  selection: Selection,
): Promise<Response> {
  const { request } = ctx;
  const { pool, route } = destination;
  const { limits, retries } = proxy.config;
  const refused = refuseEarly(request, limits.max_body);
  if (refused !== undefined) return refused;
  proxy.retryBudget.recordRequest();
  const body = new ReplayableBody(request.body, {
    maxBody: limits.max_body,
    keep: retries.max_body,
  });
  const upstream = toUpstreamRequest(ctx, destination);
  const tried = new Set<Backend>();
  for (;;) {
    const { backend } = selection;
    const admitted = proxy.limiter.admit(backend, ctx);
    const slot = admitted instanceof Promise ? await admitted : admitted;
    if (ctx.aborted) return errorResponse(499, "the client went away");
    if (typeof slot === "string") return errorResponse(503, slot);
    ctx.own(slot);
    proxy.telemetry.attemptStarted(ctx.backend, backend);
    ctx.sendTo(backend);
    tried.add(backend);
    upstream.body = body.stream();
    try {
      const response = await pool.transports[backend.transport].send(ctx, backend, upstream);
      ctx.headReceived();
      const failed = response.status >= 500;
      pool.balancer.observe(backend, ctx.upstreamMs!, failed);
      pool.health.reportSuccess(backend);
      pool.health.reportOutcome(backend, failed, `status ${response.status}`);
      return toClientResponse(ctx, response, selection.setCookie, route);
    } catch (error) {
      slot[Symbol.dispose]();
      if (ctx.aborted) return errorResponse(499, "the client went away");
      if (body.tooLarge) return bodyTooLarge(limits.max_body);
      if (!(error instanceof UpstreamError)) throw error;
      pool.balancer.observe(backend, ctx.attemptMs(), true);
      reportFailure(pool.health, backend, upstream, error);
      const retry = nextAttempt(ctx, proxy, pool, error, body.replayable, tried);
      proxy.telemetry.attemptFailed(ctx.attemptFailed(error, retry !== undefined));
      if (retry === undefined) return upstreamErrorResponse(error);
      selection = retry;
    }
  }
}

/** Where a failed request goes next, or undefined when it may not be retried. */
function nextAttempt(
  ctx: RequestContext,
  proxy: Proxy,
  pool: Pool,
  error: UpstreamError,
  replayable: boolean,
  tried: ReadonlySet<Backend>,
): Selection | undefined {
  if (tried.size >= proxy.config.retries.attempts) return undefined;
  if (!mayRetry(ctx.request, error, replayable)) return undefined;
  // The budget first: a refused retry must not move the rotation on.
  if (!proxy.retryBudget.tryRetry()) return undefined;
  return pool.balancer.selectBackend(ctx.request, tried, ctx);
}

/**
 * The request as the backend gets it: the normalised path (rewritten when the
 * route says so) and the query as sent, the client's headers with the
 * route's changes and then the proxy's header rules, and the route's timeouts.
 */
function toUpstreamRequest(ctx: RequestContext, { route, target }: Destination): UpstreamRequest {
  const upstream: UpstreamRequest = {
    method: ctx.request.method,
    target: route.upstreamPath(target.path) + target.query,
    headers: upstreamHeaders(
      ctx.request.headers,
      {
        address: ctx.clientAddress,
        proto: target.scheme,
        requestId: ctx.requestId,
        authority: target.authority,
      },
      route.requestHeaders,
      route.config.rewrite?.host,
    ),
    body: ctx.request.body,
  };
  const timeouts = route.config.timeouts;
  if (timeouts !== undefined) upstream.timeouts = timeouts;
  return upstream;
}

function toClientResponse(
  ctx: RequestContext,
  response: UpstreamResponse,
  setCookie: string | undefined,
  route: Route,
): Response {
  const headers = clientHeaders(route.responseHeaders?.apply(response.headers) ?? response.headers);
  if (setCookie !== undefined) headers.push(["set-cookie", setCookie]);
  return new Response(ctx.countBody(response.body), {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

function reportFailure(
  health: HealthChecker,
  backend: Backend,
  request: UpstreamRequest,
  error: UpstreamError,
): void {
  console.error(
    `upstream ${backend.url.origin} ${request.method} ${request.target}: ${error.message}`,
  );
  health.reportOutcome(backend, true, error.message);
  if (error.kind === "connect_refused") health.reportRefused(backend, "connection refused");
  else if (error.kind === "connect_timeout") health.reportFailure(backend, "connect timed out");
  else if (error.kind === "response_timeout") health.reportFailure(backend, "response timed out");
}

function noHealthyBackend(health: HealthChecker): Response {
  const retryAfter = Math.max(1, Math.ceil(health.options.interval / 1000));
  return errorResponse(503, "no healthy backend", { "retry-after": String(retryAfter) });
}
