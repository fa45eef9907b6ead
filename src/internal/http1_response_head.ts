/**
 * Finds and parses the head of an HTTP/1.x response in a byte buffer: status
 * line, header fields and the framing headers, refusing anything that could
 * let the two ends disagree on where the body stops.
 *
 * @module
 */

import { type HeaderPairs, UpstreamError } from "../types.ts";

/** A lowercased header name, as RFC 9110 defines a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * A parsed response head, with what its framing headers said.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n");
 * const head: ResponseHead = parseResponseHead(bytes, 0, bytes.length);
 * ```
 */
export interface ResponseHead {
  status: number;
  statusText: string;
  /** The `x` of `HTTP/1.x`. */
  minorVersion: number;
  /** Every header but Transfer-Encoding; repeated identical Content-Lengths are merged. */
  headers: HeaderPairs;
  /** The body length Content-Length declared, or -1 without one. */
  contentLength: number;
  /** Whether Transfer-Encoding is `chunked`. */
  chunked: boolean;
  /** Whether Connection lists `close`. */
  close: boolean;
  /** Whether Connection lists `keep-alive`. */
  keepAlive: boolean;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COMMA = 44;
const COLON = 58;
const HTTP_1_ = [72, 84, 84, 80, 47, 49, 46]; // "HTTP/1."
const CONTENT_LENGTH = bytesOf("content-length");
const TRANSFER_ENCODING = bytesOf("transfer-encoding");
const CONNECTION = bytesOf("connection");
const CHUNKED = bytesOf("chunked");
const CLOSE = bytesOf("close");
const KEEP_ALIVE = bytesOf("keep-alive");
/** Bytes per `String.fromCharCode` call: far below V8's argument limit. */
const LATIN1_SLICE = 8192;

/**
 * Looks for the empty line ending a head that starts at `start`, scanning from
 * `from` (bytes before it were scanned already) to `end`. Returns the index
 * just past it, or -1 when more bytes are needed. Throws `invalid_response` on a
 * line ended by a bare LF.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n");
 * findHeadEnd(bytes, 0, 0, bytes.length); // 27
 * ```
 */
export function findHeadEnd(buffer: Uint8Array, start: number, from: number, end: number): number {
  const view = buffer.subarray(0, end);
  let at = from;
  while ((at = view.indexOf(LF, at)) !== -1) {
    if (at === start || view[at - 1] !== CR) throw invalid("line ended by a bare LF");
    if (at - 3 >= start && view[at - 2] === LF && view[at - 3] === CR) return at + 1;
    at++;
  }
  return -1;
}

/**
 * Parses the head in `buffer[start, headEnd)`, as found by {@linkcode findHeadEnd}.
 * For an interim (1xx) response only the status line is read. Throws
 * `UpstreamError("invalid_response")` on a malformed status line or header, a
 * status outside 100–599, or framing headers that contradict each other.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
 * const head = parseResponseHead(bytes, 0, bytes.length);
 * head.status; // 200
 * head.contentLength; // 2
 * ```
 */
export function parseResponseHead(
  buffer: Uint8Array,
  start: number,
  headEnd: number,
): ResponseHead {
  const view = buffer.subarray(0, headEnd);
  let lineEnd = view.indexOf(LF, start) - 1;
  // One string of the whole head, byte for byte: names and values are slices of it.
  const text = latin1(view, start, headEnd);
  const head = parseStatusLine(view, start, lineEnd, text);
  if (head.status < 200) return head;

  let transferEncoding = false;
  let transferCodings = 0;
  let chunkedCount = 0;
  let connection = 0;
  for (let at = lineEnd + 2; at < headEnd - 2; at = lineEnd + 2) {
    lineEnd = view.indexOf(LF, at) - 1;
    const first = view[at];
    if (first === SP || first === HTAB) throw invalid("obsolete header line folding");
    const colon = indexOf(view, COLON, at, lineEnd);
    if (colon === at || colon === lineEnd) throw invalid("malformed header line");
    let valueStart = colon + 1;
    let valueEnd = lineEnd;
    while (valueStart < valueEnd && isWhitespace(view[valueStart])) valueStart++;
    while (valueEnd > valueStart && isWhitespace(view[valueEnd - 1])) valueEnd--;

    if (equalsIgnoreCase(view, at, colon, CONTENT_LENGTH)) {
      const length = parseContentLength(view, valueStart, valueEnd);
      if (length < 0) throw invalid("malformed content-length");
      if (head.contentLength >= 0 && head.contentLength !== length) {
        throw invalid("conflicting content-length values");
      }
      head.contentLength = length;
      continue;
    }
    if (equalsIgnoreCase(view, at, colon, TRANSFER_ENCODING)) {
      transferEncoding = true;
      for (let i = valueStart; i < valueEnd;) {
        const elementEnd = indexOf(view, COMMA, i, valueEnd);
        let a = i;
        let b = elementEnd;
        while (a < b && isWhitespace(view[a])) a++;
        while (b > a && isWhitespace(view[b - 1])) b--;
        if (a < b) {
          transferCodings++;
          if (equalsIgnoreCase(view, a, b, CHUNKED)) chunkedCount++;
        }
        i = elementEnd + 1;
      }
      continue;
    }
    if (equalsIgnoreCase(view, at, colon, CONNECTION)) {
      connection |= connectionOptions(view, valueStart, valueEnd);
    }
    const name = text.slice(at - start, colon - start).toLowerCase();
    if (!TOKEN.test(name) || hasForbiddenByte(view, valueStart, valueEnd)) {
      throw invalid("invalid header field");
    }
    head.headers.push([name, text.slice(valueStart - start, valueEnd - start)]);
  }

  if (transferEncoding) {
    // Only a lone `chunked` is accepted: other codings would reach the client
    // still encoded once the proxy drops this hop-by-hop header.
    if (transferCodings !== 1 || chunkedCount !== 1) throw invalid("unsupported transfer-encoding");
    if (head.contentLength >= 0) throw invalid("both content-length and transfer-encoding");
    if (head.minorVersion === 0) throw invalid("transfer-encoding in an HTTP/1.0 response");
    head.chunked = true;
  }
  if (head.contentLength >= 0) head.headers.push(["content-length", String(head.contentLength)]);
  head.close = (connection & 1) !== 0;
  head.keepAlive = (connection & 2) !== 0;
  return head;
}

function parseStatusLine(
  view: Uint8Array,
  start: number,
  lineEnd: number,
  text: string,
): ResponseHead {
  // HTTP/1.x SP 3DIGIT [ SP reason-phrase ]
  if (lineEnd - start < 12) throw invalid("malformed status line");
  for (let i = 0; i < 7; i++) {
    if (view[start + i] !== HTTP_1_[i]) throw invalid("malformed status line");
  }
  const minor = view[start + 7] - 48;
  const d1 = view[start + 9] - 48;
  const d2 = view[start + 10] - 48;
  const d3 = view[start + 11] - 48;
  if (
    !isDigit(minor) || view[start + 8] !== SP || !isDigit(d1) || !isDigit(d2) || !isDigit(d3) ||
    (lineEnd > start + 12 && view[start + 12] !== SP)
  ) {
    throw invalid("malformed status line");
  }
  const status = d1 * 100 + d2 * 10 + d3;
  if (status < 100 || status > 599) throw invalid(`status ${status} out of range`);
  let statusText = "";
  if (lineEnd > start + 13) {
    for (let i = start + 13; i < lineEnd; i++) {
      const c = view[i];
      if ((c < SP && c !== HTAB) || c === 0x7f) throw invalid("malformed reason phrase");
    }
    statusText = text.slice(13, lineEnd - start);
  }
  return {
    status,
    statusText,
    minorVersion: minor,
    headers: [],
    contentLength: -1,
    chunked: false,
    close: false,
    keepAlive: false,
  };
}

/** A Content-Length value, possibly a list of identical numbers; -1 when malformed. */
function parseContentLength(view: Uint8Array, start: number, end: number): number {
  let result = -1;
  for (let i = start; i <= end;) {
    const elementEnd = indexOf(view, COMMA, i, end);
    let a = i;
    let b = elementEnd;
    while (a < b && isWhitespace(view[a])) a++;
    while (b > a && isWhitespace(view[b - 1])) b--;
    if (a === b || b - a > 15) return -1;
    let value = 0;
    for (let j = a; j < b; j++) {
      const digit = view[j] - 48;
      if (!isDigit(digit)) return -1;
      value = value * 10 + digit;
    }
    if (result >= 0 && value !== result) return -1;
    result = value;
    i = elementEnd + 1;
  }
  return result;
}

/** Bit 1: `close` listed, bit 2: `keep-alive` listed. */
function connectionOptions(view: Uint8Array, start: number, end: number): number {
  let flags = 0;
  for (let i = start; i < end;) {
    const elementEnd = indexOf(view, COMMA, i, end);
    let a = i;
    let b = elementEnd;
    while (a < b && isWhitespace(view[a])) a++;
    while (b > a && isWhitespace(view[b - 1])) b--;
    if (equalsIgnoreCase(view, a, b, CLOSE)) flags |= 1;
    else if (equalsIgnoreCase(view, a, b, KEEP_ALIVE)) flags |= 2;
    i = elementEnd + 1;
  }
  return flags;
}

/** Index of `byte` in `view[start, end)`, or `end`. */
function indexOf(view: Uint8Array, byte: number, start: number, end: number): number {
  for (let i = start; i < end; i++) if (view[i] === byte) return i;
  return end;
}

/** Compares `view[start, end)` with lowercase ASCII `lower`, ignoring the case of letters. */
function equalsIgnoreCase(
  view: Uint8Array,
  start: number,
  end: number,
  lower: Uint8Array,
): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = view[start + i];
    const l = lower[i];
    if (c !== l && (l < 97 || l > 122 || c !== l - 32)) return false;
  }
  return true;
}

/** Decodes bytes one to one into UTF-16 code units, the way `Headers` stores them. */
function latin1(view: Uint8Array, start: number, end: number): string {
  if (end - start <= LATIN1_SLICE) return fromCharCodes(view.subarray(start, end));
  let text = "";
  for (let at = start; at < end; at += LATIN1_SLICE) {
    text += fromCharCodes(view.subarray(at, Math.min(at + LATIN1_SLICE, end)));
  }
  return text;
}

function fromCharCodes(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

function isWhitespace(byte: number): boolean {
  return byte === SP || byte === HTAB;
}

function isDigit(value: number): boolean {
  return value >= 0 && value <= 9;
}

function bytesOf(ascii: string): Uint8Array {
  return new TextEncoder().encode(ascii);
}

function invalid(message: string): UpstreamError {
  return new UpstreamError("invalid_response", `invalid response from upstream: ${message}`, true);
}

/** NUL and a bare CR may not stand in a field value. */
function hasForbiddenByte(view: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (view[i] === 0 || view[i] === 13) return true;
  }
  return false;
}
