/**
 * CPU time a proxy spent, user and system, from /proc/PID/stat (of its
 * working processes, as the RSS sampler counts them): read before and after
 * a measurement, the difference over the requests completed is its CPU per
 * request.
 *
 * @module
 */

import { workingPids } from "./processes.ts";

/** Linux's USER_HZ: the unit of utime and stime in /proc/PID/stat. */
const TICKS_PER_SECOND = 100;

/**
 * Seconds of CPU `pid`'s working processes used so far, every thread included.
 *
 * @example
 * ```ts
 * const before = cpuSeconds(pid);
 * await runLoad();
 * const usPerRequest = (cpuSeconds(pid) - before) * 1e6 / requests;
 * ```
 */
export function cpuSeconds(pid: number): number {
  return workingPids(pid).reduce((sum, one) => sum + ticksOf(one), 0) / TICKS_PER_SECOND;
}

function ticksOf(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name may hold spaces and parentheses: fields count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}
