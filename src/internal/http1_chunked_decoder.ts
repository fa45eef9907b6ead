/**
 * Decodes the chunked transfer coding of a response body, incrementally, out
 * of whatever bytes have arrived so far. Trailer fields are read and dropped.
 *
 * @module
 */

import { UpstreamError } from "../types.ts";

/**
 * Where chunk data goes: each call gets a view of the decoded buffer, which the
 * caller of {@linkcode ChunkedDecoder.decode} must not write over afterwards. A
 * `ReadableStreamDefaultController` is one.
 *
 * @example
 * ```ts
 * const chunks: Uint8Array[] = [];
 * const sink: ChunkSink = { enqueue: (chunk) => chunks.push(chunk) };
 * ```
 */
export interface ChunkSink {
  enqueue(chunk: Uint8Array): void;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const SEMICOLON = 59;
/** A chunk-size line (with extensions) longer than this is refused. */
const MAX_SIZE_LINE = 4096;
/** A trailer line longer than this is refused. */
const MAX_TRAILER_LINE = 64 * 1024;
/** Up to 2^52 - 1 bytes per chunk: exact in a double. */
const MAX_SIZE_DIGITS = 13;

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILER = 3;
const DONE = 4;

/**
 * One chunked body's decoding state. Feed it the unread part of the read
 * buffer; it enqueues views of the data into the sink and returns how far it got.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("3\r\nabc\r\n0\r\n\r\n");
 * const decoder = new ChunkedDecoder();
 * const chunks: Uint8Array[] = [];
 * decoder.decode(bytes, 0, bytes.length, { enqueue: (c) => chunks.push(c) });
 * decoder.done; // true
 * ```
 */
export class ChunkedDecoder {
  #state = SIZE;
  #remaining = 0;
  /** Data bytes enqueued by the last {@linkcode ChunkedDecoder.decode} call. */
  emitted = 0;

  /** Whether the last chunk and the trailer section were read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Decodes `buffer[start, end)` as far as it goes and returns the index of the
   * first byte not consumed: the caller keeps those bytes and appends more.
   * Throws `UpstreamError("invalid_response")` on malformed framing.
   */
  decode(buffer: Uint8Array, start: number, end: number, sink: ChunkSink): number {
    this.emitted = 0;
    let at = start;
    while (at < end) {
      switch (this.#state) {
        case DATA: {
          const take = Math.min(end - at, this.#remaining);
          sink.enqueue(buffer.subarray(at, at + take));
          this.emitted += take;
          this.#remaining -= take;
          at += take;
          if (this.#remaining === 0) this.#state = DATA_END;
          break;
        }
        case DATA_END: {
          if (end - at < 2) return at;
          if (buffer[at] !== CR || buffer[at + 1] !== LF) throw invalid("missing CRLF after chunk");
          at += 2;
          this.#state = SIZE;
          break;
        }
        case SIZE: {
          const lf = lineFeed(buffer, at, end);
          if (lf < 0) {
            if (end - at > MAX_SIZE_LINE) throw invalid("chunk size line too long");
            return at;
          }
          const size = parseSizeLine(buffer, at, lf);
          at = lf + 1;
          if (size === 0) {
            this.#state = TRAILER;
          } else {
            this.#remaining = size;
            this.#state = DATA;
          }
          break;
        }
        case TRAILER: {
          const lf = lineFeed(buffer, at, end);
          if (lf < 0) {
            if (end - at > MAX_TRAILER_LINE) throw invalid("trailer line too long");
            return at;
          }
          if (lf === at || buffer[lf - 1] !== CR) throw invalid("trailer line ended by a bare LF");
          const empty = lf === at + 1;
          at = lf + 1;
          if (empty) {
            this.#state = DONE;
            return at;
          }
          break;
        }
        default:
          return at;
      }
    }
    return at;
  }
}

function lineFeed(buffer: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) if (buffer[i] === LF) return i;
  return -1;
}

/** `1*HEXDIG [ BWS ";" chunk-ext ] CRLF`, with `lf` the index of the LF. */
function parseSizeLine(buffer: Uint8Array, start: number, lf: number): number {
  const lineEnd = lf - 1;
  if (lineEnd < start || buffer[lineEnd] !== CR) {
    throw invalid("chunk size line ended by a bare LF");
  }
  let size = 0;
  let at = start;
  for (; at < lineEnd; at++) {
    const digit = hexValue(buffer[at]);
    if (digit < 0) break;
    size = size * 16 + digit;
  }
  const digits = at - start;
  if (digits === 0 || digits > MAX_SIZE_DIGITS) throw invalid("bad chunk size");
  while (at < lineEnd && (buffer[at] === SP || buffer[at] === HTAB)) at++;
  if (at < lineEnd) {
    if (buffer[at] !== SEMICOLON) throw invalid("bad chunk size");
    for (; at < lineEnd; at++) {
      const c = buffer[at];
      if (c === CR || c === 0) throw invalid("bad chunk extension");
    }
  }
  return size;
}

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  const lower = byte | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

function invalid(message: string): UpstreamError {
  return new UpstreamError("invalid_response", `invalid response from upstream: ${message}`, true);
}
