/**
 * One request/response exchange over an HTTP/1.1 connection: writes the
 * request head, streams the request body while it reads the response, parses
 * the response head, then serves the response body as a pull-based stream that
 * gives the connection back (or closes it) when the body ends.
 *
 * @module
 */

import type { RequestContext } from "../request_context.ts";
import { isIdempotent } from "../resilience/retry_policy.ts";
import {
  UpstreamError,
  type UpstreamErrorKind,
  type UpstreamRequest,
  type UpstreamResponse,
} from "../types.ts";
import { ChunkedDecoder, type ChunkSink } from "./http1_chunked_decoder.ts";
import { ConnectionLease, type ConnectionPool, type PooledConnection } from "./connection_pool.ts";
import type { Deadline, DeadlineQueue } from "./deadline_queue.ts";
import { encodeRequestHead, type RequestHead } from "./http1_request_head.ts";
import { findHeadEnd, parseResponseHead, type ResponseHead } from "./http1_response_head.ts";

const HEAD_PHASE = 0;
const BODY_PHASE = 1;
const DONE_PHASE = 2;

const NO_BODY = 0;
const LENGTH_BODY = 1;
const CHUNKED_BODY = 2;
const CLOSE_DELIMITED_BODY = 3;

/** The largest read of a response body. */
const MAX_BODY_READ = 128 * 1024;
/**
 * The first read of a body of unknown length (each read that fills its room
 * doubles the next), and the least free room worth reading into.
 */
const MIN_BODY_READ = 16 * 1024;

const EMPTY = new Uint8Array(0);
const CRLF = new Uint8Array([13, 10]);
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");

/**
 * Sends one request on a pooled or fresh connection and reads its response.
 * The exchange is its own response-body source, chunk sink, abort listener
 * and deadline item, so a request allocates no closures.
 *
 * @example
 * ```ts
 * using ctx = RequestContext.open(request, info);
 * const pool = new ConnectionPool({ connectTimeoutMs: 1000 });
 * const responseTimeouts = new DeadlineQueue<Http1Exchange>(5000, (exchange) => exchange.timeout());
 * const idleTimeouts = new DeadlineQueue<Http1Exchange>(60_000, (exchange) => exchange.stalled());
 * const upstream: UpstreamRequest = { method: "GET", target: "/", headers: [["host", "a"]], body: null };
 * const url = new URL("http://127.0.0.1:8080");
 * const response = await new Http1Exchange(ctx, pool, url, upstream, timers)
 *   .run();
 * ```
 */
/**
 * The shared timers of a transport's exchanges: response and body-idle
 * deadlines, and the moment an exchange starts watching its client. A
 * listener on the client's signal per request costs more than a small
 * exchange's bookkeeping, and a client that leaves a request answered within
 * `clientWatch.durationMs` changes nothing: only a slower exchange listens.
 */
export interface ExchangeTimers {
  response: DeadlineQueue<Http1Exchange>;
  idle: DeadlineQueue<Http1Exchange>;
  clientWatch: DeadlineQueue<Http1Exchange>;
}

export class Http1Exchange
  implements UnderlyingDefaultSource<Uint8Array>, EventListenerObject, ChunkSink {
  readonly #ctx: RequestContext;
  readonly #pool: ConnectionPool;
  readonly #url: URL;
  readonly #lease: ConnectionLease;
  readonly #buffer: Uint8Array;
  readonly #head: RequestHead;
  readonly #body: ReadableStream<Uint8Array> | null;
  readonly #request: UpstreamRequest;
  readonly #headRequest: boolean;
  readonly #responseTimeouts: DeadlineQueue<Http1Exchange>;
  readonly #idleTimeouts: DeadlineQueue<Http1Exchange>;
  readonly #clientWatches: DeadlineQueue<Http1Exchange>;
  #clientWatch: Deadline<Http1Exchange> | null = null;
  /** Whether the exchange listens for the client going away (see {@linkcode ExchangeTimers}). */
  #watchingClient = false;

  #phase = HEAD_PHASE;
  /** Whether a byte of the request reached the current connection. */
  #sent = false;
  #aborted = false;
  #failure: UpstreamErrorKind | null = null;
  #failureMessage = "";

  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #writer: Promise<void> | null = null;
  #writing = false;
  #stopWriting = false;
  /** Whether a chunk was taken from the request body, which then cannot be replayed. */
  #bodyConsumed = false;
  #requestDone: boolean;
  #scratch: Uint8Array | null = null;

  #mode = NO_BODY;
  #remaining = 0;
  #decoder: ChunkedDecoder | null = null;
  #keepAlive = false;
  /**
   * A streamed body is read into fresh buffers and handed out as views of them,
   * never written over: the unread bytes are `#bodyBuffer[#pos, #end)` (before
   * the body, `#buffer[#pos, #end)`).
   */
  #bodyBuffer: Uint8Array = EMPTY;
  #pos = 0;
  #end = 0;
  #readSize = MIN_BODY_READ;
  #reading: Promise<number | null> | null = null;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #stack: DisposableStack | null = null;

  /** Encodes the request head; throws `TypeError` when it is not writable as is. */
  constructor(
    ctx: RequestContext,
    pool: ConnectionPool,
    url: URL,
    request: UpstreamRequest,
    timers: ExchangeTimers,
  ) {
    this.#ctx = ctx;
    this.#pool = pool;
    this.#url = url;
    this.#buffer = ctx.buffer();
    this.#head = encodeRequestHead(
      request.method,
      request.target,
      request.headers,
      request.body !== null,
      this.#buffer,
    );
    this.#body = request.body;
    this.#request = request;
    this.#requestDone = this.#head.framing === "none";
    this.#headRequest = request.method === "HEAD";
    this.#responseTimeouts = timers.response;
    this.#idleTimeouts = timers.idle;
    this.#clientWatches = timers.clientWatch;
    this.#lease = ctx.own(new ConnectionLease(pool));
  }

  /** Resolves once the final response head arrived; rejects with `UpstreamError`. */
  async run(): Promise<UpstreamResponse> {
    const ctx = this.#ctx;
    if (ctx.aborted) throw ctx.signal.reason;
    const connection = this.#pool.takeIdle(this.#url) ?? await this.#pool.connect(this.#url);
    this.#lease.connection = connection;
    if (ctx.aborted) {
      this.#lease.reusable = true;
      this.#lease[Symbol.dispose]();
      throw ctx.signal.reason;
    }
    this.#clientWatch = this.#clientWatches.set(this);
    const deadline = this.#responseTimeouts.set(this);
    let head: ResponseHead;
    try {
      head = await this.#exchangeHead(connection);
    } catch (error) {
      this.#responseTimeouts.cancel(deadline);
      await this.#finish(false);
      throw this.#stopError() ?? asUpstreamError(error, this.#sent);
    }
    this.#responseTimeouts.cancel(deadline);
    return await this.#respond(head);
  }

  /** Stores the response body's controller. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller;
  }

  /** Delivers the next part of the response body, reading the socket only now. */
  pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> | undefined {
    if (this.#phase !== BODY_PHASE) return;
    return this.#pullBody(controller);
  }

  /** Hands a body chunk to the client, counting it into the request's record. */
  enqueue(chunk: Uint8Array): void {
    this.#ctx.bytes += chunk.byteLength;
    this.#controller!.enqueue(chunk);
  }

  /** The consumer gave up on the body: drop the connection, release everything. */
  async cancel(): Promise<void> {
    if (this.#phase !== BODY_PHASE) return;
    this.#phase = DONE_PHASE;
    this.#lease.connection?.close();
    // Closing the connection ends a pending read: let it end before everything is released.
    await this.#reading?.then(ignore, ignore);
    await this.#finish(false);
  }

  /** The exchange outlived a fast one: from now on a client that goes away stops it. */
  watchClient(): void {
    if (this.#phase === DONE_PHASE) return;
    const signal = this.#ctx.signal;
    this.#watchingClient = true;
    if (signal.aborted) this.handleEvent();
    else signal.addEventListener("abort", this);
  }

  /** `ctx.signal` aborted: the client went away. */
  handleEvent(): void {
    if (this.#phase === DONE_PHASE) return;
    this.#aborted = true;
    this.#lease.connection?.close();
    if (this.#phase === BODY_PHASE && this.#reading === null) {
      this.#error(this.#controller!, this.#ctx.signal.reason).catch(ignore);
    }
  }

  /** The response head did not arrive in time. */
  timeout(): void {
    const limit = this.#responseTimeouts.durationMs;
    this.#fail("response_timeout", `no response head within ${limit} ms`);
  }

  /** The response body was silent longer than the idle timeout. */
  stalled(): void {
    const limit = this.#idleTimeouts.durationMs;
    this.#fail("response_timeout", `upstream body stalled for more than ${limit} ms`);
  }

  /** Whether the request may be sent twice: an idempotent method or an Idempotency-Key. */
  #idempotent(): boolean {
    const { method, headers } = this.#request;
    return isIdempotent(method, headers.some(([name]) => name === "idempotency-key"));
  }

  async #exchangeHead(connection: PooledConnection): Promise<ResponseHead> {
    const head = await this.#attempt(connection, connection.takeIdleRead());
    if (head !== null) return head;
    // The pooled connection had gone stale: retry once on a fresh one when the
    // request body is still untouched and, as Go's http.Transport does, when
    // nothing was written or the request is idempotent.
    this.#lease.connection = null;
    await this.#stopWriter();
    if (this.#bodyConsumed || (this.#sent && !this.#idempotent())) {
      throw new UpstreamError("reset", "upstream closed a reused connection", this.#sent);
    }
    this.#sent = false;
    this.#stopWriting = false;
    const fresh = await this.#pool.connect(this.#url);
    this.#lease.connection = fresh;
    if (this.#aborted || this.#failure !== null) throw this.#stopError();
    const retried = await this.#attempt(fresh, null);
    if (retried === null) throw new UpstreamError("reset", "upstream closed the connection", true);
    return retried;
  }

  /**
   * Writes the head, starts the body writer and reads the response head.
   * Returns null when a reused connection turned out closed before any byte of
   * a response came back, leaving the connection closed.
   */
  async #attempt(
    connection: PooledConnection,
    idleRead: Promise<number> | null,
  ): Promise<ResponseHead | null> {
    try {
      // The head almost always goes out in one write: #write only for the rest.
      const head = this.#head.bytes;
      const written = await connection.conn.write(head);
      if (written > 0) this.#sent = true;
      if (written < head.byteLength) await this.#write(connection.conn, head.subarray(written));
    } catch (error) {
      if (idleRead !== null && this.#stopError() === null && isStaleError(error)) {
        connection.close();
        await idleRead;
        return null;
      }
      throw error;
    }
    if (!this.#requestDone) this.#startWriter(connection.conn);
    return await this.#readHead(connection, idleRead);
  }

  async #readHead(
    connection: PooledConnection,
    idleRead: Promise<number> | null,
  ): Promise<ResponseHead | null> {
    const buffer = this.#buffer;
    const conn = connection.conn;
    let count: number | null;
    if (idleRead !== null) {
      const result = await idleRead;
      if (result <= 0) {
        if (this.#stopError() !== null) throw this.#stopError();
        connection.close();
        return null;
      }
      buffer.set(connection.idleBuffer.subarray(0, result));
      count = result;
    } else {
      count = await conn.read(buffer);
    }
    let start = 0;
    let end = 0;
    let scanFrom = 0;
    for (;;) {
      if (count === null) {
        const where = end === 0 ? "before responding" : "inside the response head";
        throw new UpstreamError("reset", `upstream closed the connection ${where}`, this.#sent);
      }
      end += count;
      let headEnd = findHeadEnd(buffer, start, scanFrom, end);
      while (headEnd > 0) {
        const head = parseResponseHead(buffer, start, headEnd);
        if (head.status >= 200) {
          this.#pos = headEnd;
          this.#end = end;
          return head;
        }
        if (head.status === 101) {
          throw new UpstreamError("invalid_response", "upstream switched protocols", true);
        }
        start = headEnd;
        headEnd = findHeadEnd(buffer, start, start, end);
      }
      if (start > 0) {
        buffer.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      if (end === buffer.byteLength) {
        throw new UpstreamError(
          "invalid_response",
          `upstream response head exceeds ${buffer.byteLength} bytes`,
          true,
        );
      }
      scanFrom = end > 3 ? end - 3 : 0;
      count = await conn.read(buffer.subarray(end));
    }
  }

  async #respond(head: ResponseHead): Promise<UpstreamResponse> {
    const status = head.status;
    const response: UpstreamResponse = {
      status,
      statusText: head.statusText,
      headers: head.headers,
      body: null,
    };
    this.#keepAlive = !this.#head.close && !head.close && (head.minorVersion > 0 || head.keepAlive);
    if (this.#headRequest || status === 204 || status === 304 || head.contentLength === 0) {
      const finishing = this.#finish(this.#keepAlive && this.#pos === this.#end);
      if (finishing !== undefined) await finishing;
      return response;
    }
    if (head.chunked) {
      this.#mode = CHUNKED_BODY;
      this.#decoder = new ChunkedDecoder();
    } else if (head.contentLength > 0 && this.#end - this.#pos >= head.contentLength) {
      // The whole body came with the head: hand it over as bytes, no stream needed.
      const pos = this.#pos;
      this.#pos = pos + head.contentLength;
      response.body = this.#buffer.slice(pos, this.#pos);
      const finishing = this.#finish(this.#keepAlive && this.#pos === this.#end);
      if (finishing !== undefined) await finishing;
      return response;
    } else if (head.contentLength > 0) {
      this.#mode = LENGTH_BODY;
      this.#remaining = head.contentLength;
    } else {
      this.#mode = CLOSE_DELIMITED_BODY;
      this.#keepAlive = false;
    }
    this.#bodyBuffer = this.#buffer.slice(this.#pos, this.#end);
    this.#end -= this.#pos;
    this.#pos = 0;
    this.#stack = this.#ctx.handOff();
    this.#phase = BODY_PHASE;
    response.body = new ReadableStream<Uint8Array>(this, { highWaterMark: 0 });
    return response;
  }

  async #pullBody(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    try {
      for (;;) {
        const buffer = this.#bodyBuffer;
        const pos = this.#pos;
        const end = this.#end;
        if (pos < end) {
          if (this.#mode === LENGTH_BODY) {
            const take = Math.min(end - pos, this.#remaining);
            this.enqueue(buffer.subarray(pos, pos + take));
            this.#pos = pos + take;
            this.#remaining -= take;
            if (this.#remaining === 0) await this.#complete(controller, this.#pos === end);
            return;
          }
          if (this.#mode === CLOSE_DELIMITED_BODY) {
            this.enqueue(buffer.subarray(pos, end));
            this.#pos = end;
            return;
          }
          const decoder = this.#decoder!;
          this.#pos = decoder.decode(buffer, pos, end, this);
          if (decoder.done) {
            await this.#complete(controller, this.#pos === end);
            return;
          }
          if (decoder.emitted > 0) return;
        }
        const count = await this.#readBody();
        if (this.#phase !== BODY_PHASE) return;
        if (count === null) {
          if (this.#mode === CLOSE_DELIMITED_BODY) return await this.#complete(controller, false);
          throw new UpstreamError("reset", "upstream closed the connection inside the body", true);
        }
        this.#end += count;
      }
    } catch (error) {
      if (this.#phase !== BODY_PHASE) return;
      await this.#error(controller, this.#stopError() ?? asUpstreamError(error, true));
    }
  }

  /**
   * Reads into the free end of the body buffer, or into a fresh one that takes
   * over the unread bytes (the start of a chunk framing line) when too little is free.
   */
  async #readBody(): Promise<number | null> {
    // One byte more than a content-length body: bytes beyond it make the connection unusable.
    const wanted = this.#mode === LENGTH_BODY ? this.#remaining + 1 : this.#readSize;
    let buffer = this.#bodyBuffer;
    if (buffer.byteLength - this.#end < Math.min(wanted, MIN_BODY_READ)) {
      const unread = this.#end - this.#pos;
      const fresh = new Uint8Array(unread + Math.min(wanted, MAX_BODY_READ));
      fresh.set(buffer.subarray(this.#pos, this.#end));
      this.#bodyBuffer = buffer = fresh;
      this.#pos = 0;
      this.#end = unread;
    }
    const room = buffer.subarray(this.#end, this.#end + wanted);
    const reading = this.#lease.connection!.conn.read(room);
    this.#reading = reading;
    const deadline = this.#idleTimeouts.set(this);
    try {
      const count = await reading;
      if (this.#failure !== null) throw this.#stopError();
      if (count === room.byteLength && this.#readSize < MAX_BODY_READ) this.#readSize *= 2;
      return count;
    } finally {
      this.#reading = null;
      this.#idleTimeouts.cancel(deadline);
    }
  }

  async #complete(
    controller: ReadableStreamDefaultController<Uint8Array>,
    clean: boolean,
  ): Promise<void> {
    await this.#finish(this.#keepAlive && clean);
    try {
      controller.close();
    } catch {
      // cancelled meanwhile
    }
  }

  async #error(
    controller: ReadableStreamDefaultController<Uint8Array>,
    error: unknown,
  ): Promise<void> {
    try {
      controller.error(error);
    } catch {
      // cancelled meanwhile
    }
    await this.#finish(false);
  }

  /**
   * Ends the exchange: stops the request body writer if the response ended
   * first, then gives back the connection (reused only when `reusable` and the
   * whole request went out) and, after a streamed body, every handed-off resource.
   */
  #finish(reusable: boolean): Promise<void> | undefined {
    this.#phase = DONE_PHASE;
    if (this.#clientWatch !== null) this.#clientWatches.cancel(this.#clientWatch);
    if (this.#watchingClient) this.#ctx.signal.removeEventListener("abort", this);
    if (!reusable || this.#writing) {
      reusable = false;
      this.#lease.connection?.close();
    }
    // Without a request body writer (a GET) the exchange ends now, with no promise to wait for.
    if (this.#writer === null) return this.#release(reusable);
    return this.#stopWriter().then(() => this.#release(reusable));
  }

  #release(reusable: boolean): undefined {
    this.#lease.reusable = reusable && this.#requestDone && this.#failure === null;
    if (this.#stack !== null) this.#stack.dispose();
    else this.#lease[Symbol.dispose]();
  }

  #startWriter(conn: Deno.Conn): void {
    this.#reader = this.#body!.getReader();
    if (this.#head.framing === "chunked") this.#scratch ??= this.#ctx.buffer();
    this.#writing = true;
    this.#writer = this.#writeBody(conn, this.#reader);
  }

  /** Streams the request body; never rejects, failures are recorded on the exchange. */
  async #writeBody(
    conn: Deno.Conn,
    reader: ReadableStreamDefaultReader<Uint8Array>,
  ): Promise<void> {
    const chunked = this.#head.framing === "chunked";
    let left = this.#head.contentLength;
    try {
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          if (!this.#stopWriting) this.#fail("reset", `request body failed: ${describe(error)}`);
          return;
        }
        if (this.#stopWriting) {
          if (!result.done) this.#bodyConsumed = true;
          return;
        }
        if (result.done) break;
        const chunk = result.value;
        this.#bodyConsumed = true;
        if (chunk.byteLength === 0) continue;
        if (chunked) {
          await this.#writeChunk(conn, chunk);
        } else {
          if (chunk.byteLength > left) {
            this.#fail("reset", "request body longer than its content-length");
            return;
          }
          left -= chunk.byteLength;
          await this.#write(conn, chunk);
        }
        if (this.#stopWriting) return;
      }
      if (chunked) {
        await this.#write(conn, LAST_CHUNK);
      } else if (left !== 0) {
        this.#fail("reset", "request body shorter than its content-length");
        return;
      }
      this.#requestDone = true;
    } catch {
      // A failed write: the response side learns from the socket what happened.
    } finally {
      this.#writing = false;
    }
  }

  async #writeChunk(conn: Deno.Conn, chunk: Uint8Array): Promise<void> {
    const scratch = this.#scratch!;
    let at = putChunkSize(scratch, chunk.byteLength);
    if (at + chunk.byteLength + 2 <= scratch.byteLength) {
      scratch.set(chunk, at);
      at += chunk.byteLength;
      scratch[at++] = 13;
      scratch[at++] = 10;
      await this.#write(conn, scratch.subarray(0, at));
    } else {
      await this.#write(conn, scratch.subarray(0, at));
      await this.#write(conn, chunk);
      await this.#write(conn, CRLF);
    }
  }

  async #write(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.byteLength) {
      const count = await conn.write(offset === 0 ? bytes : bytes.subarray(offset));
      if (count === 0) throw new Deno.errors.WriteZero("connection accepted no bytes");
      this.#sent = true;
      offset += count;
    }
  }

  /**
   * Makes the body writer return. An untouched body is only unlocked (a pending
   * read fails, its data stays in the stream) so that it can be sent again.
   */
  async #stopWriter(): Promise<void> {
    const writer = this.#writer;
    if (writer === null) return;
    this.#writer = null;
    if (this.#writing) {
      this.#stopWriting = true;
      if (this.#bodyConsumed) this.#reader!.cancel().catch(ignore);
      else this.#reader!.releaseLock();
    } else if (!this.#bodyConsumed) {
      this.#reader!.releaseLock();
    }
    await writer;
  }

  /** Ends the exchange with an error of `kind`, closing the connection. */
  #fail(kind: UpstreamErrorKind, message: string): void {
    if (this.#failure !== null || this.#phase === DONE_PHASE) return;
    this.#failure = kind;
    this.#failureMessage = message;
    this.#lease.connection?.close();
  }

  /** The error an abort or a recorded failure ends the exchange with, or null. */
  #stopError(): unknown {
    if (this.#aborted) return this.#ctx.signal.reason;
    if (this.#failure !== null) {
      return new UpstreamError(this.#failure, this.#failureMessage, this.#sent);
    }
    return null;
  }
}

/** Writes `size` in hex and CRLF at the start of `buffer`; returns the length. */
function putChunkSize(buffer: Uint8Array, size: number): number {
  let digits = 1;
  for (let rest = size; rest > 15; rest = Math.floor(rest / 16)) digits++;
  for (let i = digits - 1, rest = size; i >= 0; i--, rest = Math.floor(rest / 16)) {
    buffer[i] = HEX_DIGITS[rest % 16];
  }
  buffer[digits] = 13;
  buffer[digits + 1] = 10;
  return digits + 2;
}

function isStaleError(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted || error instanceof Deno.errors.UnexpectedEof;
}

function asUpstreamError(error: unknown, sent: boolean): UpstreamError {
  if (error instanceof UpstreamError) return error;
  return new UpstreamError("reset", `upstream connection failed: ${describe(error)}`, sent);
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const newline = text.indexOf("\n");
  return newline < 0 ? text : text.slice(0, newline);
}

function ignore(): void {}
