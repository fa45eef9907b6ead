/**
 * Peak resident memory of a proxy under load, sampled from /proc every 200 ms.
 * A process with children (nginx's master) is measured by its children (the
 * worker doing the work); any other process by itself. Deno reads /proc
 * only with --allow-all, which is why `deno task bench:load` has it.
 *
 * @module
 */

import { workingPids } from "./processes.ts";

const SAMPLE_INTERVAL_MS = 200;

/**
 * Samples the RSS of `pid` (or of its children) until disposed.
 *
 * @example
 * ```ts
 * using sampler = new RssSampler(pid);
 * await runLoad();
 * const peakKiB = sampler.peakKiB();
 * ```
 */
export class RssSampler implements Disposable {
  #peakKiB = 0;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(readonly pid: number) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), SAMPLE_INTERVAL_MS);
  }

  /** The highest sample so far in KiB, taking one more first. */
  peakKiB(): number {
    this.#sample();
    return this.#peakKiB;
  }

  /** Stops sampling. */
  [Symbol.dispose](): void {
    clearInterval(this.#timer);
  }

  #sample(): void {
    this.#peakKiB = Math.max(this.#peakKiB, rssOf(this.pid));
  }
}

/** The RSS of `pid`'s working processes (see the module comment) now, in KiB. */
export function rssOf(pid: number): number {
  return workingPids(pid).reduce((sum, one) => sum + rssKiB(one), 0);
}

/** VmRSS of one process in KiB, 0 once it is gone. */
function rssKiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}
