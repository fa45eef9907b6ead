/**
 * The request flow: open the request context, select a backend, forward.
 *
 * @module
 */

import { bodyTooLarge, refuseEarly } from "./resilience/admission.ts";
import type { BackendLimiter } from "./resilience/backend_limiter.ts";
import type { Config } from "./config/config.ts";
import type { HealthChecker } from "./health_check.ts";
import { errorResponse, upstreamErrorResponse } from "./internal/error_response.ts";
import { clientHeaders, upstreamHeaders } from "./internal/header_rules.ts";
import type { LoadBalancer } from "./load_balancer.ts";
import { ReplayableBody } from "./resilience/replayable_body.ts";
import { RequestContext } from "./request_context.ts";
import type { RetryBudget } from "./resilience/retry_budget.ts";
import { mayRetry } from "./resilience/retry_policy.ts";
import type { Telemetry } from "./observability/telemetry.ts";
import {
  type Backend,
  type Selection,
  type Transport,
  type TransportName,
  UpstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./types.ts";

/** What the request flow works with; a reload replaces `config` and `transports`. */
export interface Proxy {
  /** The config in force: retries and limits are read from it for each request. */
  config: Config;
  balancer: LoadBalancer;
  transports: Readonly<Record<TransportName, Transport>>;
  health: HealthChecker;
  /** Records every request: metrics, the access log, explanations. */
  telemetry: Telemetry;
  /** `limits.max_in_flight` and the queue in front of each backend. */
  limiter: BackendLimiter;
  /** Caps retries to a share of the requests of the last 10 seconds. */
  retryBudget: RetryBudget;
}

/**
 * Proxies one request to a healthy backend and streams its response back.
 *
 * @example
 * ```ts
 * Deno.serve((request, info) => handleRequest(request, info, proxy));
 * ```
 */
export async function handleRequest(
  request: Request,
  info: Deno.ServeHandlerInfo,
  proxy: Proxy,
): Promise<Response> {
  using ctx = RequestContext.open(request, info, { observer: proxy.telemetry });
  const selection = proxy.balancer.selectBackend(request);
  if (selection === undefined) return ctx.respond(noHealthyBackend(proxy));
  return ctx.respond(await forward(ctx, proxy, selection));
}

/**
 * Sends the request to the selected backend, once a slot on it is free
 * (`limits.max_in_flight`). A failed attempt goes on to a backend not tried
 * yet while the retry rules, `retries.attempts` and the retry budget allow.
 * A body larger than `limits.max_body` gets 413: at once when its length is
 * declared, else when it crosses the limit, which aborts the upstream request.
 * CONNECT is refused (501).
 */
async function forward(ctx: RequestContext, proxy: Proxy, selection: Selection): Promise<Response> {
  const { request } = ctx;
  const { limits, retries } = proxy.config;
  const refused = refuseEarly(request, limits.max_body);
  if (refused !== undefined) return refused;
  proxy.retryBudget.recordRequest();
  const body = new ReplayableBody(request.body, {
    maxBody: limits.max_body,
    keep: retries.max_body,
  });
  const upstream = toUpstreamRequest(ctx);
  const tried = new Set<Backend>();
  for (;;) {
    const { backend } = selection;
    const admitted = proxy.limiter.admit(backend, ctx.signal);
    const slot = admitted instanceof Promise ? await admitted : admitted;
    if (ctx.signal.aborted) return errorResponse(499, "the client went away");
    if (typeof slot === "string") return errorResponse(503, slot);
    ctx.own(slot);
    ctx.sendTo(selection);
    tried.add(backend);
    upstream.body = body.stream();
    try {
      const response = await proxy.transports[backend.transport].send(ctx, backend, upstream);
      ctx.headReceived();
      proxy.health.reportSuccess(backend);
      proxy.health.reportOutcome(backend, response.status >= 500, `status ${response.status}`);
      return toClientResponse(ctx, response, selection.setCookie);
    } catch (error) {
      slot[Symbol.dispose]();
      if (ctx.signal.aborted) return errorResponse(499, "the client went away");
      if (body.tooLarge) return bodyTooLarge(limits.max_body);
      if (!(error instanceof UpstreamError)) throw error;
      reportFailure(proxy.health, backend, upstream, error);
      const retry = nextAttempt(ctx, proxy, error, body.replayable, tried);
      ctx.attemptFailed(error, retry !== undefined);
      if (retry === undefined) return upstreamErrorResponse(error);
      selection = retry;
    }
  }
}

/** Where a failed request goes next, or undefined when it may not be retried. */
function nextAttempt(
  ctx: RequestContext,
  proxy: Proxy,
  error: UpstreamError,
  replayable: boolean,
  tried: ReadonlySet<Backend>,
): Selection | undefined {
  if (tried.size >= proxy.config.retries.attempts) return undefined;
  if (!mayRetry(ctx.request, error, replayable)) return undefined;
  // The budget first: a refused retry must not move the rotation on.
  if (!proxy.retryBudget.tryRetry()) return undefined;
  return proxy.balancer.selectBackend(ctx.request, tried);
}

function toUpstreamRequest(ctx: RequestContext): UpstreamRequest {
  const { request } = ctx;
  const proto = request.url.startsWith("https:") ? "https" : "http";
  return {
    method: request.method,
    target: originFormTarget(request.url),
    headers: upstreamHeaders(request.headers, {
      address: ctx.clientAddress,
      proto,
      requestId: ctx.requestId,
    }),
    body: request.body,
  };
}

function toClientResponse(
  ctx: RequestContext,
  response: UpstreamResponse,
  setCookie: string | undefined,
): Response {
  const headers = clientHeaders(response.headers);
  if (setCookie !== undefined) headers.push(["set-cookie", setCookie]);
  return new Response(ctx.countBody(response.body), {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

/**
 * Path and query exactly as the client sent them: the URL after its authority.
 *
 * @example
 * ```ts
 * originFormTarget("http://app.test:8080/a%2Fb?x=1"); // "/a%2Fb?x=1"
 * ```
 */
export function originFormTarget(url: string): string {
  const path = url.indexOf("/", url.indexOf("//") + 2);
  return path === -1 ? "/" : url.slice(path);
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

function noHealthyBackend(proxy: Proxy): Response {
  const retryAfter = Math.max(1, Math.ceil(proxy.health.options.interval / 1000));
  return errorResponse(503, "no healthy backend", { "retry-after": String(retryAfter) });
}
