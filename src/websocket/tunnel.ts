/**
 * A WebSocket proxied message by message: the client's side upgraded by
 * Deno.serve, the backend's opened with `WebSocketStream` with the client's
 * handshake headers and subprotocols. Types, bytes and order are kept both
 * ways, close codes and reasons pass both ways, and a silent tunnel closes
 * after `timeouts.tunnel`.
 *
 * Backpressure: the backend's messages are read only while the client's send
 * buffer is under a bound, so a client that stops reading stops the backend
 * (TCP flow control). Deno's server-side WebSocket cannot pause reading, so a
 * client that outpaces its backend past the bound is closed with 1013.
 *
 * @module
 */

import type { HeaderPairs } from "../types.ts";

/** Bytes queued toward one side before reading from the other stops (or, client-side, it closes). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** How often a paused pump looks whether the client's buffer drained. */
const DRAIN_POLL_MS = 5;
/** Handshake headers the WebSocket client writes itself. */
const OWN_HANDSHAKE = new Set([
  "host",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
]);

/**
 * Whether `request` asks to switch protocols: Connection names `upgrade`.
 *
 * @example
 * ```ts
 * upgradeOf(request); // "websocket", "h2c", ... or undefined for a plain request
 * ```
 */
export function upgradeOf(request: Request): string | undefined {
  const connection = request.headers.get("connection");
  if (connection === null || !/(^|,)\s*upgrade\s*(,|$)/i.test(connection)) return undefined;
  return request.headers.get("upgrade")?.trim().toLowerCase() ?? "";
}

/** What a tunnel counts, for its access-log line and the metrics. */
export interface TunnelRecord {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** The close code the tunnel ended with; 0 while open. */
  closeCode: number;
}

/** Where the tunnel goes and how long it may stay silent. */
export interface TunnelOptions {
  /** `ws://` or `wss://` URL of the backend, path and query included. */
  url: string;
  /** The client's headers after the proxy's rules; the handshake's own are dropped. */
  headers: HeaderPairs;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/**
 * An open tunnel. `response` is the client's 101, to return from the handler.
 * `closed` resolves once both sides closed.
 */
export interface Tunnel {
  readonly response: Response;
  readonly record: TunnelRecord;
  readonly closed: Promise<void>;
  /** Closes both sides with `code` (1001 when the balancer stops). */
  close(code: number, reason: string): void;
}

/** The backend refused the upgrade (with `status` when it answered) or could not be reached. */
export interface Refusal {
  status: number | undefined;
  reason: string;
}

/** The client's handshake could not be answered; the backend's side was closed again. */
export interface InvalidHandshake {
  invalid: string;
}

/**
 * Opens the backend's WebSocket first, then upgrades the client with the
 * subprotocol the backend chose. Resolves to the refusal when the backend
 * does not switch protocols, and says so when the client's handshake cannot
 * be answered.
 *
 * @example
 * ```ts
 * const tunnel = await openTunnel(request, {
 *   url: "ws://127.0.0.1:9001/chat", headers, connectTimeoutMs: 2000, idleTimeoutMs: 3_600_000,
 * });
 * if ("response" in tunnel) return tunnel.response;
 * ```
 */
export async function openTunnel(
  request: Request,
  options: TunnelOptions,
): Promise<Tunnel | Refusal | InvalidHandshake> {
  const protocols = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
    .map((protocol) => protocol.trim()).filter((protocol) => protocol !== "");
  const late = new AbortController();
  const timer = setTimeout(() => late.abort(), options.connectTimeoutMs);
  const backend = new WebSocketStream(options.url, {
    protocols,
    headers: options.headers.filter(([name]) => !OWN_HANDSHAKE.has(name)),
    signal: late.signal,
  });
  backend.closed.catch(() => {});
  let opened: WebSocketConnection;
  try {
    opened = await backend.opened;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const status = /status code: (\d{3})/.exec(reason)?.[1];
    return { status: status === undefined ? undefined : Number(status), reason };
  } finally {
    // Once open, the stream must not be aborted by a connect deadline that comes later.
    clearTimeout(timer);
  }
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = Deno.upgradeWebSocket(request, {
      ...(opened.protocol === "" ? {} : { protocol: opened.protocol }),
    });
  } catch (error) {
    // The client's handshake is not one Deno can answer (no key, a protocol list it cannot read).
    backend.close(closeInfo(1000, ""));
    return { invalid: error instanceof Error ? error.message : String(error) };
  }
  const { socket, response } = upgraded;
  socket.binaryType = "arraybuffer";
  return pump(socket, backend, opened, options.idleTimeoutMs, response);
}

function pump(
  socket: WebSocket,
  backend: WebSocketStream,
  opened: WebSocketConnection,
  idleTimeoutMs: number,
  response: Response,
): Tunnel {
  const record: TunnelRecord = {
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    closeCode: 0,
  };
  const writer = opened.writable.getWriter();
  const reader = opened.readable.getReader();
  const done = Promise.withResolvers<void>();
  let queued = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => close(1001, "the tunnel was idle too long"), idleTimeoutMs);
  };
  const close = (code: number, reason: string) => {
    if (record.closeCode !== 0) return;
    record.closeCode = code;
    clearTimeout(idle);
    const sendable = sendableCode(code);
    try {
      socket.close(sendable, reason);
    } catch { /* closed already */ }
    // A client-side WebSocket may send only 1000 and 3000-4999: others reach the backend as 1000.
    const backendCode = sendable === 1000 || sendable >= 3000 ? sendable : 1000;
    backend.close(closeInfo(backendCode, reason));
    reader.cancel().catch(() => {});
    done.resolve();
  };
  socket.onopen = async () => {
    touch();
    for (;;) {
      let chunk: ReadableStreamReadResult<string | Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        return close(1011, "the backend went away");
      }
      if (chunk.done || record.closeCode !== 0) break;
      // The client reads slowly: wait, and read the backend no further meanwhile.
      while (socket.bufferedAmount > MAX_QUEUED_BYTES && socket.readyState === WebSocket.OPEN) {
        await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      }
      if (socket.readyState !== WebSocket.OPEN) break;
      socket.send(chunk.value);
      record.messagesOut++;
      record.bytesOut += sizeOf(chunk.value);
      touch();
    }
    const info = await backend.closed.catch(() => undefined) as ClosedInfo | undefined;
    close(info?.closeCode ?? info?.code ?? 1011, info?.reason ?? "");
  };
  socket.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    const message = typeof event.data === "string" ? event.data : new Uint8Array(event.data);
    const size = sizeOf(message);
    record.messagesIn++;
    record.bytesIn += size;
    touch();
    queued += size;
    if (queued > MAX_QUEUED_BYTES) {
      return close(1013, "the backend reads slower than the client sends");
    }
    writer.write(message).then(() => queued -= size, () => close(1011, "the backend went away"));
  };
  socket.onclose = (event) => close(event.code, event.reason);
  socket.onerror = () => close(1011, "the client connection failed");
  return {
    response,
    record,
    closed: done.promise,
    close,
  };
}

/**
 * How a WebSocketStream closed. Deno 2.9 resolves `closed` with `closeCode`
 * (the WHATWG draft's name) while its types say `code`; both are read.
 */
type ClosedInfo = WebSocketCloseInfo & { closeCode?: number };

/** Close info for a WebSocketStream, under both names for the reason above. */
function closeInfo(code: number, reason: string): WebSocketCloseInfo {
  return { code, closeCode: code, reason } as WebSocketCloseInfo;
}

/**
 * A code that may go in a close frame: 1005 (none given) and 1006 (no close
 * frame) only describe what happened, so they travel as 1000 and 1011.
 */
function sendableCode(code: number): number {
  if (code === 1005) return 1000;
  if (code === 1006 || code < 1000 || code > 4999) return 1011;
  return code;
}

function sizeOf(message: string | Uint8Array): number {
  return typeof message === "string"
    ? new TextEncoder().encode(message).byteLength
    : message.byteLength;
}
