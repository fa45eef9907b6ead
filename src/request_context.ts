/**
 * RequestContext owns everything one proxied request holds: pooled buffers,
 * the upstream connection lease, the abort signal, and the record of what
 * happened to it (route, pool, backend, attempts, timing, status, bytes).
 * Open it with `using`; its `[Symbol.dispose]` gives every resource back, on
 * success, on error and when the client goes away. The request ends when its
 * response body ends (or at once for a response without a streamed body):
 * then the record goes to the `onEnd` the flow opened it with.
 *
 * @module
 */

import { type BufferPool, sharedBufferPool } from "./internal/buffer_pool.ts";
import { requestId } from "./internal/request_id.ts";
import type { Backend, UpstreamError } from "./types.ts";
import type { TunnelRecord } from "./websocket/tunnel.ts";

/**
 * Why a finished request's signal aborts. One shared instance: creating a
 * DOMException captures a stack, which costs more than the rest of a small
 * request's bookkeeping.
 */
const REQUEST_FINISHED = new DOMException("request finished", "AbortError");

/** An attempt that failed: which backend, and why. */
export interface FailedAttempt {
  backend: Backend;
  error: UpstreamError;
  /** Whether the request went on to another backend. */
  retried: boolean;
}

/**
 * What a context is opened with besides the request.
 *
 * @example
 * ```ts
 * const options: RequestContextOptions = { onEnd: (record) => console.log(record.status) };
 * ```
 */
export interface RequestContextOptions {
  /** Called once with the complete record when the request ended. */
  onEnd?: (record: RequestContext) => void;
  /** Default the shared buffer pool. */
  buffers?: BufferPool;
}

/**
 * Per-request resources, released together, and the request's record.
 *
 * @example
 * ```ts
 * function handle(request: Request, info: Deno.ServeHandlerInfo): Response {
 *   using ctx = RequestContext.open(request, info);
 *   const buffer = ctx.buffer(); // returned to the pool when ctx is disposed
 *   return ctx.respond(new Response(String(buffer.byteLength)));
 * }
 * ```
 */
export class RequestContext implements Disposable {
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number = performance.now();
  /** The client's valid `X-Request-Id`, or a new id. */
  readonly requestId: string;
  /** Whether the client sent `X-LB-Explain: 1`; the flow decides whether it may have one. */
  readonly explainAsked: boolean;
  /** The name of the route that took the request; undefined when none did. */
  route: string | undefined;
  /** The name of the pool it went to; undefined when it went to none. */
  pool: string | undefined;
  /** The backend of the latest attempt; undefined while none was chosen. */
  backend: Backend | undefined;
  /** How many backends the request was sent to. */
  attempts = 0;
  /** Milliseconds from sending to the backend until its response head; undefined without one. */
  upstreamMs: number | undefined;
  /** Milliseconds spent waiting on backends, failed attempts included. */
  waitedMs = 0;
  /** `performance.now()` when the response head was handed to the server. */
  respondedAt = 0;
  /** The status sent to the client; 0 until known. */
  status = 0;
  /** Response body bytes sent to the client. */
  bytes = 0;
  /** The attempts that failed, in order. */
  readonly failures: FailedAttempt[] = [];
  /** What a WebSocket tunnel carried, for a request that became one. */
  tunnel: TunnelRecord | undefined;

  /** Made by the first use of {@linkcode RequestContext.signal}, which starts watching the client. */
  #abort: AbortController | undefined;
  readonly #buffers: BufferPool;
  readonly #onEnd: ((record: RequestContext) => void) | undefined;
  #attemptStartedAt = 0;
  /** Whether {@linkcode RequestContext.countBody} took the body. */
  #bodyCounted = false;
  #ended = false;
  #resources = new DisposableStack();
  #onClientAbort = () => this.#abort!.abort(new DOMException("client went away", "AbortError"));

  private constructor(
    readonly request: Request,
    /** The client's address, `127.0.0.1` or `::1`. */
    readonly clientAddress: string,
    options: RequestContextOptions,
  ) {
    this.#buffers = options.buffers ?? sharedBufferPool;
    this.#onEnd = options.onEnd;
    const headers = request.headers;
    this.requestId = requestId(headers.get("x-request-id"));
    this.explainAsked = headers.get("x-lb-explain") === "1";
    // Moved with the other resources by handOff: the request ends when its body does.
    this.#resources.defer(() => this.#end());
  }

  /** Opens the context of one incoming request. */
  static open(
    request: Request,
    info: Deno.ServeHandlerInfo,
    options: RequestContextOptions = {},
  ): RequestContext {
    const address = info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "";
    return new RequestContext(request, address, options);
  }

  /**
   * Aborted when the client goes away or the context is disposed. Watching
   * the client costs a listener on the request's own signal, so it starts
   * with the first use: work that may wait long (a queue, a slow backend)
   * asks for it, a request answered at once never does.
   */
  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#ended) this.#abort.abort(REQUEST_FINISHED);
      else if (this.request.signal.aborted) this.#onClientAbort();
      else this.request.signal.addEventListener("abort", this.#onClientAbort, { once: true });
    }
    return this.#abort.signal;
  }

  /** Whether {@linkcode RequestContext.signal} aborted; false while nothing watches the client. */
  get aborted(): boolean {
    return this.#abort?.signal.aborted ?? false;
  }

  /** A pooled buffer that goes back to the pool when the context is disposed. */
  buffer(): Uint8Array {
    const buffer = this.#buffers.take();
    this.#resources.defer(() => this.#buffers.give(buffer));
    return buffer;
  }

  /** Registers a resource to release when the context is disposed. */
  own<T extends Disposable>(resource: T): T {
    return this.#resources.use(resource);
  }

  /**
   * Moves every resource owned so far out of this context, for a response
   * body that outlives the handler: the body disposes the returned stack when
   * it ends or is cancelled. Disposing the context afterwards releases nothing.
   */
  handOff(): DisposableStack {
    const moved = this.#resources.move();
    this.#resources = new DisposableStack();
    return moved;
  }

  /** The request is about to go to `backend`. */
  sendTo(backend: Backend): void {
    this.backend = backend;
    this.attempts++;
    this.#attemptStartedAt = performance.now();
  }

  /** Milliseconds since the current attempt was sent. */
  attemptMs(): number {
    return performance.now() - this.#attemptStartedAt;
  }

  /** The backend's response head arrived. */
  headReceived(): void {
    this.upstreamMs = performance.now() - this.#attemptStartedAt;
    this.waitedMs += this.upstreamMs;
  }

  /** The attempt on the current backend failed; `retried` when another backend gets the request. */
  attemptFailed(error: UpstreamError, retried: boolean): FailedAttempt {
    this.waitedMs += performance.now() - this.#attemptStartedAt;
    const attempt = { backend: this.backend!, error, retried };
    this.failures.push(attempt);
    return attempt;
  }

  /**
   * The upstream body as the client gets it. A body that arrived whole counts
   * here; a streamed one is counted into {@linkcode RequestContext.bytes} by
   * its transport, chunk by chunk, and its end (when the transport disposes
   * the handed-off resources) completes the record.
   */
  countBody<Body extends ReadableStream<Uint8Array> | Uint8Array | null>(body: Body): Body {
    this.#bodyCounted = true;
    if (body instanceof Uint8Array) this.bytes = body.byteLength;
    return body;
  }

  /**
   * The response the client gets: its status goes into the record, and it
   * carries `X-Request-Id`. A body not counted by
   * {@linkcode RequestContext.countBody} counts as its Content-Length.
   */
  respond(response: Response): Response {
    this.respondedAt = performance.now();
    this.status = response.status;
    const headers = response.headers;
    if (!this.#bodyCounted) this.bytes = Number(headers.get("content-length") ?? 0);
    headers.set("x-request-id", this.requestId);
    return response;
  }

  /** The request ended: stop watching the client, abort pending upstream work, hand on the record. */
  #end(): void {
    this.#ended = true;
    if (this.#abort !== undefined) {
      this.request.signal.removeEventListener("abort", this.#onClientAbort);
      this.#abort.abort(REQUEST_FINISHED);
    }
    this.#onEnd?.(this);
  }

  /**
   * Gives back every resource still owned, then aborts any pending upstream
   * work; the record is complete then and goes to `onEnd`.
   */
  [Symbol.dispose](): void {
    this.#resources.dispose();
  }
}
