/**
 * Serialises the head of an HTTP/1.1 request into bytes and decides how its
 * body is framed. Refuses any method, target or header that would let a value
 * split the message (CR, LF, NUL), before a single byte goes out.
 *
 * @module
 */

/**
 * How the request body travels: absent, with the given Content-Length, or chunked.
 *
 * @example
 * ```ts
 * const framing: RequestBodyFraming = "chunked";
 * ```
 */
export type RequestBodyFraming = "none" | "length" | "chunked";

/**
 * A request head ready to write, and the framing its body must follow.
 *
 * @example
 * ```ts
 * const head: RequestHead = encodeRequestHead("GET", "/", new Headers(), false, new Uint8Array(64));
 * head.framing; // "none"
 * ```
 */
export interface RequestHead {
  /** The whole head, request line to the empty line. */
  bytes: Uint8Array;
  framing: RequestBodyFraming;
  /** The declared body length when `framing` is `"length"`, else 0. */
  contentLength: number;
  /** Whether the request asked to close the connection after the exchange. */
  close: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^[0-9]{1,15}$/;
const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
const OVERFLOW = new Error("request head does not fit");
const SPACE = bytes(" ");
const VERSION_CRLF = bytes(" HTTP/1.1\r\n");
const COLON_SPACE = bytes(": ");
const CRLF = bytes("\r\n");
const CHUNKED_HEADER = bytes("transfer-encoding: chunked\r\n");

/**
 * Encodes `METHOD TARGET HTTP/1.1`, the given headers and the framing header
 * into `scratch` (or a larger buffer when it does not fit). A `transfer-encoding`
 * header in `headers` is ignored: the body framing is this function's call.
 * Throws `TypeError` on a forbidden character, or a Content-Length that is not a
 * number or that promises bytes while there is no body.
 *
 * @example
 * ```ts
 * const head = encodeRequestHead("GET", "/", new Headers({ host: "a" }), false, new Uint8Array(1024));
 * new TextDecoder().decode(head.bytes); // "GET / HTTP/1.1\r\nhost: a\r\n\r\n"
 * ```
 */
export function encodeRequestHead(
  method: string,
  target: string,
  headers: Iterable<[string, string]>,
  hasBody: boolean,
  scratch: Uint8Array,
): RequestHead {
  if (!TOKEN.test(method)) throw new TypeError("request method is not a token");
  checkTarget(target);
  const head: RequestHead = { bytes: scratch, framing: "none", contentLength: 0, close: false };
  let buffer = scratch;
  for (;;) {
    try {
      head.bytes = buffer.subarray(0, encodeInto(buffer, method, target, headers, hasBody, head));
      return head;
    } catch (error) {
      if (error !== OVERFLOW) throw error;
      buffer = new Uint8Array(buffer.byteLength * 2);
    }
  }
}

function checkTarget(target: string): void {
  if (target.length === 0) throw new TypeError("request target is empty");
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0xff) {
      throw new TypeError("request target contains a forbidden character");
    }
  }
}

function encodeInto(
  buffer: Uint8Array,
  method: string,
  target: string,
  headers: Iterable<[string, string]>,
  hasBody: boolean,
  head: RequestHead,
): number {
  let contentLength = -1;
  let close = false;
  let at = put(buffer, 0, method);
  at = putBytes(buffer, at, SPACE);
  at = put(buffer, at, target);
  at = putBytes(buffer, at, VERSION_CRLF);
  for (const [name, value] of headers) {
    if (name === "transfer-encoding") continue;
    if (name === "content-length") {
      if (!DIGITS.test(value)) throw new TypeError("request content-length is not a number");
      contentLength = Number(value);
    } else if (name === "connection" && CLOSE_TOKEN.test(value)) {
      close = true;
    }
    at = put(buffer, at, name);
    at = putBytes(buffer, at, COLON_SPACE);
    at = put(buffer, at, value);
    at = putBytes(buffer, at, CRLF);
  }
  if (!hasBody) {
    if (contentLength > 0) throw new TypeError("request content-length promises a missing body");
    head.framing = "none";
  } else if (contentLength === 0) {
    head.framing = "none";
  } else if (contentLength > 0) {
    head.framing = "length";
  } else {
    head.framing = "chunked";
    at = putBytes(buffer, at, CHUNKED_HEADER);
  }
  head.contentLength = contentLength > 0 ? contentLength : 0;
  head.close = close;
  return putBytes(buffer, at, CRLF);
}

/** Writes `text` as Latin-1 at `at`, refusing CR, LF, NUL and code points above 0xFF. */
function put(buffer: Uint8Array, at: number, text: string): number {
  const end = at + text.length;
  if (end > buffer.byteLength) throw OVERFLOW;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 || c === 10 || c === 0 || c > 0xff) {
      throw new TypeError(
        "request head contains a forbidden character (CR, LF, NUL or non-Latin-1)",
      );
    }
    buffer[at + i] = c;
  }
  return end;
}

function putBytes(buffer: Uint8Array, at: number, bytes: Uint8Array): number {
  const end = at + bytes.byteLength;
  if (end > buffer.byteLength) throw OVERFLOW;
  buffer.set(bytes, at);
  return end;
}

function bytes(ascii: string): Uint8Array {
  return new TextEncoder().encode(ascii);
}
