/**
 * When a failed attempt may go to another backend: the rules of Go's
 * http.Transport and Envoy, kept in one place.
 *
 * @module
 */

import type { UpstreamError } from "../types.ts";

/** Methods whose repetition has the effect of one request (RFC 9110 9.2.2, less TRACE). */
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * Whether sending a request twice is safe: an idempotent method, or any
 * request carrying an `Idempotency-Key` header.
 *
 * @example
 * ```ts
 * isIdempotent("PUT", false); // true
 * isIdempotent("POST", false); // false
 * isIdempotent("POST", request.headers.has("idempotency-key")); // true with the header
 * ```
 */
export function isIdempotent(method: string, hasIdempotencyKey: boolean): boolean {
  return IDEMPOTENT_METHODS.has(method) || hasIdempotencyKey;
}

/**
 * Whether an attempt that failed with `error` (always before a response head:
 * refused, reset, invalid response or timed out) may be sent again: when no
 * byte of it reached the backend, whatever the method; after that, only an
 * idempotent request, and only when its body can be replayed.
 *
 * @example
 * ```ts
 * mayRetry(request, new UpstreamError("reset", "closed", true), body.replayable);
 * ```
 */
export function mayRetry(request: Request, error: UpstreamError, replayable: boolean): boolean {
  if (!replayable) return false;
  return !error.requestSent ||
    isIdempotent(request.method, request.headers.has("idempotency-key"));
}
