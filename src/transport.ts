/**
 * What the request flow needs of a transport: send a request on a request
 * context, tell of its connections, close them.
 *
 * @module
 */

import type { RequestContext } from "./request_context.ts";
import type { Backend, ConnectionStats, UpstreamRequest, UpstreamResponse } from "./types.ts";

/** Sends requests to backends over one kind of connection. */
export interface Transport {
  /**
   * Sends `request` to `backend` and resolves once the response head arrived.
   * Resources it takes are registered on the request context.
   * Rejects with {@linkcode UpstreamError} when the exchange fails.
   */
  send(
    ctx: RequestContext,
    backend: Backend,
    request: UpstreamRequest,
  ): Promise<UpstreamResponse>;
  /** What the transport can tell of its connections to `backend`. */
  connectionStats(backend: Backend): ConnectionStats;
  /** Closes the idle connections to `backend`, which a reload removed and which drained. */
  forget(backend: Backend): void;
  /** Closes every pooled connection. */
  close(): void;
}
