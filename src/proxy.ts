/**
 * The request flow: open the request context, select a backend, forward.
 *
 * @module
 */

import type { HealthChecker } from "./health_check.ts";
import { errorResponse, upstreamErrorResponse } from "./internal/error_response.ts";
import { clientHeaders, upstreamHeaders } from "./internal/header_rules.ts";
import type { LoadBalancer } from "./load_balancer.ts";
import { RequestContext } from "./request_context.ts";
import type { Telemetry } from "./telemetry.ts";
import {
  type Backend,
  type Selection,
  type Transport,
  type TransportName,
  UpstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./types.ts";

/** What the request flow works with. */
export interface Proxy {
  balancer: LoadBalancer;
  transports: Readonly<Record<TransportName, Transport>>;
  health: HealthChecker;
  /** Records every request: metrics, the access log, explanations. */
  telemetry: Telemetry;
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
 * Sends the request to the selected backend. A request that failed before
 * any byte of it was sent goes once more to another healthy backend.
 */
async function forward(ctx: RequestContext, proxy: Proxy, selection: Selection): Promise<Response> {
  const upstream = toUpstreamRequest(ctx);
  for (let attempt = 1;; attempt++) {
    const { backend } = selection;
    ctx.sendTo(selection);
    try {
      const response = await proxy.transports[backend.transport].send(ctx, backend, upstream);
      ctx.headReceived();
      proxy.health.reportSuccess(backend);
      return toClientResponse(ctx, response, selection.setCookie);
    } catch (error) {
      if (ctx.signal.aborted) return errorResponse(499, "the client went away");
      if (!(error instanceof UpstreamError)) throw error;
      reportFailure(proxy.health, backend, upstream, error);
      const retry = attempt === 1 && !error.requestSent
        ? proxy.balancer.selectBackend(ctx.request, backend)
        : undefined;
      ctx.attemptFailed(error, retry !== undefined);
      if (retry === undefined) return upstreamErrorResponse(error);
      selection = retry;
    }
  }
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
  if (error.kind === "connect_refused") health.reportRefused(backend, "connection refused");
  else if (error.kind === "connect_timeout") health.reportFailure(backend, "connect timed out");
  else if (error.kind === "response_timeout") health.reportFailure(backend, "response timed out");
}

function noHealthyBackend(proxy: Proxy): Response {
  const retryAfter = Math.max(1, Math.ceil(proxy.health.options.interval / 1000));
  return errorResponse(503, "no healthy backend", { "retry-after": String(retryAfter) });
}
