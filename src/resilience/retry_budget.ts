/**
 * Envoy's retry budget over a sliding window: retries stay under a percent of
 * the requests of the last 10 seconds, plus a few always allowed, so that a
 * failing fleet is not hammered with retries.
 *
 * @module
 */

/** The window the budget covers. */
export const BUDGET_WINDOW_MS = 10_000;
/** The window moves on in steps this long. */
const SLOT_MS = 1000;
const SLOTS = BUDGET_WINDOW_MS / SLOT_MS;

/**
 * Counts requests and retries in one-second slots over the last 10 seconds.
 *
 * @example
 * ```ts
 * const budget = new RetryBudget({ budget: 20, min: 10 });
 * budget.recordRequest();
 * if (budget.tryRetry()) {
 *   // send the request once more
 * }
 * ```
 */
export class RetryBudget {
  readonly #requests = new Float64Array(SLOTS);
  readonly #retries = new Float64Array(SLOTS);
  /** The slot number (time / SLOT_MS) that index `slot % SLOTS` holds now. */
  #slot = 0;

  constructor(
    /** `budget`: percent of requests that may be retries; `min`: retries always allowed. */
    public options: { budget: number; min: number },
    readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** A request arrived. */
  recordRequest(): void {
    this.#requests[this.#advance()]++;
  }

  /** Whether one more retry fits the budget now; when it does, it is counted. */
  tryRetry(): boolean {
    const index = this.#advance();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLOTS; i++) {
      requests += this.#requests[i];
      retries += this.#retries[i];
    }
    if (retries >= requests * this.options.budget / 100 + this.options.min) return false;
    this.#retries[index]++;
    return true;
  }

  /** Clears the slots that fell out of the window; returns the current slot's index. */
  #advance(): number {
    const slot = Math.floor(this.now() / SLOT_MS);
    const stale = Math.min(slot - this.#slot, SLOTS);
    for (let i = 1; i <= stale; i++) {
      const index = (this.#slot + i) % SLOTS;
      this.#requests[index] = 0;
      this.#retries[index] = 0;
    }
    this.#slot = slot;
    return slot % SLOTS;
  }
}
