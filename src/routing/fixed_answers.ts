/**
 * The answers a route gives without a backend: a redirect to the request's
 * URL with some parts replaced, or a fixed response.
 *
 * @module
 */

import type { RedirectConfig, RespondConfig } from "../config/types.ts";
import type { HeaderPairs } from "../types.ts";
import type { HeaderFilter } from "./header_filter.ts";
import type { RequestTarget } from "./request_target.ts";

const WELL_KNOWN_PORTS = { http: 80, https: 443 } as const;

/**
 * Where `redirect` sends a request for `target` that came in on `listenPort`.
 * Ports follow the Gateway API: without `port`, a `scheme` given means that
 * scheme's well-known port and no `scheme` the port the request came in on;
 * a scheme's well-known port is left out. The query is kept.
 *
 * @example
 * ```ts
 * redirectLocation({ scheme: "https", status: 301 }, parseTarget("http://example.com:8080/x?a=1"), 8080);
 * // "https://example.com/x?a=1"
 * redirectLocation({ host: "example.org", status: 302 }, parseTarget("http://example.com:8080/x"), 8080);
 * // "http://example.org:8080/x"
 * ```
 */
export function redirectLocation(
  redirect: RedirectConfig,
  target: RequestTarget,
  listenPort: number,
): string {
  const scheme = redirect.scheme ?? target.scheme;
  const port = redirect.port ??
    (redirect.scheme === undefined ? listenPort : WELL_KNOWN_PORTS[redirect.scheme]);
  const authority = port === WELL_KNOWN_PORTS[scheme]
    ? redirect.host ?? target.host
    : `${redirect.host ?? target.host}:${port}`;
  return `${scheme}://${authority}${redirect.path ?? target.path}${target.query}`;
}

/**
 * The redirect itself: its status, `Location` and an empty body, with the
 * route's response header changes.
 *
 * @example
 * ```ts
 * redirectResponse({ scheme: "https", status: 308 }, target, 80, undefined).status; // 308
 * ```
 */
export function redirectResponse(
  redirect: RedirectConfig,
  target: RequestTarget,
  listenPort: number,
  filter: HeaderFilter | undefined,
): Response {
  const headers: HeaderPairs = [["location", redirectLocation(redirect, target, listenPort)]];
  return new Response(null, {
    status: redirect.status,
    headers: filter?.apply(headers) ?? headers,
  });
}

/**
 * A route's fixed answer, with its headers and the route's response header changes.
 *
 * @example
 * ```ts
 * fixedResponse({ status: 200, body: "ok\n", headers: { "content-type": "text/plain" } }, undefined);
 * ```
 */
export function fixedResponse(respond: RespondConfig, filter: HeaderFilter | undefined): Response {
  const body = new TextEncoder().encode(respond.body);
  // Declared, so that the access log counts the body's bytes.
  const headers: HeaderPairs = [...Object.entries(respond.headers)];
  if (body.byteLength > 0) headers.push(["content-length", String(body.byteLength)]);
  return new Response(body.byteLength === 0 ? null : body, {
    status: respond.status,
    headers: filter?.apply(headers) ?? headers,
  });
}
