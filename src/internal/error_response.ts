/**
 * The balancer's own answers: short plain-text error responses that say which
 * case it was, and never more than that.
 *
 * @module
 */

import type { UpstreamError } from "../types.ts";

const encoder = new TextEncoder();

/**
 * A plain-text error response whose body is one line: status, reason text
 * and what happened.
 *
 * @example
 * ```ts
 * errorResponse(503, "no healthy backend", { "retry-after": "5" });
 * ```
 */
export function errorResponse(status: number, reason: string, headers?: HeadersInit): Response {
  const body = encoder.encode(`${status} ${STATUS_TEXT[status] ?? "Error"}: ${reason}\n`);
  const response = new Response(body, { status, headers });
  response.headers.set("content-type", "text/plain; charset=utf-8");
  // Stated here so that the access log can count the body.
  response.headers.set("content-length", String(body.byteLength));
  return response;
}

/**
 * 502 for a refused, reset or invalid exchange, 504 for a timeout.
 *
 * @example
 * ```ts
 * upstreamErrorResponse(new UpstreamError("connect_refused", "connection refused", false));
 * ```
 */
export function upstreamErrorResponse(error: UpstreamError): Response {
  switch (error.kind) {
    case "connect_refused":
      return errorResponse(502, "the backend refused the connection");
    case "reset":
      return errorResponse(502, "the backend closed the connection without a response");
    case "invalid_response":
      return errorResponse(502, "the backend sent an invalid response");
    case "connect_timeout":
      return errorResponse(504, "no connection to the backend in time");
    case "response_timeout":
      return errorResponse(504, "the backend sent no response headers in time");
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};
