/**
 * Header rules of a forwarding proxy, in one place: hop-by-hop headers are
 * removed in both directions, the balancer's own request headers never reach
 * a backend, and the forwarding headers are added on the way to the backend.
 *
 * @module
 */

/** Name the balancer gives itself in `Via`. */
export const VIA_NAME = "deno-lb";

/** Headers that describe one connection, not the message (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
];

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
}

/**
 * The headers to send upstream: the client's end-to-end headers (Host
 * included, unchanged) plus X-Forwarded-For, X-Forwarded-Proto,
 * X-Forwarded-Host, Via and X-Request-Id. `X-LB-Explain`, addressed to the
 * balancer, is removed.
 *
 * @example
 * ```ts
 * const client = { address: "127.0.0.1", proto: "http", requestId: "9f86d081-1" } as const;
 * const headers = upstreamHeaders(request.headers, client);
 * headers.get("x-forwarded-for"); // "127.0.0.1", or appended to the client's own
 * ```
 */
export function upstreamHeaders(incoming: Headers, client: ClientInfo): Headers {
  const headers = withoutHopByHop(incoming);
  // The balancer already answered any 100-continue; the backend gets the body anyway.
  headers.delete("expect");
  headers.delete("x-lb-explain");
  headers.set("x-request-id", client.requestId);
  const forwardedFor = headers.get("x-forwarded-for");
  headers.set(
    "x-forwarded-for",
    forwardedFor ? `${forwardedFor}, ${client.address}` : client.address,
  );
  headers.set("x-forwarded-proto", client.proto);
  const host = headers.get("host");
  if (host !== null) headers.set("x-forwarded-host", host);
  appendVia(headers);
  return headers;
}

/**
 * The backend's headers as the client gets them: end-to-end headers (several
 * Set-Cookie stay several) plus Via.
 *
 * @example
 * ```ts
 * const headers = clientHeaders(upstreamResponse.headers);
 * ```
 */
export function clientHeaders(upstream: Headers): Headers {
  const headers = withoutHopByHop(upstream);
  appendVia(headers);
  return headers;
}

function withoutHopByHop(source: Headers): Headers {
  const headers = new Headers(source);
  const connection = headers.get("connection");
  if (connection !== null) {
    for (const name of connection.split(",")) {
      const trimmed = name.trim();
      if (TOKEN.test(trimmed)) headers.delete(trimmed);
    }
  }
  for (const name of HOP_BY_HOP) headers.delete(name);
  return headers;
}

function appendVia(headers: Headers): void {
  const via = headers.get("via");
  headers.set("via", via ? `${via}, 1.1 ${VIA_NAME}` : `1.1 ${VIA_NAME}`);
}
