/**
 * The admin API on its own listener (never the proxy's port, so a backend's
 * own `/metrics` stays reachable through the balancer): the dashboard,
 * Prometheus metrics, status and history, readiness, routing explanations,
 * and the two write actions, drain and enable, which need the Bearer token.
 *
 * @module
 */

import dashboardHtml from "./dashboard.html" with { type: "text" };
import type { ListenConfig } from "../config/config.ts";
import { explain, type Routing } from "../observability/explain.ts";
import { errorResponse } from "../internal/error_response.ts";
import { backendState } from "../load_balancer.ts";
import type { ClientInfo } from "../types.ts";
import { METRICS_CONTENT_TYPE } from "../observability/metrics.ts";
import type { Telemetry } from "../observability/telemetry.ts";

/** What the admin API works with. */
export interface AdminOptions {
  /** The request flow's routes and pools, which a reload replaces in place. */
  routing: Routing;
  telemetry: Telemetry;
  /** Whether the balancer takes traffic: false from the moment a drain starts. */
  ready: () => boolean;
  /** The Bearer token writes need; null disables writes. */
  token: string | null;
  /** Where errors go, one line each. */
  log: (line: string) => void;
}

/**
 * The running admin listener.
 *
 * @example
 * ```ts
 * await using admin = startAdminServer({ host: "127.0.0.1", port: 9090 }, options);
 * console.log(admin.addr.port);
 * ```
 */
export interface AdminServer extends AsyncDisposable {
  readonly addr: Deno.NetAddr;
  shutdown(): Promise<void>;
}

/** Largest `POST /explain` body accepted. */
const MAX_BODY_BYTES = 64 * 1024;

/** Method token, as RFC 9110 defines it. */
const METHOD_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Headers every admin answer carries: nothing may frame, sniff or cache it. */
const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

/** The dashboard's script and style are inline, and it talks only to this listener. */
const DASHBOARD_POLICY =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:";

/**
 * Starts the admin API on `listen`. Throws when it cannot listen there.
 *
 * @example
 * ```ts
 * const admin = startAdminServer({ host: "127.0.0.1", port: 0 }, {
 *   routing: proxy, telemetry, ready: () => true, token: null, log: console.error,
 * });
 * await fetch(`http://127.0.0.1:${admin.addr.port}/status`);
 * await admin.shutdown();
 * ```
 */
export function startAdminServer(listen: ListenConfig, options: AdminOptions): AdminServer {
  const server = Deno.serve({
    hostname: listen.host,
    port: listen.port,
    onListen: () => {},
    onError(error) {
      options.log(`admin: internal error: ${error instanceof Error ? error.message : error}`);
      return errorResponse(500, "the admin API failed to handle the request");
    },
  }, async (request) => withCommonHeaders(await route(request, options)));
  let stopped: Promise<void> | undefined;
  const shutdown = () => stopped ??= server.shutdown();
  return { addr: server.addr, shutdown, [Symbol.asyncDispose]: shutdown };
}

async function route(request: Request, options: AdminOptions): Promise<Response> {
  const { pathname } = new URL(request.url);
  const { method } = request;
  const write = /^\/backends\/([^/]+)\/(drain|enable)$/.exec(pathname);
  if (write !== null) {
    if (method !== "POST") return notAllowed(method, pathname, "POST");
    return await backendAction(request, options, write[1], write[2]);
  }
  if (pathname === "/explain") {
    if (method !== "POST") return notAllowed(method, pathname, "POST");
    return await explainRequest(request, options.routing);
  }
  const view = VIEWS[pathname];
  if (view === undefined) return errorResponse(404, `no such endpoint: ${pathname}`);
  if (method !== "GET") return notAllowed(method, pathname, "GET");
  return await view(options);
}

/** The read-only endpoints, by path. */
const VIEWS: Readonly<Record<string, (options: AdminOptions) => Response | Promise<Response>>> = {
  "/": () =>
    new Response(dashboardHtml, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": DASHBOARD_POLICY,
      },
    }),
  "/metrics": async ({ telemetry }) =>
    new Response(await telemetry.metricsText(), {
      headers: { "content-type": METRICS_CONTENT_TYPE },
    }),
  "/status": async ({ telemetry }) => Response.json(await telemetry.status()),
  "/history": async ({ telemetry }) => Response.json(await telemetry.history()),
  // A readiness probe: 503 once SIGTERM started the drain, so that traffic stops first.
  "/ready": ({ ready }) =>
    ready()
      ? new Response("ready\n", { headers: { "content-type": "text/plain; charset=utf-8" } })
      : errorResponse(503, "draining: the balancer is shutting down"),
};

function notAllowed(method: string, pathname: string, allowed: string): Response {
  return errorResponse(405, `${pathname} takes ${allowed}, not ${method}`, { allow: allowed });
}

function withCommonHeaders(response: Response): Response {
  for (const [name, value] of Object.entries(COMMON_HEADERS)) response.headers.set(name, value);
  return response;
}

/** `POST /backends/{id}/drain` and `/enable`. */
async function backendAction(
  request: Request,
  options: AdminOptions,
  id: string,
  action: string,
): Promise<Response> {
  const denied = await authorize(request, options.token);
  if (denied !== undefined) return denied;
  const backend = options.routing.pools.backendById(id);
  if (backend === undefined) return errorResponse(404, `no backend has the id ${id}`);
  const draining = action === "drain";
  if (backend.draining !== draining) {
    backend.draining = draining;
    // Back in rotation: a slow start, as after any return.
    if (!draining) backend.joinedAt = performance.now();
    options.log(`backend ${backend.url.origin} ${draining ? "draining" : "enabled"}: admin API`);
  }
  return Response.json({ id: backend.id, url: backend.url.origin, state: backendState(backend) });
}

/** Undefined when the request may write, else the answer that says why not. */
async function authorize(request: Request, token: string | null): Promise<Response | undefined> {
  if (token === null) return errorResponse(403, "writes are disabled: set admin.token");
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match !== null && await sameSecret(match[1], token)) return undefined;
  const reason = header === "" ? "a Bearer token is required" : "the Bearer token is wrong";
  return errorResponse(401, reason, { "www-authenticate": 'Bearer realm="deno-lb admin"' });
}

/**
 * Compares two secrets in constant time: their SHA-256 digests are compared
 * byte by byte without stopping early, so neither the content nor the length
 * of the expected token shows in the time taken.
 */
async function sameSecret(given: string, expected: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [a, b] = await Promise.all(
    [given, expected].map(async (text) =>
      new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)))
    ),
  );
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/**
 * `POST /explain`: `{ method, path, headers, client }` in (the `host` header,
 * when given, is the host routes match; `client` the client's address, which
 * `consistent_hash` on `client_ip` hashes), a decision out, nothing sent.
 */
async function explainRequest(request: Request, routing: Routing): Promise<Response> {
  const type = request.headers.get("content-type") ?? "application/json";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    return errorResponse(415, `the body must be application/json, got ${type}`);
  }
  const body = await readLimited(request, MAX_BODY_BYTES);
  if (body === undefined) {
    return errorResponse(413, `the body must be at most ${MAX_BODY_BYTES} bytes`);
  }
  let input: unknown;
  try {
    input = JSON.parse(body);
  } catch (error) {
    return errorResponse(400, `the body is not JSON: ${(error as Error).message}`);
  }
  const parsed = explainInput(input);
  if (typeof parsed === "string") return errorResponse(400, parsed);
  return Response.json(explain(routing, parsed.request, parsed.client));
}

/** The request to explain, or why the input does not describe one. */
function explainInput(input: unknown): { request: Request; client?: ClientInfo } | string {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return 'expected an object like { "method": "GET", "path": "/", "headers": {} }';
  }
  const { method = "GET", path, headers = {}, client, ...rest } = input as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    return `unknown key ${unknown[0]} (expected method, path, headers, client)`;
  }
  if (client !== undefined && (typeof client !== "string" || !/^[0-9a-fA-F.:]+$/.test(client))) {
    return `client: expected the client's IP address, got ${JSON.stringify(client)}`;
  }
  if (typeof method !== "string" || !METHOD_PATTERN.test(method)) {
    return `method: expected an HTTP method like "GET", got ${JSON.stringify(method)}`;
  }
  if (typeof path !== "string" || !/^\/\S*$/.test(path)) {
    return `path: expected a path starting with "/", got ${JSON.stringify(path) ?? "nothing"}`;
  }
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
    return `headers: expected an object of header names to values, got ${JSON.stringify(headers)}`;
  }
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== "string") {
      return `headers.${name}: expected a string, got ${JSON.stringify(value)}`;
    }
  }
  const host = Object.entries(headers as Record<string, string>).find(([name]) =>
    name.toLowerCase() === "host"
  )?.[1];
  try {
    const request = new Request(`http://${host ?? "explain.invalid"}${path}`, {
      method,
      headers: headers as Record<string, string>,
    });
    return client === undefined ? { request } : { request, client: { clientAddress: client } };
  } catch (error) {
    return `cannot build that request: ${(error as Error).message}`;
  }
}

/** The body as text, or undefined when it is longer than `limit` bytes. */
async function readLimited(request: Request, limit: number): Promise<string | undefined> {
  if (Number(request.headers.get("content-length") ?? 0) > limit) {
    await request.body?.cancel();
    return undefined;
  }
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > limit) return undefined;
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}
