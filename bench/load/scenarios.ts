/**
 * The traffic shapes the load benchmark measures: what the client sends and
 * what every backend answers.
 *
 * @module
 */

/** The scenario names, in the order the report shows them. */
export const SCENARIO_NAMES = ["small", "large", "post"] as const;

/** One of {@linkcode SCENARIO_NAMES}. */
export type ScenarioName = typeof SCENARIO_NAMES[number];

/** One request shape and the response every backend gives it. */
export interface Scenario {
  name: ScenarioName;
  method: "GET" | "POST";
  /** The same path on every backend. */
  path: string;
  /** Bytes of the request body (0: none). */
  requestBytes: number;
  /** Bytes of the response body. */
  responseBytes: number;
  /** What the report compares with HAProxy: requests or bytes per second. */
  headline: "req/s" | "MiB/s";
}

/** 16 bytes: the body of `small` and of the `post` response. */
export const SMALL_BODY = "0123456789abcdef";

const MIB = 1024 * 1024;

/** Every scenario by name. */
export const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  small: {
    name: "small",
    method: "GET",
    path: "/small",
    requestBytes: 0,
    responseBytes: SMALL_BODY.length,
    headline: "req/s",
  },
  large: {
    name: "large",
    method: "GET",
    path: "/large",
    requestBytes: 0,
    responseBytes: MIB,
    headline: "MiB/s",
  },
  post: {
    name: "post",
    method: "POST",
    path: "/post",
    requestBytes: 64 * 1024,
    responseBytes: SMALL_BODY.length,
    headline: "req/s",
  },
};

/** The `large` body: 1 MiB of a repeated printable pattern. */
export function largeBody(): Uint8Array<ArrayBuffer> {
  const body = new Uint8Array(SCENARIOS.large.responseBytes);
  for (let i = 0; i < body.length; i++) body[i] = 0x61 + i % 26;
  return body;
}
