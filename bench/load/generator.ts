/**
 * The load generator's contract: what one run is asked to do and the numbers
 * it reports, whichever tool (wrk or hey) produced them.
 *
 * @module
 */

import type { Scenario } from "./scenarios.ts";

/** One run of the generator. */
export interface LoadSpec {
  /** Full URL, the scenario's path included. */
  url: string;
  scenario: Scenario;
  connections: number;
  durationS: number;
}

/** Latency percentiles in milliseconds. */
export interface Latencies {
  p50: number;
  p75: number;
  p90: number;
  p95: number;
  p99: number;
}

/** The percentiles every generator reports, as in {@linkcode Latencies}. */
export const PERCENTILES = [50, 75, 90, 95, 99] as const;

/** What one run measured. */
export interface LoadResult {
  /** Completed requests (any status). */
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  /** Bytes received per second (wrk: with headers; hey: bodies only). */
  bytesPerSecond: number;
  latencyMs: Latencies;
  /** Connect, read and write errors. */
  socketErrors: number;
  timeouts: number;
  /** Responses with a status other than 2xx or 3xx. */
  non2xx: number;
  /** The generator's command line and its own output, for the JSON file. */
  command: string[];
  output: string;
}

/** A load generator ready to run. */
export interface LoadGenerator {
  /** With its version, e.g. "wrk 4.1.0". */
  name: string;
  /** The flags every run shares, for the report, e.g. "-t1 -c50". */
  flags(connections: number): string;
  run(spec: LoadSpec): Promise<LoadResult>;
}

/** A request slower than this counts as a timeout. */
export const REQUEST_TIMEOUT_S = 10;

/** How long a run may take before it is killed: its duration plus a margin. */
export function runDeadlineMs(durationS: number): number {
  return (durationS + REQUEST_TIMEOUT_S + 10) * 1000;
}
