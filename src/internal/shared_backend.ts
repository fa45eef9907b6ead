/**
 * A backend whose run-time state (health, drain, ejection, slow start and the
 * health-check streaks) lives in a SharedArrayBuffer, so that every worker
 * isolate holding the same buffer sees one state: a probe in one isolate
 * takes the backend out of rotation in all of them.
 *
 * @module
 */

import { DEFAULT_POOL } from "../config/types.ts";
import { backendId } from "../pools/backend_id.ts";
import type { Backend, HealthStreak, TransportName } from "../types.ts";

/** The config fields a backend is made of. */
export interface BackendSettings {
  url: string;
  /** The pool it belongs to; default `default`. */
  pool?: string;
  /** The DNS name discovery found it under. */
  dns?: string;
  weight: number;
  transport: TransportName;
  slow_start?: number;
}

// Int32 slots.
const HEALTHY = 0;
const DRAINING = 1;
const SUCCESSES = 2;
const FAILURES = 3;
const PASSIVE_FAILURES = 4;
const EJECTIONS = 5;
const TRAFFIC_FAILURES = 6;
const IN_FLIGHT = 7;
const INT_SLOTS = 8;
// BigInt64 slots after the Int32 ones: times in Unix microseconds, 0 for "never".
const EJECTED_UNTIL = 0;
const JOINED_AT = 1;
const TIMES_OFFSET = 8 * Math.ceil((INT_SLOTS * 4) / 8);
const STATE_BYTES = TIMES_OFFSET + 2 * 8;

/**
 * The state of a new backend: healthy, in rotation, its slow start counted
 * from `joinedAt` (a `performance.now()` time; `-Infinity` for none).
 *
 * @example
 * ```ts
 * const backend = new SharedBackend(settings, newBackendState(performance.now()));
 * ```
 */
export function newBackendState(joinedAt: number): SharedArrayBuffer {
  const state = new SharedArrayBuffer(STATE_BYTES);
  new Int32Array(state)[HEALTHY] = 1;
  new BigInt64Array(state, TIMES_OFFSET)[JOINED_AT] = toShared(joinedAt);
  return state;
}

/**
 * A {@linkcode Backend} over a shared state buffer. Each isolate builds its
 * own object for the same buffer; config fields (weight, transport, slow
 * start) are per object, as every isolate applies the same config.
 *
 * Times cross isolates as Unix microseconds, because each isolate's
 * `performance.now()` counts from its own start; the getters and setters
 * convert to and from this isolate's `performance.now()`. Counters are read
 * and written with Atomics; an increment is a load and a store, so two
 * isolates failing at the same instant may count one failure, which delays a
 * threshold by one.
 *
 * @example
 * ```ts
 * const primary = new SharedBackend(settings, newBackendState(-Infinity));
 * const inWorker = new SharedBackend(settings, primary.state);
 * primary.healthy = false;
 * inWorker.healthy; // false
 * ```
 */
export class SharedBackend implements Backend {
  readonly id: string;
  readonly pool: string;
  readonly url: URL;
  readonly dns: string | undefined;
  weight: number;
  transport: TransportName;
  slowStart: number;
  readonly streak: HealthStreak;
  readonly #ints: Int32Array;
  readonly #times: BigInt64Array;

  constructor(settings: BackendSettings, readonly state: SharedArrayBuffer) {
    this.pool = settings.pool ?? DEFAULT_POOL;
    this.id = backendId(this.pool, settings.url);
    this.url = new URL(settings.url);
    this.dns = settings.dns;
    this.weight = settings.weight;
    this.transport = settings.transport;
    this.slowStart = settings.slow_start ?? 0;
    this.#ints = new Int32Array(state, 0, INT_SLOTS);
    this.#times = new BigInt64Array(state, TIMES_OFFSET, 2);
    this.streak = new SharedStreak(this.#ints);
  }

  /** Requests this backend is serving now, in every isolate. */
  get inFlight(): number {
    return Atomics.load(this.#ints, IN_FLIGHT);
  }

  /** Counts one more request in flight until the returned handle is disposed (once). */
  occupy(): Disposable {
    const ints = this.#ints;
    Atomics.add(ints, IN_FLIGHT, 1);
    let held = true;
    return {
      [Symbol.dispose]() {
        if (!held) return;
        held = false;
        Atomics.sub(ints, IN_FLIGHT, 1);
      },
    };
  }

  get healthy(): boolean {
    return Atomics.load(this.#ints, HEALTHY) === 1;
  }
  set healthy(value: boolean) {
    Atomics.store(this.#ints, HEALTHY, value ? 1 : 0);
  }

  get draining(): boolean {
    return Atomics.load(this.#ints, DRAINING) === 1;
  }
  set draining(value: boolean) {
    Atomics.store(this.#ints, DRAINING, value ? 1 : 0);
  }

  get ejectedUntil(): number {
    return fromShared(Atomics.load(this.#times, EJECTED_UNTIL), 0);
  }
  set ejectedUntil(value: number) {
    Atomics.store(this.#times, EJECTED_UNTIL, toShared(value));
  }

  get joinedAt(): number {
    return fromShared(Atomics.load(this.#times, JOINED_AT), -Infinity);
  }
  set joinedAt(value: number) {
    Atomics.store(this.#times, JOINED_AT, toShared(value));
  }
}

class SharedStreak implements HealthStreak {
  constructor(readonly ints: Int32Array) {}

  get successes(): number {
    return Atomics.load(this.ints, SUCCESSES);
  }
  set successes(value: number) {
    Atomics.store(this.ints, SUCCESSES, value);
  }
  get failures(): number {
    return Atomics.load(this.ints, FAILURES);
  }
  set failures(value: number) {
    Atomics.store(this.ints, FAILURES, value);
  }
  get passiveFailures(): number {
    return Atomics.load(this.ints, PASSIVE_FAILURES);
  }
  set passiveFailures(value: number) {
    Atomics.store(this.ints, PASSIVE_FAILURES, value);
  }
  get trafficFailures(): number {
    return Atomics.load(this.ints, TRAFFIC_FAILURES);
  }
  set trafficFailures(value: number) {
    Atomics.store(this.ints, TRAFFIC_FAILURES, value);
  }
  get ejections(): number {
    return Atomics.load(this.ints, EJECTIONS);
  }
  set ejections(value: number) {
    Atomics.store(this.ints, EJECTIONS, value);
  }
}

/** A `performance.now()` time as Unix microseconds; 0 stands for 0 and -Infinity. */
function toShared(time: number): bigint {
  if (time === 0 || time === -Infinity) return 0n;
  return BigInt(Math.round((performance.timeOrigin + time) * 1000));
}

function fromShared(micros: bigint, never: number): number {
  return micros === 0n ? never : Number(micros) / 1000 - performance.timeOrigin;
}
