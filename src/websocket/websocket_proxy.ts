/**
 * A WebSocket request, once routed and balanced: a slot on the backend, the
 * tunnel, and the request's record kept open until the tunnel closes, so its
 * access-log line and metrics tell the whole connection.
 *
 * @module
 */

import { errorResponse } from "../internal/error_response.ts";
import type { Telemetry } from "../observability/telemetry.ts";
import type { RequestContext } from "../request_context.ts";
import type { BackendLimiter } from "../resilience/backend_limiter.ts";
import type { Backend, UpstreamRequest } from "../types.ts";
import { openTunnel, type Tunnel } from "./tunnel.ts";

/** An open tunnel and the backend it goes to, which a drain or a reload may close. */
export interface OpenTunnel {
  readonly backend: Backend;
  readonly tunnel: Tunnel;
}

/** What proxying a WebSocket needs of the request flow. */
export interface WebSocketProxying {
  limiter: BackendLimiter;
  telemetry: Telemetry;
  /** Every tunnel open in this isolate. */
  tunnels: Set<OpenTunnel>;
  config: { timeouts: { connect: number; response: number; tunnel: number } };
}

/**
 * Opens a tunnel to `backend` for the WebSocket request of `ctx` and returns
 * the client's 101 (or 503 when the backend is at its limit, 400 for a
 * handshake that cannot be answered); undefined when the backend did not
 * switch protocols, for the flow to send the request as a plain one and pass
 * the backend's answer on.
 *
 * @example
 * ```ts
 * const switched = await proxyWebSocket(ctx, proxy, backend, upstream);
 * if (switched !== undefined) return switched;
 * ```
 */
export async function proxyWebSocket(
  ctx: RequestContext,
  proxying: WebSocketProxying,
  backend: Backend,
  upstream: UpstreamRequest,
): Promise<Response | undefined> {
  const admitted = proxying.limiter.admit(backend, ctx);
  const slot = admitted instanceof Promise ? await admitted : admitted;
  if (typeof slot === "string") return errorResponse(503, slot);
  const { timeouts } = proxying.config;
  const scheme = backend.url.protocol === "https:" ? "wss" : "ws";
  let opened;
  try {
    opened = await openTunnel(ctx.request, {
      url: `${scheme}://${backend.url.host}${upstream.target}`,
      headers: upstream.headers,
      connectTimeoutMs: timeouts.connect + timeouts.response,
      idleTimeoutMs: timeouts.tunnel,
    });
  } finally {
    // Held from here on by the request, if a tunnel opened.
    if (typeof opened !== "object" || !("response" in opened)) slot[Symbol.dispose]();
  }
  if ("invalid" in opened) {
    return errorResponse(400, `not a WebSocket handshake: ${opened.invalid}`);
  }
  if (!("response" in opened)) return undefined;
  ctx.own(slot);
  proxying.telemetry.attemptStarted(ctx.backend, backend);
  ctx.sendTo(backend);
  ctx.headReceived();
  ctx.tunnel = opened.record;
  // The record ends with the tunnel, not with the handler's 101.
  const resources = ctx.handOff();
  const open: OpenTunnel = { backend, tunnel: opened };
  proxying.tunnels.add(open);
  proxying.telemetry.tunnelOpened(backend);
  void opened.closed.then(() => {
    proxying.tunnels.delete(open);
    proxying.telemetry.tunnelClosed(backend, opened.record);
    resources.dispose();
  });
  return opened.response;
}

/**
 * Closes with 1001 the tunnels still open once `deadlineMs` passed or
 * `backends` (when given) are the only ones they go to; resolves when all closed.
 *
 * @example
 * ```ts
 * await closeTunnels(proxy.tunnels, config.timeouts.drain);
 * ```
 */
export async function closeTunnels(
  tunnels: ReadonlySet<OpenTunnel>,
  deadlineMs: number,
  backends?: readonly Backend[],
): Promise<void> {
  const chosen = [...tunnels].filter(({ backend }) => backends?.includes(backend) ?? true);
  if (chosen.length === 0) return;
  const all = Promise.all(chosen.map(({ tunnel }) => tunnel.closed));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs));
  await Promise.race([all, late]);
  clearTimeout(timer);
  for (const { tunnel } of chosen) tunnel.close(1001, "the balancer is going away");
  await all;
}
