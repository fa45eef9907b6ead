/**
 * Deadlines of one fixed duration behind a single timer. Arming and clearing
 * a timer per request costs more than the rest of a small exchange; since all
 * deadlines here share one duration, they expire in the order they were set,
 * so a linked list and one timer for its head are enough.
 *
 * @module
 */

/** One pending deadline; pass it back to {@linkcode DeadlineQueue.cancel}. */
export interface Deadline<T> {
  readonly item: T;
  readonly at: number;
  previous: Deadline<T> | null;
  next: Deadline<T> | null;
  /** Whether the deadline is still in the queue. */
  pending: boolean;
}

/**
 * Calls `expire(item)` for every item whose deadline, `durationMs` after it
 * was set, passed before it was cancelled.
 *
 * @example
 * ```ts
 * const timeouts = new DeadlineQueue<string>(30_000, (name) => console.log(`${name} timed out`));
 * const deadline = timeouts.set("request 1");
 * timeouts.cancel(deadline); // it finished in time
 * timeouts.close();
 * ```
 */
export class DeadlineQueue<T> {
  #head: Deadline<T> | null = null;
  #tail: Deadline<T> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onTimer = () => this.#expireDue();

  constructor(readonly durationMs: number, readonly expire: (item: T) => void) {}

  /** Starts the clock for `item`. */
  set(item: T): Deadline<T> {
    const deadline: Deadline<T> = {
      item,
      at: performance.now() + this.durationMs,
      previous: this.#tail,
      next: null,
      pending: true,
    };
    if (this.#tail === null) this.#head = deadline;
    else this.#tail.next = deadline;
    this.#tail = deadline;
    if (this.#timer === undefined) this.#arm(this.durationMs);
    return deadline;
  }

  /** Stops the clock for one item; a no-op once it expired or was cancelled. */
  cancel(deadline: Deadline<T>): void {
    if (!deadline.pending) return;
    deadline.pending = false;
    if (deadline.previous === null) this.#head = deadline.next;
    else deadline.previous.next = deadline.next;
    if (deadline.next === null) this.#tail = deadline.previous;
    else deadline.next.previous = deadline.previous;
    deadline.previous = deadline.next = null;
  }

  /** Stops the timer; pending deadlines never expire. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#head !== null) this.cancel(this.#head);
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(this.#onTimer, Math.max(0, delayMs));
  }

  // The timer stays armed while the queue empties and refills: it fires at
  // most once per duration and re-arms only for what is still pending.
  #expireDue(): void {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#head !== null && this.#head.at <= now) {
      const due = this.#head;
      this.cancel(due);
      this.expire(due.item);
    }
    if (this.#head !== null) this.#arm(this.#head.at - now);
  }
}
