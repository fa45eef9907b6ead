/**
 * What routing reads of a request's URL: scheme, host without its port, the
 * path after RFC 3986 normalisation, and the query as sent.
 *
 * @module
 */

/**
 * A request's URL taken apart once, for routing and for the target sent upstream.
 *
 * @example
 * ```ts
 * const target = parseTarget("http://Api.Example.com:8080/v1/../v2/%41?x=1");
 * target.host; // "api.example.com"
 * target.path; // "/v2/A"
 * target.query; // "?x=1"
 * ```
 */
export interface RequestTarget {
  scheme: "http" | "https";
  /** Host and port as the URL has them (Host in HTTP/1.1, `:authority` in HTTP/2). */
  authority: string;
  /** Lowercase, without the port; IPv6 addresses keep their brackets. */
  host: string;
  /** The port the URL names, or null when it names none. */
  port: number | null;
  /** The path after {@linkcode normalizePath}. */
  path: string;
  /** `?` and what follows, exactly as sent; empty without a query. */
  query: string;
}

/**
 * Takes apart a request URL as Deno.serve gives it (absolute, its path and
 * query as the client sent them).
 *
 * @example
 * ```ts
 * parseTarget("https://[::1]:8443/a/./b").path; // "/a/b"
 * ```
 */
export function parseTarget(url: string): RequestTarget {
  const scheme = url.startsWith("https:") ? "https" : "http";
  const authorityStart = url.indexOf("//") + 2;
  let pathStart = url.indexOf("/", authorityStart);
  const queryStart = url.indexOf("?", authorityStart);
  if (pathStart === -1 || (queryStart !== -1 && queryStart < pathStart)) pathStart = -1;
  const authorityEnd = pathStart !== -1 ? pathStart : queryStart !== -1 ? queryStart : url.length;
  const authority = url.slice(authorityStart, authorityEnd);
  const portStart = authority.lastIndexOf(":");
  const hasPort = portStart !== -1 && portStart > authority.lastIndexOf("]");
  const host = (hasPort ? authority.slice(0, portStart) : authority).toLowerCase();
  const port = hasPort && portStart < authority.length - 1
    ? Number(authority.slice(portStart + 1))
    : null;
  const pathEnd = queryStart === -1 ? url.length : queryStart;
  const rawPath = pathStart === -1 ? "/" : url.slice(pathStart, pathEnd);
  return {
    scheme,
    authority,
    host,
    port,
    path: normalizePath(rawPath),
    query: queryStart === -1 ? "" : url.slice(queryStart),
  };
}

/** ALPHA, DIGIT, `-`, `.`, `_` and `~`: RFC 3986's unreserved characters. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const ESCAPE = /%([0-9A-Fa-f]{2})/g;

/**
 * The path with percent-encoded unreserved characters decoded and dot
 * segments removed (RFC 3986 sections 6.2.2.2 and 5.2.4), nothing else
 * touched: other escapes keep their hex case (`%2F` stays `%2F`), empty
 * segments and `;` stay.
 *
 * @example
 * ```ts
 * normalizePath("/public/../admin"); // "/admin"
 * normalizePath("/%7Euser/a%2Fb"); // "/~user/a%2Fb"
 * normalizePath("/a/%2e%2e/b"); // "/b"
 * ```
 */
export function normalizePath(path: string): string {
  const escaped = path.includes("%");
  if (!escaped && !path.includes("/.")) return path;
  const decoded = escaped ? path.replace(ESCAPE, decodeUnreserved) : path;
  return decoded.includes("/.") ? removeDotSegments(decoded) : decoded;
}

function decodeUnreserved(escape: string, hex: string): string {
  const character = String.fromCharCode(parseInt(hex, 16));
  return UNRESERVED.test(character) ? character : escape;
}

/** RFC 3986 section 5.2.4 for an absolute path: `.` and `..` segments resolved. */
function removeDotSegments(path: string): string {
  const segments = path.split("/");
  const kept: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const segment = segments[i];
    if (segment === "." || segment === "..") {
      if (segment === "..") kept.pop();
      // A final dot segment leaves a directory: `/a/b/..` is `/a/`.
      if (i === last) kept.push("");
      continue;
    }
    kept.push(segment);
  }
  return `/${kept.join("/")}`;
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
