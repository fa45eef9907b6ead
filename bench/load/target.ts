/**
 * What a setup starts for one measurement: the address the load generator
 * drives, and the process whose memory is reported.
 *
 * @module
 */

import type { ManagedProcess, Supervisor } from "./processes.ts";

/** A running target. */
export interface Target {
  /** Where the generator sends requests, e.g. `http://127.0.0.1:40123`. */
  origin: string;
  /** The proxy process, stopped after the measurement; none when the backend is hit directly. */
  process?: ManagedProcess;
}

/** What starting a target needs. */
export interface TargetContext {
  supervisor: Supervisor;
  /** The benchmark's temp dir, for generated configs and logs. */
  dir: string;
  backendPorts: number[];
}
