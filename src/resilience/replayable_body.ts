/**
 * The client's request body as the attempts on backends send it: cut at
 * `limits.max_body`, and its first `retries.max_body` bytes kept while they
 * are sent, so that a failed attempt can be replayed on another backend. A
 * larger body is streamed through and not kept.
 *
 * @module
 */

/**
 * The error a request body stream ends with when it crosses `limits.max_body`.
 *
 * @example
 * ```ts
 * if (error instanceof BodyTooLarge) return errorResponse(413, error.message);
 * ```
 */
export class BodyTooLarge extends Error {
  override readonly name = "BodyTooLarge";
  constructor(readonly limit: number) {
    super(`the request body is larger than ${limit} bytes`);
  }
}

/**
 * One request body, read once from the client, sent as many times as there
 * are attempts while it is replayable.
 *
 * @example
 * ```ts
 * const body = new ReplayableBody(request.body, { maxBody: 100 << 20, keep: 64 << 10 });
 * await fetch(first, { method: "PUT", body: body.stream() });
 * if (body.replayable) await fetch(second, { method: "PUT", body: body.stream() });
 * ```
 */
export class ReplayableBody {
  /** Whether the body crossed `maxBody`; its stream then ended in {@linkcode BodyTooLarge}. */
  tooLarge = false;
  readonly #source: ReadableStream<Uint8Array> | null;
  readonly #maxBody: number;
  readonly #keep: number;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  /** Every chunk read so far while the body is replayable. */
  #kept: Uint8Array[] = [];
  #keptBytes = 0;
  #read = 0;
  #ended = false;
  #replayable = true;
  /** Only the latest stream reads the source; an older one fails. */
  #generation = 0;

  constructor(
    source: ReadableStream<Uint8Array> | null,
    limits: { maxBody: number; keep: number },
  ) {
    this.#source = source;
    this.#maxBody = limits.maxBody;
    this.#keep = limits.keep;
  }

  /** Whether every byte read from the client so far is kept, so the body can be sent again. */
  get replayable(): boolean {
    return this.#replayable;
  }

  /**
   * A stream of the whole body for one attempt: the kept bytes, then the rest
   * as the client sends it. Null for a request without a body. Throws once
   * the body is no longer replayable and an earlier stream read from it.
   */
  stream(): ReadableStream<Uint8Array> | null {
    if (this.#source === null) return null;
    if (!this.#replayable) throw new Error("the request body cannot be replayed");
    const generation = ++this.#generation;
    let index = 0;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (generation !== this.#generation) {
          return controller.error(new Error("a newer attempt took the request body"));
        }
        if (index < this.#kept.length) return controller.enqueue(this.#kept[index++]);
        if (this.#ended) return controller.close();
        this.#reader ??= this.#source!.getReader();
        const { done, value } = await this.#reader.read();
        if (done) {
          this.#ended = true;
          return controller.close();
        }
        this.#read += value.byteLength;
        if (this.#read > this.#maxBody) {
          this.tooLarge = true;
          this.#replayable = false;
          this.#reader.cancel().catch(() => {});
          return controller.error(new BodyTooLarge(this.#maxBody));
        }
        if (this.#replayable) this.#keepChunk(value);
        if (this.#replayable) index++;
        controller.enqueue(value);
      },
    }, { highWaterMark: 0 });
  }

  #keepChunk(chunk: Uint8Array): void {
    this.#keptBytes += chunk.byteLength;
    if (this.#keptBytes <= this.#keep) {
      this.#kept.push(chunk);
      return;
    }
    this.#replayable = false;
    this.#kept = [];
  }
}
