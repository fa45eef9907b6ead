/**
 * Request ids: a valid incoming `X-Request-Id` is kept, anything else is
 * replaced by a new id, unique within the process and, through a random
 * prefix, across processes.
 *
 * @module
 */

/** 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Eight random hex digits, chosen once per process. */
const PREFIX = Array.from(crypto.getRandomValues(new Uint8Array(4)))
  .map((byte) => byte.toString(16).padStart(2, "0"))
  .join("");
let counter = 0;

/**
 * The id of a request: `incoming` when it is a valid request id, else a new
 * one such as `9f86d081-1k3`. Cheaper than a UUID: a counter behind a random
 * prefix.
 *
 * @example
 * ```ts
 * requestId("abc-123"); // "abc-123"
 * requestId("bad id!"); // a new id
 * requestId(null); // a new id
 * ```
 */
export function requestId(incoming: string | null): string {
  if (incoming !== null && VALID_REQUEST_ID.test(incoming)) return incoming;
  return `${PREFIX}-${(++counter).toString(36)}`;
}
