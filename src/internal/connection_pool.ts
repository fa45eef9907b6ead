/**
 * Keep-alive connections to backends, pooled per origin. An idle connection
 * keeps one read pending, so a backend closing it (or talking out of turn) is
 * noticed while it waits and it leaves the pool; the request that leases it
 * takes that pending read as the first read of its response.
 *
 * @module
 */

import type { BackendTlsConfig } from "../config/types.ts";
import { type ConnectionStats, UpstreamError } from "../types.ts";

/**
 * Opens a TCP connection; {@linkcode ConnectionPool} uses `Deno.connect` unless told otherwise.
 *
 * @example
 * ```ts
 * const dial: Dialer = (options) => Deno.connect(options);
 * ```
 */
export type Dialer = (options: Deno.ConnectOptions) => Promise<Deno.TcpConn>;

/**
 * How a {@linkcode ConnectionPool} connects and how many idle connections it keeps.
 *
 * @example
 * ```ts
 * const options: ConnectionPoolOptions = {
 *   connectTimeoutMs: 2000,
 *   maxIdlePerOrigin: 16,
 *   tls: { ca: Deno.readTextFileSync("/etc/lb/internal-ca.pem"), server_name: "web.internal" },
 * };
 * ```
 */
export interface ConnectionPoolOptions {
  /** Time allowed to establish a connection (and its TLS handshake). */
  connectTimeoutMs: number;
  /** Idle connections kept per origin; more are closed on release. Default 64. */
  maxIdlePerOrigin?: number;
  /** Idle connections older than this are closed. Default: kept until used or closed. */
  idleTimeoutMs?: number;
  /** Replaces `Deno.connect`, for tests; connections with a client certificate do without. */
  dial?: Dialer;
  /** How `https://` origins are verified, and the client certificate they get. */
  tls?: BackendTlsConfig;
}

/** Bytes the pending read of an idle connection can take. */
const IDLE_READ_SIZE = 16 * 1024;

const LEASED = 0;
const IDLE = 1;
const CLOSED = 2;

/** One origin's connection settings, idle connections (most recently used last) and counts. */
class Origin {
  readonly idle: PooledConnection[] = [];
  /** Connections open now, idle or leased. */
  open = 0;
  /** Connections opened since the start. */
  opened = 0;
  /** Leases of a connection that had served an earlier exchange. */
  reused = 0;
  constructor(
    readonly key: string,
    readonly hostname: string,
    readonly port: number,
    readonly tls: boolean,
  ) {}
}

/**
 * A connection to a backend, leased to one exchange at a time or idle in the pool.
 *
 * @example
 * ```ts
 * const pool = new ConnectionPool({ connectTimeoutMs: 1000 });
 * const connection = await pool.connect(new URL("http://127.0.0.1:8080"));
 * await connection.conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
 * connection.close();
 * ```
 */
export class PooledConnection {
  #state = LEASED;
  /** `performance.now()` when the connection last went idle. */
  idleSince = 0;
  #idleBuffer: Uint8Array | null = null;
  #idleRead: Promise<number> | null = null;

  constructor(
    readonly conn: Deno.Conn,
    /** The connection's origin, whose idle list it leaves when its idle read ends. */
    readonly origin: Origin,
  ) {
    origin.open++;
    origin.opened++;
  }

  /** Whether the connection was closed. */
  get closed(): boolean {
    return this.#state === CLOSED;
  }

  /** The bytes the idle read delivered, valid once its promise resolved to a count. */
  get idleBuffer(): Uint8Array {
    return this.#idleBuffer!;
  }

  /**
   * Takes the read left pending while the connection was idle, or null for a
   * fresh connection. It resolves to the byte count put in
   * {@linkcode PooledConnection.idleBuffer}, 0 at end of stream, or -1 on error.
   */
  takeIdleRead(): Promise<number> | null {
    const read = this.#idleRead;
    this.#idleRead = null;
    return read;
  }

  /** Closes the connection; pending reads and writes on it end in errors. */
  close(): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    this.origin.open--;
    try {
      this.conn.close();
    } catch {
      // already closed by Deno
    }
  }

  /** Marks the connection leased. For the pool. */
  lease(): void {
    this.#state = LEASED;
  }

  /** Marks the connection idle and keeps a read pending on it. For the pool. */
  park(): void {
    this.#state = IDLE;
    this.idleSince = performance.now();
    if (this.#idleRead !== null) return;
    this.#idleBuffer ??= new Uint8Array(IDLE_READ_SIZE);
    this.#idleRead = this.conn.read(this.#idleBuffer).then(this.#onIdleRead, this.#onIdleError);
  }

  #onIdleRead = (count: number | null): number => {
    if (this.#state === IDLE) this.#leavePool();
    return count ?? 0;
  };

  #onIdleError = (): number => {
    if (this.#state === IDLE) this.#leavePool();
    return -1;
  };

  /** The idle read ended: end of stream, an error, or bytes nobody asked for. */
  #leavePool(): void {
    this.#idleRead = null;
    const idle = this.origin.idle;
    const index = idle.indexOf(this);
    if (index >= 0) idle.splice(index, 1);
    this.close();
  }
}

/**
 * Gives back a leased connection when disposed: to the pool when the exchange
 * set `reusable`, closed otherwise. Disposing it twice does nothing.
 *
 * @example
 * ```ts
 * const pool = new ConnectionPool({ connectTimeoutMs: 1000 });
 * using lease = new ConnectionLease(pool);
 * lease.connection = await pool.connect(new URL("http://127.0.0.1:8080"));
 * // ... a complete exchange ...
 * lease.reusable = true;
 * ```
 */
export class ConnectionLease implements Disposable {
  /** The leased connection, null once given back. */
  connection: PooledConnection | null = null;
  /** Whether the connection is clean and may serve another exchange. */
  reusable = false;

  constructor(readonly pool: ConnectionPool) {}

  [Symbol.dispose](): void {
    const connection = this.connection;
    if (connection === null) return;
    this.connection = null;
    if (this.reusable) this.pool.release(connection);
    else connection.close();
  }
}

/**
 * Keep-alive connections per backend origin (`http://` over TCP, `https://`
 * over TLS; ports default to 80 and 443).
 *
 * @example
 * ```ts
 * const pool = new ConnectionPool({ connectTimeoutMs: 1000 });
 * const url = new URL("http://127.0.0.1:8080");
 * const connection = pool.takeIdle(url) ?? await pool.connect(url);
 * // ... exchange a request and response ...
 * pool.release(connection);
 * pool.close();
 * ```
 */
export class ConnectionPool {
  readonly #connectTimeoutMs: number;
  readonly #maxIdle: number;
  readonly #dial: Dialer;
  readonly #tls: BackendTlsConfig;
  readonly #caCerts: string[] | undefined;
  readonly #byUrl = new WeakMap<URL, Origin>();
  readonly #byKey = new Map<string, Origin>();
  readonly #idleTimeoutMs: number;
  /** Closes connections idle too long; armed while any connection is idle. */
  #sweep: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: ConnectionPoolOptions) {
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#maxIdle = options.maxIdlePerOrigin ?? 64;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? Infinity;
    this.#dial = options.dial ?? Deno.connect;
    this.#tls = options.tls ?? {};
    this.#caCerts = this.#tls.ca === undefined ? undefined : [this.#tls.ca];
  }

  /** Leases the most recently used idle connection to `url`'s origin, if any. */
  takeIdle(url: URL): PooledConnection | undefined {
    const origin = this.#origin(url);
    const connection = origin.idle.pop();
    if (connection === undefined) return undefined;
    origin.reused++;
    connection.lease();
    return connection;
  }

  /**
   * Opens a fresh connection to `url`'s origin, leased to the caller. Rejects
   * with `connect_timeout` when it takes longer than the connect timeout (a
   * connection completing later is closed) and `connect_refused` otherwise,
   * its message starting `tls:` when the TLS handshake failed.
   */
  async connect(url: URL): Promise<PooledConnection> {
    const origin = this.#origin(url);
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        const message = `no connection to ${origin.key} within ${this.#connectTimeoutMs} ms`;
        reject(new UpstreamError("connect_timeout", message, false));
      }, this.#connectTimeoutMs);
    });
    let pending: Promise<Deno.Conn> | undefined;
    let conn: Deno.Conn | undefined;
    let handshaking = false;
    const { cert, key, server_name } = this.#tls;
    try {
      if (origin.tls && cert !== undefined && key !== undefined) {
        // Deno.startTls cannot send a client certificate. Deno.connectTls can,
        // but checks the certificate against the name it dials, which is why
        // the config refuses server_name beside a client certificate. Its
        // connection keeps Nagle's algorithm on (a TlsConn has no
        // setNoDelay): a small body written after the head waits for the
        // backend's delayed ACK.
        const connecting = Deno.connectTls({
          hostname: origin.hostname,
          port: origin.port,
          caCerts: this.#caCerts,
          cert,
          key,
        });
        pending = connecting;
        const tls = await Promise.race([connecting, deadline]);
        conn = tls;
        handshaking = true;
        await Promise.race([tls.handshake(), deadline]);
      } else {
        const dialing = this.#dial({
          hostname: origin.hostname,
          port: origin.port,
          signal: abort.signal,
        });
        pending = dialing;
        const tcp = await Promise.race([dialing, deadline]);
        conn = tcp;
        tcp.setNoDelay(true);
        if (origin.tls) {
          handshaking = true;
          const starting = Deno.startTls(tcp, {
            hostname: server_name ?? origin.hostname,
            caCerts: this.#caCerts,
          });
          pending = starting;
          const tls = await Promise.race([starting, deadline]);
          conn = tls;
          await Promise.race([tls.handshake(), deadline]);
        }
      }
      return new PooledConnection(conn, origin);
    } catch (error) {
      // Whatever is still being set up gets closed when it completes.
      pending?.then(closeQuietly, ignore);
      if (conn !== undefined) closeQuietly(conn);
      if (error instanceof UpstreamError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new UpstreamError(
        "connect_refused",
        handshaking
          ? `tls: ${tlsFailureIn(reason) ?? reason}`
          : `cannot connect to ${origin.key}: ${reason}`,
        false,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Takes back a connection after a clean exchange; closes it when the pool is full or closed. */
  release(connection: PooledConnection): void {
    if (connection.closed) return;
    const idle = connection.origin.idle;
    if (this.#closed || idle.length >= this.#maxIdle) {
      connection.close();
      return;
    }
    idle.push(connection);
    connection.park();
    if (this.#sweep === undefined && this.#idleTimeoutMs !== Infinity) {
      this.#armSweep(this.#idleTimeoutMs);
    }
  }

  /** Closes the idle connections to `url`'s origin, a backend the config no longer has. */
  closeIdle(url: URL): void {
    const origin = this.#origin(url);
    for (const connection of origin.idle.splice(0)) connection.close();
    if (origin.open === 0) this.#byKey.delete(origin.key);
  }

  /** Connection counts of `url`'s origin. */
  stats(url: URL): Required<ConnectionStats> {
    const origin = this.#origin(url);
    const idle = origin.idle.length;
    return { idle, active: origin.open - idle, opened: origin.opened, reused: origin.reused };
  }

  /** Closes every idle connection; connections released later are closed too. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#sweep);
    for (const origin of this.#byKey.values()) {
      for (const connection of origin.idle.splice(0)) connection.close();
    }
  }

  #armSweep(delayMs: number): void {
    this.#sweep = setTimeout(this.#closeStale, delayMs);
    Deno.unrefTimer(this.#sweep);
  }

  /** Closes connections idle longer than the idle timeout, least recently used first. */
  #closeStale = (): void => {
    this.#sweep = undefined;
    const now = performance.now();
    let oldest = Infinity;
    for (const origin of this.#byKey.values()) {
      const idle = origin.idle;
      while (idle.length > 0 && now - idle[0].idleSince >= this.#idleTimeoutMs) {
        idle.shift()!.close();
      }
      if (idle.length > 0) oldest = Math.min(oldest, idle[0].idleSince);
    }
    if (oldest !== Infinity) this.#armSweep(oldest + this.#idleTimeoutMs - now);
  };

  #origin(url: URL): Origin {
    let origin = this.#byUrl.get(url);
    if (origin !== undefined) return origin;
    const tls = url.protocol === "https:";
    if (!tls && url.protocol !== "http:") {
      throw new TypeError(`unsupported backend scheme ${url.protocol}`);
    }
    const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
    const key = `${url.protocol}//${url.hostname}:${port}`;
    origin = this.#byKey.get(key);
    if (origin === undefined) {
      const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
      origin = new Origin(key, hostname, port, tls);
      this.#byKey.set(key, origin);
    }
    this.#byUrl.set(url, origin);
    return origin;
  }
}

/** How rustls's errors in Deno's messages start. */
const TLS_FAILURE =
  /(?:invalid peer certificate|received fatal alert|peer is incompatible|peer misbehaved)[^\n]*/;

/**
 * The TLS failure an error's text tells of, from its rustls reason on (an
 * unknown issuer said to be untrusted), or undefined when it tells of none.
 *
 * @example
 * ```ts
 * tlsFailureIn("client error (Connect): invalid peer certificate: UnknownIssuer");
 * // "certificate not trusted (invalid peer certificate: UnknownIssuer): is its CA in tls.ca?"
 * tlsFailureIn("Connection refused (os error 111)"); // undefined
 * ```
 */
export function tlsFailureIn(text: string): string | undefined {
  const failure = TLS_FAILURE.exec(text)?.[0];
  if (failure === undefined || !failure.includes("UnknownIssuer")) return failure;
  return `certificate not trusted (${failure}): is its CA in tls.ca?`;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function ignore(): void {}
