/**
 * A pool of fixed-size byte buffers, so reading upstream responses does not
 * allocate a fresh buffer per request.
 *
 * @module
 */

/** Default size of a pooled buffer: room for any sane response head. */
export const BUFFER_SIZE = 64 * 1024;

/**
 * Hands out reusable buffers of one size and keeps at most `maxIdle` of them.
 *
 * @example
 * ```ts
 * const pool = new BufferPool(16 * 1024, 8);
 * const buffer = pool.take();
 * pool.give(buffer);
 * ```
 */
export class BufferPool {
  readonly #idle: Uint8Array[] = [];

  constructor(readonly size: number = BUFFER_SIZE, readonly maxIdle: number = 256) {}

  /** A buffer of `size` bytes, reused when one is idle. */
  take(): Uint8Array {
    return this.#idle.pop() ?? new Uint8Array(this.size);
  }

  /** Returns a buffer taken from this pool. */
  give(buffer: Uint8Array): void {
    if (buffer.byteLength === this.size && this.#idle.length < this.maxIdle) {
      this.#idle.push(buffer);
    }
  }

  /** How many buffers wait for reuse. */
  get idle(): number {
    return this.#idle.length;
  }
}

/** The process-wide pool every request context draws from. */
export const sharedBufferPool: BufferPool = new BufferPool();
