/**
 * Recent traffic of one backend: a ring of 5-second slices covering the last
 * five minutes, each with its request and error counts and a latency
 * histogram on a log scale. Recording is an index computation and three
 * increments; percentiles merge the slices of the window asked for.
 *
 * @module
 */

/** Length of one slice. */
export const SLICE_MS = 5_000;
/** Slices kept: five minutes. */
const SLICE_COUNT = 60;
/** Smallest bucket bound, in milliseconds; faster answers land in the first bucket. */
const FIRST_BOUND_MS = 0.05;
/** Each bucket bound is this much larger than the previous one (about 9% relative error). */
const GROWTH = 1.2;
const LOG_GROWTH = Math.log(GROWTH);
/** Buckets up to about 100 s; slower answers land in the last one. */
const BUCKET_COUNT = Math.ceil(Math.log(100_000 / FIRST_BOUND_MS) / LOG_GROWTH) + 1;

/**
 * Latency percentiles in milliseconds, null when the window saw no response.
 *
 * @example
 * ```ts
 * const latency: Percentiles = { p50: 1.2, p95: 4.3, p99: 9.1 };
 * ```
 */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/**
 * One slice of a backend's history, for the dashboard's charts.
 *
 * @example
 * ```ts
 * const point: HistoryPoint = { at: 1767225600000, requests: 42, errors: 1, p50: 1.2, p95: 4.3, p99: 9.1 };
 * ```
 */
export interface HistoryPoint extends Percentiles {
  /** Start of the slice, Unix milliseconds. */
  at: number;
  requests: number;
  /** Responses with a 5xx status. */
  errors: number;
}

/** One slice's counts as plain data: what a copy sent between isolates keeps. */
export interface SliceCounts {
  readonly epoch: number;
  readonly requests: number;
  readonly errors: number;
  readonly latency: Uint32Array;
}

class Slice implements SliceCounts {
  /** Which slice of time this is (`Date.now() / SLICE_MS`, rounded down); -1 when unused. */
  epoch = -1;
  requests = 0;
  errors = 0;
  readonly latency = new Uint32Array(BUCKET_COUNT);

  reset(epoch: number): void {
    this.epoch = epoch;
    this.requests = 0;
    this.errors = 0;
    this.latency.fill(0);
  }
}

/**
 * The last five minutes of one backend's traffic.
 *
 * @example
 * ```ts
 * const window = new LatencyWindow();
 * window.record(Date.now(), 12.5, false);
 * window.percentiles(Date.now(), 60_000); // { p50: 12.8..., p95: ..., p99: ... }
 * ```
 */
export class LatencyWindow {
  /** The ring, indexed by epoch modulo its length; public so that a copy crosses isolates. */
  readonly slices: readonly Slice[] = Array.from({ length: SLICE_COUNT }, () => new Slice());

  /**
   * Counts one response at `now` (Unix ms): its latency in milliseconds
   * (undefined when no backend answered) and whether it was an error.
   */
  record(now: number, latencyMs: number | undefined, error: boolean): void {
    const slice = this.#slice(now);
    slice.requests++;
    if (error) slice.errors++;
    if (latencyMs !== undefined) slice.latency[bucketOf(latencyMs)]++;
  }

  /** p50, p95 and p99 over the last `windowMs` before `now`. */
  percentiles(now: number, windowMs: number): Percentiles {
    const merged = new Uint32Array(BUCKET_COUNT);
    const newest = Math.floor(now / SLICE_MS);
    const oldest = newest - Math.ceil(windowMs / SLICE_MS) + 1;
    for (const slice of this.slices) {
      if (slice.epoch < oldest || slice.epoch > newest) continue;
      for (let i = 0; i < BUCKET_COUNT; i++) merged[i] += slice.latency[i];
    }
    return percentilesOf(merged);
  }

  /** Every slice of the last five minutes before `now`, oldest first; empty slices included. */
  history(now: number): HistoryPoint[] {
    const newest = Math.floor(now / SLICE_MS);
    return Array.from({ length: SLICE_COUNT }, (_, i) => {
      const epoch = newest - SLICE_COUNT + 1 + i;
      const slice = this.slices[epoch % SLICE_COUNT];
      const at = epoch * SLICE_MS;
      if (slice.epoch !== epoch) {
        return { at, requests: 0, errors: 0, p50: null, p95: null, p99: null };
      }
      return {
        at,
        requests: slice.requests,
        errors: slice.errors,
        ...percentilesOf(slice.latency),
      };
    });
  }

  /** Adds what `other` (or its copy from another isolate) counted in the slices both still hold. */
  add(other: { readonly slices: readonly SliceCounts[] }): void {
    for (const theirs of other.slices) {
      if (theirs.epoch < 0) continue;
      const ours = this.slices[theirs.epoch % SLICE_COUNT];
      if (ours.epoch > theirs.epoch) continue;
      if (ours.epoch < theirs.epoch) ours.reset(theirs.epoch);
      ours.requests += theirs.requests;
      ours.errors += theirs.errors;
      for (let i = 0; i < BUCKET_COUNT; i++) ours.latency[i] += theirs.latency[i];
    }
  }

  #slice(now: number): Slice {
    const epoch = Math.floor(now / SLICE_MS);
    const slice = this.slices[epoch % SLICE_COUNT];
    if (slice.epoch !== epoch) slice.reset(epoch);
    return slice;
  }
}

function bucketOf(latencyMs: number): number {
  if (!(latencyMs > FIRST_BOUND_MS)) return 0;
  return Math.min(BUCKET_COUNT - 1, Math.ceil(Math.log(latencyMs / FIRST_BOUND_MS) / LOG_GROWTH));
}

/** The upper bound of bucket `index`, in milliseconds, to three significant digits. */
function boundOf(index: number): number {
  return Number((FIRST_BOUND_MS * GROWTH ** index).toPrecision(3));
}

function percentilesOf(counts: Uint32Array): Percentiles {
  let total = 0;
  for (const count of counts) total += count;
  if (total === 0) return { p50: null, p95: null, p99: null };
  const at = (quantile: number) => {
    const rank = Math.ceil(quantile * total);
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i];
      if (seen >= rank) return boundOf(i);
    }
    return boundOf(counts.length - 1);
  };
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}
