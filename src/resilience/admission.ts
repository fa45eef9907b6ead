/**
 * What the balancer refuses before it forwards anything: methods it does not
 * proxy (CONNECT asks for a tunnel) and bodies declared larger than
 * `limits.max_body`.
 *
 * @module
 */

import { errorResponse } from "../internal/error_response.ts";

/**
 * The refusal of `request`, or undefined when it may be forwarded.
 *
 * @example
 * ```ts
 * const refused = refuseEarly(request, config.limits.max_body);
 * if (refused !== undefined) return refused;
 * ```
 */
export function refuseEarly(request: Request, maxBody: number): Response | undefined {
  if (request.method === "CONNECT") {
    return errorResponse(501, "the balancer does not tunnel CONNECT");
  }
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBody) return bodyTooLarge(maxBody);
  return undefined;
}

/**
 * 413 for a body over `limit` bytes. Deno.serve adds `Connection: close`
 * itself, since the rest of the body is not read.
 *
 * @example
 * ```ts
 * bodyTooLarge(1024); // 413 "the request body is larger than 1024 bytes"
 * ```
 */
export function bodyTooLarge(limit: number): Response {
  return errorResponse(413, `the request body is larger than ${limit} bytes`);
}
