/**
 * Header rules of a forwarding proxy, in one place: hop-by-hop headers are
 * removed in both directions, the balancer's own request headers never reach
 * a backend, and the forwarding headers are added on the way to the backend.
 *
 * @module
 */

import type { HeaderFilter } from "../routing/header_filter.ts";
import type { HeaderPairs } from "../types.ts";

/** Name the balancer gives itself in `Via`. */
export const VIA_NAME = "deno-lb";

/** Headers that describe one connection, not the message (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
]);

/**
 * Client headers the balancer sets itself: the forwarding headers are
 * replaced or appended to, `Expect` was answered by the balancer (the backend
 * gets the body anyway) and `X-LB-Explain` is addressed to the balancer.
 */
const REPLACED_UPSTREAM = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "via",
  "x-request-id",
  "x-lb-explain",
  "expect",
]);

/** A header name, as RFC 9110 defines a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What the forwarding headers say about the client. */
export interface ClientInfo {
  /** The client's IP address. */
  address: string;
  /** The scheme the client used to reach the balancer. */
  proto: "http" | "https";
  /** The request's id, sent as `X-Request-Id`. */
  requestId: string;
  /**
   * The authority the client asked for: the Host of an HTTP/2 request,
   * which carries `:authority` instead of a Host header.
   */
  authority: string;
}

/**
 * The headers to send upstream: the client's end-to-end headers (Host
 * included, unchanged unless `host` replaces it) plus X-Forwarded-For,
 * X-Forwarded-Proto, X-Forwarded-Host (the client's Host), Via and
 * X-Request-Id. `X-LB-Explain`, addressed to the balancer, is removed. A
 * route's `filter` changes the client's headers first, so these rules win
 * over it.
 *
 * @example
 * ```ts
 * const client = {
 *   address: "127.0.0.1", proto: "http", requestId: "9f86d081-1", authority: "app.test",
 * } as const;
 * const headers = new Headers(upstreamHeaders(request.headers, client));
 * headers.get("x-forwarded-for"); // "127.0.0.1", or appended to the client's own
 * ```
 */
export function upstreamHeaders(
  incoming: Headers,
  client: ClientInfo,
  filter?: HeaderFilter,
  host?: string,
): HeaderPairs {
  const headers: HeaderPairs = [];
  let forwardedFor = "";
  let via = "";
  let clientHost = "";
  // One pass over the client's headers: iterating a Headers object costs more
  // than everything else done here.
  for (const field of filter?.apply(incoming) ?? incoming) {
    const name = field[0];
    if (REPLACED_UPSTREAM.has(name)) {
      if (name === "x-forwarded-for") forwardedFor = field[1];
      else if (name === "via") via = field[1];
      continue;
    }
    if (name === "host") {
      clientHost = field[1];
      if (host !== undefined) continue;
    }
    headers.push(field);
  }
  // HTTP/2 carries the authority as `:authority`, never as Host: that is how
  // a request says it came over HTTP/2, which Via must name.
  const version = clientHost === "" ? "2" : "1.1";
  if (clientHost === "") {
    clientHost = client.authority;
    if (host === undefined) headers.push(["host", clientHost]);
  }
  if (host !== undefined) headers.push(["host", host]);
  const forwarded = withoutHopByHop(headers);
  forwarded.push(
    [
      "x-forwarded-for",
      forwardedFor === "" ? client.address : `${forwardedFor}, ${client.address}`,
    ],
    ["x-forwarded-proto", client.proto],
  );
  if (clientHost !== "") forwarded.push(["x-forwarded-host", clientHost]);
  forwarded.push(["via", withVia(via, version)], ["x-request-id", client.requestId]);
  return forwarded;
}

/**
 * The backend's headers as the client gets them: end-to-end headers (several
 * Set-Cookie stay several) plus Via.
 *
 * @example
 * ```ts
 * const headers = clientHeaders([["content-type", "text/plain"], ["connection", "close"]]);
 * // [["content-type", "text/plain"], ["via", "1.1 deno-lb"]]
 * ```
 */
export function clientHeaders(upstream: HeaderPairs): HeaderPairs {
  const headers = withoutHopByHop(upstream);
  const via = headers.findLastIndex(([name]) => name === "via");
  if (via === -1) headers.push(["via", withVia("")]);
  else headers[via] = ["via", withVia(headers[via][1])];
  return headers;
}

/** `headers` less hop-by-hop fields and those the Connection header names; lowercase names. */
function withoutHopByHop(headers: HeaderPairs): HeaderPairs {
  let named: string[] | undefined;
  for (const [name, value] of headers) {
    if (name !== "connection") continue;
    for (const option of value.split(",")) {
      const trimmed = option.trim().toLowerCase();
      if (TOKEN.test(trimmed)) (named ??= []).push(trimmed);
    }
  }
  return headers.filter(([name]) => !HOP_BY_HOP.has(name) && !named?.includes(name));
}

function withVia(via: string, version = "1.1"): string {
  return via === "" ? `${version} ${VIA_NAME}` : `${via}, ${version} ${VIA_NAME}`;
}
