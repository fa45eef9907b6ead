/**
 * The access log: one line per request on stdout, as JSON (the default), in
 * the Common Log Format, or not at all. Lines for stdout are batched into one
 * write every few milliseconds, so logging costs no system call per request.
 *
 * @module
 */

/** How access-log lines look: `logging.access` in the config. */
export type AccessLogFormat = "json" | "common" | "off";

/**
 * Everything the access log says about one request. The keys are the JSON
 * line's keys.
 *
 * @example
 * ```ts
 * const entry: AccessLogEntry = {
 *   time: "2026-11-27T16:51:00.123Z", client: "127.0.0.1", method: "GET", target: "/",
 *   status: 200, bytes: 12, duration_ms: 1.234, upstream_ms: 0.8, route: "default",
 *   pool: "default", backend: "http://127.0.0.1:9001", attempts: 1, request_id: "9f86d081-1",
 * };
 * ```
 */
export interface AccessLogEntry {
  /** When the request arrived, ISO 8601 in UTC. */
  time: string;
  /** The client's IP address. */
  client: string;
  method: string;
  /** Path and query as the client sent them. */
  target: string;
  status: number;
  /** Response body bytes sent to the client. */
  bytes: number;
  /** From the request's arrival to the end of its response body. */
  duration_ms: number;
  /** From sending to the backend until its response head; null when none answered. */
  upstream_ms: number | null;
  /** The name of the route that took the request; null when none did. */
  route: string | null;
  /** The name of the pool it went to; null for a redirect, a fixed response or no route. */
  pool: string | null;
  /** The URL of the backend that got the request last; null when none did. */
  backend: string | null;
  /** How many backends the request was sent to. */
  attempts: number;
  request_id: string;
  /** For a request that became a WebSocket: what it carried, each way, and how it closed. */
  websocket?: {
    messages_in: number;
    messages_out: number;
    bytes_in: number;
    bytes_out: number;
    close_code: number;
  };
}

/**
 * Formats access-log entries and passes the lines to `write`.
 *
 * @example
 * ```ts
 * const log = new AccessLog("common", (line) => console.log(line));
 * log.record(entry); // 127.0.0.1 - - [27/Nov/2026:16:51:00 +0000] "GET / HTTP/1.1" 200 12
 * ```
 */
export class AccessLog {
  readonly #format: (entry: AccessLogEntry) => string;

  constructor(readonly format: AccessLogFormat, readonly write: (line: string) => void) {
    this.#format = format === "common" ? commonLine : JSON.stringify;
  }

  /** Whether lines are written at all. */
  get enabled(): boolean {
    return this.format !== "off";
  }

  record(entry: AccessLogEntry): void {
    if (this.format !== "off") this.write(this.#format(entry));
  }
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `client - - [27/Nov/2026:16:51:00 +0000] "GET /path HTTP/1.1" 200 12`, times in UTC. */
function commonLine(entry: AccessLogEntry): string {
  const time = new Date(entry.time);
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp =
    `${two(time.getUTCDate())}/${MONTHS[time.getUTCMonth()]}/${time.getUTCFullYear()}:` +
    `${two(time.getUTCHours())}:${two(time.getUTCMinutes())}:${two(time.getUTCSeconds())} +0000`;
  const request = `${entry.method} ${entry.target} HTTP/1.1`.replace(/["\\]/g, "\\$&");
  const bytes = entry.bytes === 0 ? "-" : String(entry.bytes);
  return `${entry.client || "-"} - - [${stamp}] "${request}" ${entry.status} ${bytes}`;
}

/**
 * Lines for stdout, gathered and written together at most every
 * `intervalMs`, or at once when 64 KiB are waiting. `close()` writes what is
 * left.
 *
 * @example
 * ```ts
 * const stdout = BatchedWriter.stdout();
 * stdout.line("hello");
 * stdout.close(); // "hello\n" is written now
 * ```
 */
export class BatchedWriter {
  /** A writer to this process's stdout. */
  static stdout(): BatchedWriter {
    return new BatchedWriter((bytes) => Deno.stdout.writeSync(bytes));
  }

  readonly #encoder = new TextEncoder();
  #pending = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    readonly writeBytes: (bytes: Uint8Array) => number,
    readonly intervalMs = 20,
  ) {}

  /** Queues one line. */
  line = (text: string): void => {
    this.#pending += `${text}\n`;
    if (this.#closed || this.#pending.length >= 64 * 1024) this.flush();
    else this.#timer ??= setTimeout(this.flush, this.intervalMs);
  };

  /** Writes every queued line now. */
  flush = (): void => {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === "") return;
    let bytes = this.#encoder.encode(this.#pending);
    this.#pending = "";
    try {
      while (bytes.length > 0) bytes = bytes.subarray(this.writeBytes(bytes));
    } catch {
      // stdout closed: the lines are lost, the balancer keeps serving
    }
  };

  /** Writes what is queued; later lines are written at once. */
  close(): void {
    this.#closed = true;
    this.flush();
  }
}
