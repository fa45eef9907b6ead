/**
 * RequestContext owns everything one proxied request holds: pooled buffers,
 * the upstream connection lease, the abort signal and timing. Open it with
 * `using`; its `[Symbol.dispose]` gives every resource back, on success, on
 * error and when the client goes away.
 *
 * @module
 */

import { type BufferPool, sharedBufferPool } from "./internal/buffer_pool.ts";

/**
 * Per-request resources, released together.
 *
 * @example
 * ```ts
 * function handle(request: Request, info: Deno.ServeHandlerInfo): Response {
 *   using ctx = RequestContext.open(request, info);
 *   const buffer = ctx.buffer(); // returned to the pool when ctx is disposed
 *   return new Response(String(buffer.byteLength));
 * }
 * ```
 */
export class RequestContext implements Disposable {
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number = performance.now();
  readonly #abort = new AbortController();
  readonly #buffers: BufferPool;
  #resources = new DisposableStack();
  #onClientAbort = () => this.#abort.abort(new DOMException("client went away", "AbortError"));

  private constructor(
    readonly request: Request,
    /** The client's address, `127.0.0.1` or `::1`. */
    readonly clientAddress: string,
    buffers: BufferPool,
  ) {
    this.#buffers = buffers;
    this.#resources.defer(() =>
      this.#abort.abort(new DOMException("request finished", "AbortError"))
    );
    request.signal.addEventListener("abort", this.#onClientAbort, { once: true });
    this.#resources.defer(() => request.signal.removeEventListener("abort", this.#onClientAbort));
  }

  /** Opens the context of one incoming request. */
  static open(
    request: Request,
    info: Deno.ServeHandlerInfo,
    buffers: BufferPool = sharedBufferPool,
  ): RequestContext {
    const address = info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "";
    return new RequestContext(request, address, buffers);
  }

  /** Aborted when the client goes away or the context is disposed. */
  get signal(): AbortSignal {
    return this.#abort.signal;
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

  /** Gives back every resource still owned, then aborts any pending upstream work. */
  [Symbol.dispose](): void {
    this.#resources.dispose();
  }
}
