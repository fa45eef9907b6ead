/**
 * Tests of the HTTP/1.1 upstream transport against loopback backends that
 * write crafted bytes, and unit tests of its parsers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { newBackend } from "../src/load_balancer.ts";
import { RequestContext } from "../src/request_context.ts";
import {
  type Backend,
  type HeaderPairs,
  UpstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
} from "../src/types.ts";
import { Http1Transport } from "../src/internal/http1_transport.ts";
import { ConnectionPool } from "../src/internal/connection_pool.ts";
import { ChunkedDecoder } from "../src/internal/http1_chunked_decoder.ts";
import { findHeadEnd, parseResponseHead } from "../src/internal/http1_response_head.ts";
import { encodeRequestHead } from "../src/internal/http1_request_head.ts";
import { concat } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

interface ReceivedRequest {
  method: string;
  target: string;
  head: string;
  headers: Headers;
  /** The body after de-chunking. */
  body: Uint8Array;
  /** The body bytes as they were on the wire. */
  raw: Uint8Array;
}

/** A connection a test backend accepted, with buffered reads. */
class ServerConn {
  #buffered: Uint8Array = new Uint8Array(0);
  #closed = false;

  constructor(readonly conn: Deno.Conn, readonly index: number) {}

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    let count: number | null;
    try {
      count = await this.conn.read(chunk);
    } catch {
      count = null;
    }
    if (count === null) return false;
    this.#buffered = concat([this.#buffered, chunk.subarray(0, count)]);
    return true;
  }

  #take(count: number): Uint8Array {
    const out = this.#buffered.slice(0, count);
    this.#buffered = this.#buffered.slice(count);
    return out;
  }

  async readUntil(delimiter: string): Promise<Uint8Array | null> {
    const needle = encoder.encode(delimiter);
    for (;;) {
      const at = indexOfBytes(this.#buffered, needle);
      if (at >= 0) return this.#take(at + needle.length);
      if (!await this.#fill()) return null;
    }
  }

  async readExactly(count: number): Promise<Uint8Array> {
    while (this.#buffered.length < count) {
      if (!await this.#fill()) throw new Error("connection closed mid-body");
    }
    return this.#take(count);
  }

  /** Reads one request; null when the client closed the connection first. */
  async readRequest(): Promise<ReceivedRequest | null> {
    const headBytes = await this.readUntil("\r\n\r\n");
    if (headBytes === null) return null;
    const head = decoder.decode(headBytes);
    const [requestLine, ...lines] = head.slice(0, -4).split("\r\n");
    const [method, target] = requestLine.split(" ");
    const headers = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    const raw: Uint8Array[] = [];
    const body: Uint8Array[] = [];
    if (headers.has("content-length")) {
      const bytes = await this.readExactly(Number(headers.get("content-length")));
      raw.push(bytes);
      body.push(bytes);
    } else if (headers.get("transfer-encoding") === "chunked") {
      for (;;) {
        const sizeLine = await this.readUntil("\r\n");
        if (sizeLine === null) throw new Error("connection closed mid-body");
        raw.push(sizeLine);
        const size = parseInt(decoder.decode(sizeLine), 16);
        if (size === 0) {
          raw.push(await this.readExactly(2));
          break;
        }
        const data = await this.readExactly(size + 2);
        raw.push(data);
        body.push(data.subarray(0, size));
      }
    }
    return { method, target, head, headers, body: concat(body), raw: concat(raw) };
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  /** Reads everything up to the end of the stream. */
  async readToEnd(): Promise<Uint8Array> {
    while (await this.#fill());
    return this.#take(this.#buffered.length);
  }

  /** Resolves once the client closed the connection (anything it sends is dropped). */
  async closedByPeer(): Promise<void> {
    this.#buffered = new Uint8Array(0);
    while (await this.#fill()) this.#buffered = new Uint8Array(0);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }
}

/** A backend on an OS-chosen loopback port running `handler` on every connection. */
class TestServer implements AsyncDisposable {
  readonly listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly connections: ServerConn[] = [];
  readonly backend: Backend;
  readonly #handlers: Promise<void>[] = [];
  readonly #errors: unknown[] = [];
  readonly #accepting: Promise<void>;

  constructor(handler: (conn: ServerConn) => Promise<void>) {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.backend = backendAt(this.listener.addr.port);
    this.#accepting = this.#accept(handler);
  }

  async #accept(handler: (conn: ServerConn) => Promise<void>): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.listener.accept();
      } catch {
        return;
      }
      const serverConn = new ServerConn(conn, this.connections.length);
      this.connections.push(serverConn);
      this.#handlers.push(
        handler(serverConn).catch((error) => {
          this.#errors.push(error);
        }).finally(() => serverConn.close()),
      );
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.listener.close();
    await this.#accepting;
    for (const conn of this.connections) conn.close();
    await Promise.all(this.#handlers);
    if (this.#errors.length > 0) throw this.#errors[0];
  }
}

function backendAt(port: number): Backend {
  return newBackend({ url: `http://127.0.0.1:${port}`, weight: 1, transport: "http1" });
}

function context(signal?: AbortSignal): RequestContext {
  return RequestContext.open(
    new Request("http://x/", { signal }),
    { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo,
  );
}

function transport(
  options: Partial<{ connectTimeoutMs: number; responseTimeoutMs: number }> = {},
): Http1Transport & Disposable {
  const created = new Http1Transport({
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
    ...options,
  });
  return Object.assign(created, { [Symbol.dispose]: () => created.close() });
}

function request(init: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    target: "/",
    headers: [["host", "backend"]],
    body: null,
    ...init,
  };
}

function streamOf(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) {
        controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
      }
      controller.close();
    },
  });
}

async function bodyText(body: UpstreamResponse["body"]): Promise<string> {
  assert.ok(body !== null, "expected a body");
  return await new Response(body).text();
}

function streamedBody(body: UpstreamResponse["body"]): ReadableStream<Uint8Array> {
  assert.ok(body instanceof ReadableStream, "expected a streamed body");
  return body;
}

async function bodyBytes(body: UpstreamResponse["body"]): Promise<Uint8Array> {
  assert.ok(body !== null, "expected a body");
  return await new Response(body).bytes();
}

function isUpstreamError(kind: UpstreamError["kind"], requestSent?: boolean) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof UpstreamError, `expected UpstreamError, got ${error}`);
    assert.equal(error.kind, kind, error.message);
    if (requestSent !== undefined) assert.equal(error.requestSent, requestSent);
    assert.ok(!error.message.includes("\n"), "message is one line");
    return true;
  };
}

/** Awaits `promise`, failing instead of hanging when it does not settle within 5 s. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` until it holds, for conditions no event announces. */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Answers every request on the connection with `respond(request, index)`, until the client closes. */
function serveEach(
  respond: (request: ReceivedRequest, index: number, conn: ServerConn) => string | Uint8Array,
): (conn: ServerConn) => Promise<void> {
  return async (conn) => {
    for (let index = 0;; index++) {
      const received = await conn.readRequest();
      if (received === null) return;
      await conn.write(respond(received, index, conn));
    }
  };
}

function ok(body: string, extra = ""): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;
}

// ---------------------------------------------------------------------------
// Response framing

Deno.test("content-length body is returned with status, reason and headers", async () => {
  const seen: ReceivedRequest[] = [];
  await using server = new TestServer(serveEach((received) => {
    seen.push(received);
    return "HTTP/1.1 201 Created Here\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
  }));
  using client = transport();
  using ctx = context();
  const response = await client.send(
    ctx,
    server.backend,
    request({ target: "/a?b=c", headers: [["host", "example"], ["x-r", "1"]] }),
  );
  assert.equal(response.status, 201);
  assert.equal(response.statusText, "Created Here");
  assert.equal(new Headers(response.headers).get("x-a"), "b");
  assert.equal(new Headers(response.headers).get("content-length"), "5");
  assert.equal(await bodyText(response.body), "hello");
  assert.equal(seen[0].head, "GET /a?b=c HTTP/1.1\r\nhost: example\r\nx-r: 1\r\n\r\n");
});

Deno.test("chunked body is decoded, trailers dropped, connection reused", async () => {
  await using server = new TestServer(
    serveEach((_, index) =>
      index === 0
        ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
          "5\r\nhello\r\n7;name=value\r\n, world\r\nA \r\n0123456789\r\n0\r\nX-T: v\r\n\r\n"
        : ok("next")
    ),
  );
  using client = transport();
  {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    assert.equal(new Headers(response.headers).has("transfer-encoding"), false);
    assert.equal(await bodyText(response.body), "hello, world0123456789");
    assert.equal(new Headers(response.headers).has("x-t"), false);
  }
  using ctx = context();
  const second = await client.send(ctx, server.backend, request());
  assert.equal(await bodyText(second.body), "next");
  assert.equal(server.connections.length, 1);
});

Deno.test("close-delimited body is read to EOF and the connection is not reused", async () => {
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write("HTTP/1.1 200 OK\r\nx: y\r\n\r\npart one, ");
    await conn.write("part two");
    conn.close();
  });
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  const reader = streamedBody(response.body).getReader();
  const parts: Uint8Array[] = [];
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    parts.push(read.value);
  }
  // Checked as soon as the stream ends, before the pool could notice the EOF itself.
  assert.equal(client.connectionStats(server.backend).idle, 0);
  assert.equal(decoder.decode(concat(parts)), "part one, part two");
});

Deno.test("HEAD response with content-length has no body", async () => {
  await using server = new TestServer(
    serveEach((received) =>
      received.method === "HEAD" ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" : ok("ok")
    ),
  );
  using client = transport();
  {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request({ method: "HEAD" }));
    assert.equal(response.body, null);
    assert.equal(new Headers(response.headers).get("content-length"), "5");
  }
  using ctx = context();
  const next = await client.send(ctx, server.backend, request());
  assert.equal(await bodyText(next.body), "ok");
  assert.equal(server.connections.length, 1);
});

Deno.test("204 and 304 responses have no body even with framing headers", async () => {
  await using server = new TestServer(serveEach((_, index) =>
    [
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
      ok("after"),
    ][index]
  ));
  using client = transport({ responseTimeoutMs: 2000 });
  for (const status of [204, 304]) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    assert.equal(response.status, status);
    assert.equal(response.body, null);
  }
  using ctx = context();
  const after = await client.send(ctx, server.backend, request());
  assert.equal(await bodyText(after.body), "after");
  assert.equal(server.connections.length, 1);
});

Deno.test("interim 100, 102 and 103 responses are skipped", async () => {
  await using server = new TestServer(
    serveEach(() =>
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" +
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + ok("final")
    ),
  );
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  assert.equal(response.status, 200);
  assert.equal(new Headers(response.headers).has("link"), false);
  assert.equal(await bodyText(response.body), "final");
});

Deno.test("101 Switching Protocols is an invalid response", async () => {
  await using server = new TestServer(serveEach(() => "HTTP/1.1 101 Switching Protocols\r\n\r\n"));
  using client = transport();
  using ctx = context();
  await assert.rejects(
    client.send(ctx, server.backend, request()),
    isUpstreamError("invalid_response"),
  );
});

Deno.test("several Set-Cookie headers stay several", async () => {
  await using server = new TestServer(
    serveEach(() =>
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nset-cookie: b=2, c\r\nContent-Length: 0\r\n\r\n"
    ),
  );
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  assert.deepEqual(new Headers(response.headers).getSetCookie(), ["a=1; Path=/", "b=2, c"]);
  assert.equal(response.body, null);
});

Deno.test("binary bodies pass byte for byte, with content-length and chunked", async () => {
  const gzip = await new Response(
    new Blob(["compress me ".repeat(5000)]).stream().pipeThrough(new CompressionStream("gzip")),
  ).bytes();
  const allBytes = new Uint8Array(256 * 600).map((_, i) => (i * 7) % 256);
  const tricky = concat([encoder.encode("\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), allBytes]);
  const head = (length: number) =>
    encoder.encode(
      `HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${length}\r\n\r\n`,
    );
  const chunked = concat([
    encoder.encode("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
    encoder.encode(`${tricky.length.toString(16)}\r\n`),
    tricky,
    encoder.encode("\r\n0\r\n\r\n"),
  ]);
  await using server = new TestServer(
    serveEach((_, index) => index === 0 ? concat([head(gzip.length), gzip]) : chunked),
  );
  using client = transport();
  {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    assert.deepEqual(await bodyBytes(response.body), gzip);
  }
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  assert.deepEqual(await bodyBytes(response.body), tricky);
});

Deno.test("large bodies written in odd pieces arrive intact, chunks never written over", async () => {
  const body = new Uint8Array(1024 * 1024 + 3).map((_, i) => (i * 31 + (i >> 9)) % 256);
  const chunkSizes = [1, 4095, 70_000, 3, 200_000, 16_384, 131_072, 17, 65_536];
  const chunks: Uint8Array[] = [];
  for (let at = 0, i = 0; at < body.length; i++) {
    const data = body.subarray(at, at + chunkSizes[i % chunkSizes.length]);
    chunks.push(encoder.encode(`${data.length.toString(16)}\r\n`), data, encoder.encode("\r\n"));
    at += data.length;
  }
  const responses = [
    concat([encoder.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]),
    concat([
      encoder.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
      ...chunks,
      encoder.encode("0\r\nX-T: v\r\n\r\n"),
    ]),
  ];
  const pieces = [1, 7, 1000, 65_537, 300_000, 2];
  await using server = new TestServer(async (conn) => {
    for (let index = 0; await conn.readRequest() !== null; index++) {
      const wire = responses[index % 2];
      for (let at = 0, i = 0; at < wire.length; i++) {
        const piece = wire.subarray(at, at + pieces[i % pieces.length]);
        await conn.write(piece);
        at += piece.length;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  });
  using client = transport();
  for (let i = 0; i < 4; i++) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    // bodyBytes keeps every chunk until the end, so a later read into one shows up here.
    const received = await bodyBytes(response.body);
    assert.equal(received.length, body.length);
    assert.equal(received.findIndex((byte, at) => byte !== body[at]), -1, "first wrong byte");
  }
  assert.equal(server.connections.length, 1);
});

Deno.test("bytes beyond a streamed body's content-length make the connection unusable", async () => {
  await using server = new TestServer(async (conn) => {
    while (await conn.readRequest() !== null) {
      await conn.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
      await new Promise((resolve) => setTimeout(resolve, 20));
      await conn.write("worldGARBAGE");
    }
  });
  using client = transport();
  for (let i = 0; i < 2; i++) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    assert.equal(await bodyText(response.body), "helloworld");
  }
  assert.equal(server.connections.length, 2);
});

Deno.test("bytes beyond content-length make the connection unusable", async () => {
  await using server = new TestServer(serveEach(() => ok("ok") + "GARBAGE"));
  using client = transport();
  for (let i = 0; i < 2; i++) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    assert.equal(await bodyText(response.body), "ok");
  }
  assert.equal(server.connections.length, 2);
});

// ---------------------------------------------------------------------------
// Keep-alive

Deno.test("keep-alive: two requests share one connection", async () => {
  const perConnection: number[] = [];
  await using server = new TestServer(serveEach((_, index, conn) => {
    perConnection[conn.index] = index + 1;
    return ok(`response ${index}`);
  }));
  using client = transport();
  for (let i = 0; i < 2; i++) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    assert.equal(await bodyText(response.body), `response ${i}`);
  }
  assert.deepEqual(perConnection, [2]);
  assert.deepEqual(client.connectionStats(server.backend), {
    idle: 1,
    active: 0,
    opened: 1,
    reused: 1,
  });
});

Deno.test("keep-alive: a connection serving a body counts as active until the body ends", async () => {
  await using server = new TestServer(serveEach(() => ok("x".repeat(256 * 1024))));
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  assert.deepEqual(client.connectionStats(server.backend), {
    idle: 0,
    active: 1,
    opened: 1,
    reused: 0,
  });
  assert.equal((await bodyText(response.body)).length, 256 * 1024);
  assert.deepEqual(client.connectionStats(server.backend), {
    idle: 1,
    active: 0,
    opened: 1,
    reused: 0,
  });
});

Deno.test("no reuse after Connection: close from either side", async () => {
  const closed = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  await using server = new TestServer(async (conn) => {
    const received = await conn.readRequest();
    if (received === null) return;
    const respondClose = received.target === "/server-close";
    await conn.write(ok("x", respondClose ? "Connection: keep-alive, close\r\n" : ""));
    await conn.closedByPeer();
    closed[conn.index].resolve();
  });
  using client = transport();
  for (
    const [target, headers] of [
      ["/server-close", [["host", "a"]]],
      ["/client-close", [["host", "a"], ["connection", "close"]]],
    ] satisfies [string, HeaderPairs][]
  ) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request({ target, headers }));
    assert.equal(await bodyText(response.body), "x");
  }
  await within(Promise.all(closed.map((c) => c.promise)), "both connections closed");
  assert.equal(server.connections.length, 2);
  assert.equal(client.connectionStats(server.backend).idle, 0);
});

Deno.test("HTTP/1.0 responses are reused only with keep-alive", async () => {
  await using server = new TestServer(
    serveEach((received) =>
      received.target === "/keep"
        ? "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nk"
        : "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nc"
    ),
  );
  using client = transport();
  for (const target of ["/keep", "/keep", "/close", "/keep"]) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request({ target }));
    await bodyText(response.body);
  }
  // "/keep" twice on the first connection, "/close" ends it, "/keep" needs a second one.
  assert.equal(server.connections.length, 2);
});

Deno.test("close() closes idle pooled connections", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    await serveEach(() => ok("ok"))(conn);
    resolve();
  });
  const client = transport();
  {
    using ctx = context();
    await bodyText((await client.send(ctx, server.backend, request())).body);
  }
  assert.equal(client.connectionStats(server.backend).idle, 1);
  client.close();
  await within(closed, "closed");
  assert.equal(client.connectionStats(server.backend).idle, 0);
});

// ---------------------------------------------------------------------------
// Request bodies

Deno.test("request body without content-length is sent chunked, byte for byte", async () => {
  const big = new Uint8Array(100_000).map((_, i) => i % 251);
  const parts = [encoder.encode("abc"), new Uint8Array(0), encoder.encode("\r\n0\r\n\r\n"), big];
  let received: ReceivedRequest | null = null;
  await using server = new TestServer(serveEach((r) => {
    received = r;
    return ok("done");
  }));
  using client = transport();
  using ctx = context();
  const response = await client.send(
    ctx,
    server.backend,
    request({
      method: "POST",
      headers: [["host", "a"], ["transfer-encoding", "gzip"]],
      body: streamOf(...parts),
    }),
  );
  assert.equal(await bodyText(response.body), "done");
  const got = received as ReceivedRequest | null;
  assert.ok(got !== null);
  assert.equal(got.headers.get("transfer-encoding"), "chunked");
  assert.equal(got.headers.has("content-length"), false);
  assert.deepEqual(got.body, concat(parts));
  const expectedRaw = concat([
    encoder.encode("3\r\nabc\r\n7\r\n\r\n0\r\n\r\n\r\n"),
    encoder.encode(`${big.length.toString(16)}\r\n`),
    big,
    encoder.encode("\r\n0\r\n\r\n"),
  ]);
  assert.deepEqual(got.raw, expectedRaw);
});

Deno.test("request body with content-length is streamed as is and the connection reused", async () => {
  const bodies: ReceivedRequest[] = [];
  await using server = new TestServer(serveEach((r) => {
    bodies.push(r);
    return ok("ok");
  }));
  using client = transport();
  for (let i = 0; i < 2; i++) {
    using ctx = context();
    const response = await client.send(
      ctx,
      server.backend,
      request({
        method: "PUT",
        headers: [["host", "a"], ["content-length", "11"]],
        body: streamOf("hello", " world"),
      }),
    );
    assert.equal(await bodyText(response.body), "ok");
  }
  assert.equal(server.connections.length, 1);
  for (const r of bodies) {
    assert.equal(decoder.decode(r.body), "hello world");
    assert.equal(new Headers(r.headers).has("transfer-encoding"), false);
  }
});

Deno.test("null body keeps content-length: 0 and sends nothing more", async () => {
  const seen: ReceivedRequest[] = [];
  await using server = new TestServer(serveEach((r) => {
    seen.push(r);
    return ok("ok");
  }));
  using client = transport();
  for (let i = 0; i < 2; i++) {
    using ctx = context();
    const headers: HeaderPairs = [["host", "a"], ["content-length", "0"]];
    const response = await client.send(ctx, server.backend, request({ method: "POST", headers }));
    assert.equal(await bodyText(response.body), "ok");
  }
  assert.equal(seen.length, 2);
  assert.equal(seen[0].headers.get("content-length"), "0");
  assert.equal(seen[0].headers.has("transfer-encoding"), false);
});

Deno.test("a request body longer than its content-length is not sent", async () => {
  const { promise: received, resolve } = Promise.withResolvers<[string, number]>();
  await using server = new TestServer(async (conn) => {
    const head = await conn.readUntil("\r\n\r\n");
    resolve([decoder.decode(head ?? new Uint8Array(0)), (await conn.readToEnd()).length]);
  });
  using client = transport();
  using ctx = context();
  const headers: HeaderPairs = [["host", "a"], ["content-length", "3"]];
  await assert.rejects(
    client.send(ctx, server.backend, request({ method: "POST", headers, body: streamOf("hello") })),
    isUpstreamError("reset", true),
  );
  const [head, bodyLength] = await within(received, "the request");
  assert.match(head, /^POST \/ HTTP\/1\.1\r\n/);
  assert.equal(bodyLength, 0);
});

Deno.test("an early response ends the upload and the connection is not reused", async () => {
  const { promise: cancelled, resolve: onCancel } = Promise.withResolvers<void>();
  const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    if (await conn.readUntil("\r\n\r\n") === null) return;
    await conn.write("HTTP/1.1 413 Content Too Large\r\ncontent-length: 3\r\n\r\nbig");
    await conn.closedByPeer();
    onClosed();
  });
  let pulls = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulls++ === 0) controller.enqueue(encoder.encode("first part"));
      return pulls > 1 ? cancelled : undefined;
    },
    cancel() {
      onCancel();
    },
  }, { highWaterMark: 0 });
  using client = transport();
  using ctx = context();
  const response = await client.send(
    ctx,
    server.backend,
    request({ method: "POST", body: endless }),
  );
  assert.equal(response.status, 413);
  assert.equal(await bodyText(response.body), "big");
  await within(cancelled, "cancelled");
  await within(closed, "closed");
  assert.equal(client.connectionStats(server.backend).idle, 0);
});

// ---------------------------------------------------------------------------
// Stale pooled connections

Deno.test("a pooled connection the backend closed while idle is replaced", async () => {
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write(ok(`from ${conn.index}`));
    conn.close();
  });
  using client = transport();
  {
    using ctx = context();
    assert.equal(
      await bodyText((await client.send(ctx, server.backend, request())).body),
      "from 0",
    );
  }
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  assert.equal(await bodyText(response.body), "from 1");
  assert.equal(server.connections.length, 2);
});

Deno.test("the idle watch drops a pooled connection the backend closed", async () => {
  const { promise: pooled, resolve: onPooled } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write(ok("ok"));
    await pooled;
    conn.close();
  });
  using client = transport();
  {
    using ctx = context();
    assert.equal(await bodyText((await client.send(ctx, server.backend, request())).body), "ok");
  }
  assert.equal(client.connectionStats(server.backend).idle, 1);
  onPooled();
  await waitUntil(() => client.connectionStats(server.backend).idle === 0, "the pool to drop it");
});

Deno.test("a reused connection closed without a response is retried once on a fresh one", async () => {
  await using server = new TestServer(async (conn) => {
    for (let index = 0;; index++) {
      if (await conn.readRequest() === null) return;
      if (conn.index === 0 && index === 1) return; // closes without answering
      await conn.write(ok(`conn ${conn.index}`));
    }
  });
  using client = transport();
  for (const expected of ["conn 0", "conn 1"]) {
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    assert.equal(await bodyText(response.body), expected);
  }
  assert.equal(server.connections.length, 2);
});

Deno.test("the retry replays a request body that was not consumed yet", async () => {
  const { promise: secondConnection, resolve: onSecond } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    if (conn.index === 1) onSecond();
    for (let index = 0;; index++) {
      if (conn.index === 0 && index === 1) {
        await conn.readUntil("\r\n\r\n");
        return;
      }
      const received = await conn.readRequest();
      if (received === null) return;
      await conn.write(ok(`${conn.index}:${decoder.decode(received.body)}`));
    }
  });
  using client = transport();
  {
    using ctx = context();
    await bodyText((await client.send(ctx, server.backend, request())).body);
  }
  let sent = false;
  const gated = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent) return controller.close();
      await secondConnection;
      sent = true;
      controller.enqueue(encoder.encode("payload"));
    },
  }, { highWaterMark: 0 });
  using ctx = context();
  const response = await client.send(ctx, server.backend, request({ method: "PUT", body: gated }));
  assert.equal(await bodyText(response.body), "1:payload");
});

Deno.test("as in Go's http.Transport, a written non-idempotent request is not replayed on a fresh connection", async () => {
  await using server = new TestServer(async (conn) => {
    for (let index = 0;; index++) {
      if (await conn.readRequest() === null) return;
      if (index === 1) return; // closes a reused connection without answering
      await conn.write(ok(`conn ${conn.index}`));
    }
  });
  using client = transport();
  const send = async (init: Partial<UpstreamRequest>) => {
    using ctx = context();
    return await bodyText((await client.send(ctx, server.backend, request(init))).body);
  };
  assert.equal(await send({}), "conn 0");
  await assert.rejects(send({ method: "POST" }), (error: UpstreamError) => {
    assert.equal(error.message, "upstream closed a reused connection");
    assert.equal(error.requestSent, true);
    return true;
  });
  assert.equal(server.connections.length, 1, "the POST went out once");
  assert.equal(await send({}), "conn 1");
  const keyed = { method: "POST", headers: [["host", "backend"], ["idempotency-key", "k1"]] };
  assert.equal(await send(keyed as Partial<UpstreamRequest>), "conn 2", "replayed with a key");
});

Deno.test("no retry once the request body was consumed", async () => {
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write(ok("first"));
    await conn.readUntil("\r\n\r\n");
  });
  using client = transport();
  {
    using ctx = context();
    await bodyText((await client.send(ctx, server.backend, request())).body);
  }
  using ctx = context();
  await assert.rejects(
    client.send(ctx, server.backend, request({ method: "POST", body: streamOf("data") })),
    isUpstreamError("reset", true),
  );
  assert.equal(server.connections.length, 1);
});

Deno.test("EOF before any response on a fresh connection is a reset", async () => {
  await using server = new TestServer(async (conn) => {
    await conn.readRequest();
  });
  using client = transport();
  using ctx = context();
  await assert.rejects(client.send(ctx, server.backend, request()), isUpstreamError("reset", true));
  assert.equal(server.connections.length, 1);
});

// ---------------------------------------------------------------------------
// Invalid responses

async function expectInvalid(response: string | Uint8Array): Promise<void> {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write(response);
    await conn.closedByPeer();
    resolve();
  });
  using client = transport();
  using ctx = context();
  await assert.rejects(
    client.send(ctx, server.backend, request()),
    isUpstreamError("invalid_response", true),
  );
  await within(closed, "closed");
}

Deno.test("content-length with transfer-encoding is invalid", async () => {
  await expectInvalid(
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  );
});

Deno.test("two different content-lengths are invalid, identical ones merge", async () => {
  await expectInvalid("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
  await expectInvalid("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!");
  await expectInvalid("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello");
  await expectInvalid("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello");
  await using server = new TestServer(
    serveEach(() => "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc"),
  );
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  assert.equal(new Headers(response.headers).get("content-length"), "3");
  assert.equal(await bodyText(response.body), "abc");
});

Deno.test("transfer-encoding other than a lone chunked is invalid", async () => {
  await expectInvalid("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc");
  await expectInvalid("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n");
  await expectInvalid(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
  );
  await expectInvalid("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
});

Deno.test("a non-HTTP status line is invalid", async () => {
  for (
    const line of [
      "HTTP/2 200 OK",
      "HTTP/1.1 20 OK",
      "HTTP/1.1 2000 OK",
      "http/1.1 200 OK",
      "ICY 200 OK",
      "HTTP/1.1 200 O\x01K",
    ]
  ) {
    await expectInvalid(`${line}\r\nContent-Length: 0\r\n\r\n`);
  }
});

Deno.test("status outside 100-599 is invalid", async () => {
  await expectInvalid("HTTP/1.1 600 Nope\r\nContent-Length: 0\r\n\r\n");
  await expectInvalid("HTTP/1.1 099 Nope\r\nContent-Length: 0\r\n\r\n");
});

Deno.test("malformed header lines are invalid", async () => {
  await expectInvalid("HTTP/1.1 200 OK\r\nX-Bad : 1\r\nContent-Length: 0\r\n\r\n");
  await expectInvalid("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n");
  await expectInvalid("HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n");
  await expectInvalid("HTTP/1.1 200 OK\nContent-Length: 0\n\n");
  await expectInvalid("HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n");
});

Deno.test("a response head over 64 KiB is invalid", async () => {
  await expectInvalid(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70 * 1024)}\r\n\r\n`);
});

Deno.test("a bad chunk size errors the body stream and drops the connection", async () => {
  for (
    const framing of ["zz\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n-1\r\n", "5\r\nhelloXX0\r\n\r\n"]
  ) {
    const { promise: closed, resolve } = Promise.withResolvers<void>();
    await using server = new TestServer(async (conn) => {
      if (await conn.readRequest() === null) return;
      await conn.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${framing}`);
      await conn.closedByPeer();
      resolve();
    });
    using client = transport();
    using ctx = context();
    const response = await client.send(ctx, server.backend, request());
    await assert.rejects(bodyText(response.body), isUpstreamError("invalid_response"));
    await within(closed, "closed");
  }
});

Deno.test("a trailer line over 64 KiB errors the body stream", async () => {
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n");
    await conn.write(`X-T: ${"a".repeat(70 * 1024)}`);
    await conn.closedByPeer();
  });
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  await assert.rejects(bodyText(response.body), isUpstreamError("invalid_response"));
});

Deno.test("a body shorter than content-length errors the stream", async () => {
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
  });
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  await assert.rejects(bodyText(response.body), isUpstreamError("reset"));
  assert.equal(client.connectionStats(server.backend).idle, 0);
});

Deno.test("a chunked body cut short errors the stream", async () => {
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
  });
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  await assert.rejects(bodyText(response.body), isUpstreamError("reset"));
});

// ---------------------------------------------------------------------------
// Request head validation

Deno.test("CR, LF or NUL in the request head are rejected before writing", async () => {
  const seen: ReceivedRequest[] = [];
  await using server = new TestServer(serveEach((r) => {
    seen.push(r);
    return ok("ok");
  }));
  using client = transport();
  {
    using ctx = context();
    await bodyText((await client.send(ctx, server.backend, request({ target: "/first" }))).body);
  }
  const injected: HeaderPairs = [
    ["host", "a"],
    ["x-evil", "a\r\nGET /smuggled HTTP/1.1\r\nhost: a"],
  ];
  const nul: HeaderPairs = [["x-a", "a\0b"]];
  for (
    const bad of [
      request({ headers: injected }),
      request({ headers: nul }),
      request({ target: "/x HTTP/1.1\r\nhost: a\r\n\r\nGET /smuggled" }),
      request({ target: "/a b" }),
      request({ method: "GET /smuggled" }),
    ]
  ) {
    using ctx = context();
    await assert.rejects(client.send(ctx, server.backend, bad), TypeError);
  }
  using ctx = context();
  await bodyText((await client.send(ctx, server.backend, request({ target: "/last" }))).body);
  assert.deepEqual(seen.map((r) => r.target), ["/first", "/last"]);
  assert.equal(server.connections.length, 1);
});

// ---------------------------------------------------------------------------
// Connection errors and timeouts

Deno.test("refused connection is connect_refused with requestSent false", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  using client = transport();
  using ctx = context();
  await assert.rejects(
    client.send(ctx, backendAt(port), request()),
    isUpstreamError("connect_refused", false),
  );
});

Deno.test("connect timeout: a backend whose accept queue is full", async () => {
  // Linux drops SYNs while a listener's accept queue is full, so a connect
  // attempt hangs: fill the queue, then connect through the transport.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const fillers: Deno.Conn[] = [];
  try {
    for (let full = false; !full;) {
      if (fillers.length > 20_000) throw new Error("the accept queue never filled up");
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 500);
      try {
        fillers.push(
          await Deno.connect({
            hostname: "127.0.0.1",
            port: listener.addr.port,
            signal: abort.signal,
          }),
        );
      } catch {
        full = true;
      } finally {
        clearTimeout(timer);
      }
    }
    using client = transport({ connectTimeoutMs: 100 });
    using ctx = context();
    const started = performance.now();
    await assert.rejects(
      client.send(ctx, backendAt(listener.addr.port), request()),
      isUpstreamError("connect_timeout", false),
    );
    assert.ok(performance.now() - started < 1000);
  } finally {
    for (const conn of fillers) conn.close();
    listener.close();
  }
});

Deno.test("connect timeout: a connection completing late is closed (dial hook)", async () => {
  const { promise: peerClosed, resolve: onPeerClosed } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    await conn.closedByPeer();
    onPeerClosed();
  });
  const { promise: gate, resolve: openGate } = Promise.withResolvers<void>();
  let dialSignal: AbortSignal | undefined;
  const pool = new ConnectionPool({
    connectTimeoutMs: 50,
    dial: async (options) => {
      dialSignal = options.signal;
      await gate;
      return await Deno.connect({ hostname: options.hostname, port: options.port });
    },
  });
  await assert.rejects(pool.connect(server.backend.url), isUpstreamError("connect_timeout", false));
  assert.equal(dialSignal?.aborted, true);
  openGate();
  await within(peerClosed, "peerClosed");
  assert.equal(server.connections.length, 1);
  pool.close();
});

Deno.test("a backend that never answers is response_timeout and the connection is dropped", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    await conn.readRequest();
    await conn.closedByPeer();
    resolve();
  });
  using client = transport({ responseTimeoutMs: 150 });
  using ctx = context();
  const started = performance.now();
  await assert.rejects(
    within(client.send(ctx, server.backend, request()), "the timeout"),
    isUpstreamError("response_timeout", true),
  );
  assert.ok(performance.now() - started >= 140);
  await within(closed, "closed");
});

// ---------------------------------------------------------------------------
// Streaming, cancel and abort

Deno.test("cancelling the body closes the upstream connection", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst bytes");
    await conn.closedByPeer();
    resolve();
  });
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  const reader = streamedBody(response.body).getReader();
  assert.equal(decoder.decode((await reader.read()).value), "first bytes");
  await reader.cancel();
  await within(closed, "closed");
  assert.equal(client.connectionStats(server.backend).idle, 0);
});

Deno.test("cancelling while a body read is pending closes the connection", async () => {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    await conn.closedByPeer();
    resolve();
  });
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  const reader = streamedBody(response.body).getReader();
  const pending = reader.read();
  await within(reader.cancel(), "the cancel");
  assert.equal((await pending).done, true);
  await within(closed, "closed");
});

Deno.test("abort via ctx.signal while waiting for the head", async () => {
  const { promise: requested, resolve: onRequest } = Promise.withResolvers<void>();
  const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    await conn.readRequest();
    onRequest();
    await conn.closedByPeer();
    onClosed();
  });
  using client = transport({ responseTimeoutMs: 60_000 });
  const abort = new AbortController();
  using ctx = context(abort.signal);
  const sending = client.send(ctx, server.backend, request());
  await requested;
  abort.abort();
  await assert.rejects(within(sending, "the rejection"), (error: unknown) => {
    assert.ok(error instanceof DOMException);
    assert.equal(error.name, "AbortError");
    return true;
  });
  await within(closed, "closed");
});

Deno.test("abort via ctx.signal while the body is being read", async () => {
  const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome");
    await conn.closedByPeer();
    onClosed();
  });
  using client = transport({ responseTimeoutMs: 60_000 });
  const abort = new AbortController();
  using ctx = context(abort.signal);
  const response = await client.send(ctx, server.backend, request());
  const reader = streamedBody(response.body).getReader();
  assert.equal(decoder.decode((await reader.read()).value), "some");
  abort.abort();
  await assert.rejects(reader.read(), (error: unknown) => error instanceof DOMException);
  await within(closed, "closed");
});

Deno.test("the body is pulled: a slow consumer does not make the transport read ahead", async () => {
  const total = 64 * 1024 * 1024;
  let written = 0;
  await using server = new TestServer(async (conn) => {
    if (await conn.readRequest() === null) return;
    await conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
    const block = new Uint8Array(1024 * 1024);
    try {
      while (written < total) {
        await conn.write(block);
        written += block.length;
      }
    } catch {
      // the client went away
    }
  });
  using client = transport();
  using ctx = context();
  const response = await client.send(ctx, server.backend, request());
  const reader = streamedBody(response.body).getReader();
  await reader.read();
  // Nothing announces "the transport did not read": give a greedy reader time to show itself.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.ok(written < total / 2, `server wrote ${written} bytes for one chunk read`);
  await reader.cancel();
});

// ---------------------------------------------------------------------------
// Parsers, unit level

Deno.test("chunked decoder handles input split at every byte", () => {
  const wire = encoder.encode(
    "5;a=b\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: 1\r\n\r\n",
  );
  for (let step = 1; step <= 7; step++) {
    const chunkedDecoder = new ChunkedDecoder();
    const out: Uint8Array[] = [];
    const sink = { enqueue: (chunk: Uint8Array) => out.push(chunk) };
    let pending: Uint8Array = new Uint8Array(0);
    for (let at = 0; at < wire.length; at += step) {
      pending = concat([pending, wire.subarray(at, at + step)]);
      const consumed = chunkedDecoder.decode(pending, 0, pending.length, sink);
      pending = pending.slice(consumed);
    }
    assert.equal(chunkedDecoder.done, true);
    assert.equal(pending.length, 0);
    assert.equal(decoder.decode(concat(out)), "helloabcdefghijklmnopqrstuvwxyz");
  }
});

Deno.test("chunked decoder rejects bad size lines", () => {
  for (
    const wire of ["g\r\n", "\r\n", "5 x\r\n", "5\n", "12345678901234\r\n", "5\r\nhello\n0\r\n"]
  ) {
    const bytes = encoder.encode(wire);
    assert.throws(
      () => new ChunkedDecoder().decode(bytes, 0, bytes.length, { enqueue() {} }),
      isUpstreamError("invalid_response"),
      wire,
    );
  }
});

Deno.test("head scanning finds the end across reads and refuses bare LF", () => {
  const bytes = encoder.encode("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody");
  assert.equal(findHeadEnd(bytes, 0, 0, 20), -1);
  assert.equal(findHeadEnd(bytes, 0, 17, bytes.length), 25);
  const head = parseResponseHead(bytes, 0, 25);
  assert.equal(new Headers(head.headers).get("a"), "b");
  assert.throws(
    () => findHeadEnd(encoder.encode("HTTP/1.1 200 OK\n\n"), 0, 0, 17),
    isUpstreamError("invalid_response"),
  );
});

Deno.test("request head: framing header and latin-1 encoding", () => {
  const scratch = new Uint8Array(16);
  const head = encodeRequestHead(
    "POST",
    "/p",
    [["host", "h"], ["x-l", "caf\u00e9"]],
    true,
    scratch,
  );
  assert.equal(head.framing, "chunked");
  assert.deepEqual(
    head.bytes,
    concat([
      encoder.encode("POST /p HTTP/1.1\r\nhost: h\r\nx-l: caf"),
      new Uint8Array([0xe9]),
      encoder.encode("\r\ntransfer-encoding: chunked\r\n\r\n"),
    ]),
  );
  assert.throws(
    () => encodeRequestHead("GET", "/", [["content-length", "5"]], false, scratch),
    TypeError,
  );
});
