/**
 * `limits.max_in_flight` per backend: beyond it, a request waits in a queue of
 * at most `limits.queue` for up to `timeouts.queue`, in arrival order.
 *
 * @module
 */

import type { Backend } from "../types.ts";

/**
 * The limiter's settings; `maxInFlight` 0 means no limit.
 *
 * @example
 * ```ts
 * const options: LimiterOptions = { maxInFlight: 100, queue: 100, queueTimeoutMs: 1000 };
 * ```
 */
export interface LimiterOptions {
  maxInFlight: number;
  queue: number;
  queueTimeoutMs: number;
}

/**
 * A backend's in-flight slot, given back when disposed (once; later disposals
 * do nothing). It also counts the request in the backend's `inFlight`.
 *
 * @example
 * ```ts
 * using slot = await limiter.admit(backend, signal) as Slot;
 * ```
 */
export interface Slot extends Disposable {}

interface Waiter {
  resolve(slot: Slot | string): void;
  timer: ReturnType<typeof setTimeout>;
  signal: AbortSignal;
  onAbort: () => void;
}

interface Occupancy {
  active: number;
  waiting: Waiter[];
}

/**
 * Hands out in-flight slots per backend.
 *
 * @example
 * ```ts
 * const limiter = new BackendLimiter({ maxInFlight: 2, queue: 10, queueTimeoutMs: 1000 });
 * let slot = limiter.admit(backend, ctx);
 * if (slot instanceof Promise) slot = await slot;
 * if (typeof slot === "string") return errorResponse(503, slot);
 * ctx.own(slot);
 * ```
 */
export class BackendLimiter {
  readonly #occupancy = new WeakMap<Backend, Occupancy>();

  constructor(public options: LimiterOptions) {}

  /**
   * A slot on `backend` now, or a promise of one once a slot frees up; the
   * promise resolves instead to why not (a one-line reason) when the queue is
   * full, the wait took longer than `queueTimeoutMs` or the waiting client's
   * `signal` aborted. `client.signal` is read only when the request must wait.
   */
  admit(backend: Backend, client: { readonly signal: AbortSignal }): Slot | Promise<Slot | string> {
    const { maxInFlight, queue, queueTimeoutMs } = this.options;
    if (maxInFlight === 0) return backend.occupy();
    const occupancy = this.#of(backend);
    if (occupancy.active < maxInFlight) {
      occupancy.active++;
      return this.#slot(occupancy, backend);
    }
    if (occupancy.waiting.length >= queue) {
      return Promise.resolve("the backend is at its limit and its queue is full");
    }
    const signal = client.signal;
    return new Promise<Slot | string>((resolve) => {
      const leave = (reason: string) => {
        const index = occupancy.waiting.indexOf(waiter);
        if (index >= 0) occupancy.waiting.splice(index, 1);
        clearTimeout(waiter.timer);
        signal.removeEventListener("abort", waiter.onAbort);
        resolve(reason);
      };
      const waiter: Waiter = {
        resolve,
        signal,
        timer: setTimeout(
          () => leave(`no free slot on the backend within ${queueTimeoutMs} ms`),
          queueTimeoutMs,
        ),
        onAbort: () => leave("the client went away"),
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      occupancy.waiting.push(waiter);
    });
  }

  /** Requests holding a slot on `backend` and requests waiting for one. */
  occupancy(backend: Backend): { active: number; waiting: number } {
    const occupancy = this.#occupancy.get(backend);
    return { active: occupancy?.active ?? 0, waiting: occupancy?.waiting.length ?? 0 };
  }

  #of(backend: Backend): Occupancy {
    let occupancy = this.#occupancy.get(backend);
    if (occupancy === undefined) {
      occupancy = { active: 0, waiting: [] };
      this.#occupancy.set(backend, occupancy);
    }
    return occupancy;
  }

  /** A slot that, given back, goes to the first waiter or frees up. */
  #slot(occupancy: Occupancy, backend: Backend): Slot {
    let held = true;
    const load = backend.occupy();
    return {
      [Symbol.dispose]: () => {
        if (!held) return;
        held = false;
        load[Symbol.dispose]();
        const next = occupancy.waiting.shift();
        if (next === undefined) {
          occupancy.active--;
          return;
        }
        clearTimeout(next.timer);
        next.signal.removeEventListener("abort", next.onAbort);
        next.resolve(this.#slot(occupancy, backend));
      },
    };
  }
}
