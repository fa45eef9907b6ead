/**
 * The second transport: Deno's fetch, one pooled `Deno.createHttpClient` per
 * backend, for backends that need what it has (HTTP/2). Differences from the
 * default HTTP/1.1 client are listed in docs/operations.md.
 *
 * @module
 */

import type { BackendTlsConfig } from "../config/types.ts";
import type { RequestContext } from "../request_context.ts";
import {
  type Backend,
  type ConnectionStats,
  type HeaderPairs,
  UpstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
} from "../types.ts";
import type { Transport } from "../transport.ts";
import { tlsFailureIn } from "./connection_pool.ts";

/** Encodings fetch decodes on its own when the request's Accept-Encoding allows them. */
const DECODED_BY_FETCH = ["gzip", "br"];
/** Headers that describe the encoded body, wrong once fetch decoded it. */
const STALE_WHEN_DECODED = ["content-encoding", "content-length"];
/** What fetch sends when the request has no Accept-Encoding. */
const FETCH_DEFAULT_ACCEPT_ENCODING = "gzip,br";

/** Timeouts the fetch transport applies, in milliseconds, and its TLS. */
export interface FetchTransportOptions {
  /** Until the response head arrives; fetch has no separate connect timeout. */
  responseTimeoutMs: number;
  /** The longest silence while reading a response body. Default 60 s. */
  idleTimeoutMs?: number;
  /**
   * The CA and client certificate for `https://` backends. Its `server_name`
   * is not honoured: fetch checks the certificate against the URL's host.
   */
  tls?: BackendTlsConfig;
}

/**
 * Forwards requests with `fetch`: redirects are returned, not followed, and a
 * body that fetch decoded goes out without its stale Content-Encoding and
 * Content-Length.
 *
 * @example
 * ```ts
 * const transport = new FetchTransport({ responseTimeoutMs: 30_000 });
 * const response = await transport.send(ctx, backend, upstreamRequest);
 * transport.close();
 * ```
 */
export class FetchTransport implements Transport {
  readonly #clients = new Map<string, Deno.HttpClient>();

  constructor(readonly options: FetchTransportOptions) {}

  async send(
    ctx: RequestContext,
    backend: Backend,
    request: UpstreamRequest,
  ): Promise<UpstreamResponse> {
    const timeout = new AbortController();
    const responseTimeoutMs = request.timeouts?.response ?? this.options.responseTimeoutMs;
    const timer = setTimeout(() => timeout.abort(), responseTimeoutMs);
    let response: Response;
    try {
      response = await fetch(backend.url.origin + request.target, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        client: this.#client(backend),
        redirect: "manual",
        signal: AbortSignal.any([ctx.signal, timeout.signal]),
      });
    } catch (error) {
      if (timeout.signal.aborted) {
        throw new UpstreamError("response_timeout", "no response headers in time", true);
      }
      throw toUpstreamError(error);
    } finally {
      clearTimeout(timer);
    }
    if (response.status < 200 || response.status > 599) {
      await response.body?.cancel();
      throw new UpstreamError("invalid_response", `status ${response.status}`, true);
    }
    const decoded = wasDecoded(response.headers, request.headers);
    const headers: HeaderPairs = [];
    for (const field of response.headers) {
      if (!decoded || !STALE_WHEN_DECODED.includes(field[0])) headers.push(field);
    }
    const body = response.body &&
      releaseWhenDone(
        response.body,
        ctx,
        request.timeouts?.idle ?? this.options.idleTimeoutMs ?? 60_000,
      );
    return { status: response.status, statusText: response.statusText, headers, body };
  }

  /** Closes the backend's HTTP client and its pooled connections. */
  forget(backend: Backend): void {
    this.#clients.get(backend.id)?.close();
    this.#clients.delete(backend.id);
  }

  /** Nothing: fetch tells nothing of its connections. */
  connectionStats(): ConnectionStats {
    return {};
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #client(backend: Backend): Deno.HttpClient {
    let client = this.#clients.get(backend.id);
    if (client === undefined) {
      client = Deno.createHttpClient({ allowHost: true, ...httpClientTls(this.options.tls) });
      this.#clients.set(backend.id, client);
    }
    return client;
  }
}

/**
 * The `Deno.createHttpClient` options of `tls`: its CA and client
 * certificate. A client checks certificates against the URL's host, so
 * `server_name` has no option here.
 *
 * @example
 * ```ts
 * const client = Deno.createHttpClient(httpClientTls({ ca: Deno.readTextFileSync("ca.pem") }));
 * ```
 */
export function httpClientTls(
  tls: BackendTlsConfig = {},
): Deno.CreateHttpClientOptions | (Deno.CreateHttpClientOptions & Deno.TlsCertifiedKeyPem) {
  const caCerts = tls.ca === undefined ? {} : { caCerts: [tls.ca] };
  if (tls.cert === undefined || tls.key === undefined) return caCerts;
  return { ...caCerts, cert: tls.cert, key: tls.key };
}

function wasDecoded(response: Headers, request: HeaderPairs): boolean {
  const encoding = response.get("content-encoding")?.trim().toLowerCase();
  if (encoding === undefined || !DECODED_BY_FETCH.includes(encoding)) return false;
  const accepted = request.find(([name]) => name === "accept-encoding")?.[1] ??
    FETCH_DEFAULT_ACCEPT_ENCODING;
  return accepted.toLowerCase().split(",").some((token) => token.split(";")[0].trim() === encoding);
}

function toUpstreamError(error: unknown): UpstreamError {
  const text = error instanceof Error ? `${error.message} ${error.cause ?? ""}` : String(error);
  const tls = tlsFailureIn(text);
  if (tls !== undefined) return new UpstreamError("connect_refused", `tls: ${tls}`, false);
  if (/connection refused/i.test(text)) {
    return new UpstreamError("connect_refused", "connection refused", false);
  }
  if (/tcp connect error|dns error/i.test(text)) {
    return new UpstreamError("connect_refused", "connection failed", false);
  }
  return new UpstreamError("reset", "the connection closed before a response", true);
}

/**
 * Passes `body` through, counting its bytes into the request's record, and
 * disposes the request's resources when it ends, fails or is cancelled; a
 * read silent for more than `idleMs` fails the body.
 */
function releaseWhenDone(
  body: ReadableStream<Uint8Array>,
  ctx: RequestContext,
  idleMs: number,
): ReadableStream<Uint8Array> {
  const resources = ctx.handOff();
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(
            new UpstreamError(
              "response_timeout",
              `upstream body stalled for more than ${idleMs} ms`,
              true,
            ),
          );
        }, idleMs);
      });
      try {
        const { done, value } = await Promise.race([reader.read(), stalled]);
        if (!done) {
          ctx.bytes += value.byteLength;
          return controller.enqueue(value);
        }
        controller.close();
        resources.dispose();
      } catch (error) {
        reader.cancel(error).catch(() => {});
        resources.dispose();
        controller.error(error);
      } finally {
        clearTimeout(timer);
      }
    },
    async cancel(reason) {
      try {
        await reader.cancel(reason);
      } finally {
        resources.dispose();
      }
    },
  }, { highWaterMark: 0 });
}
