/**
 * The bad-input suite: raw bytes from clients and from backends. Each case
 * checks what the client actually gets (a clear 4xx/5xx, or a sanitised
 * message where RFC 9112 allows it), that the balancer keeps serving, and
 * that the pooled backend connection it reuses next is not desynchronised.
 * The rule behind every case: a backend never receives a message it could
 * frame differently from the balancer, and a client never receives a status
 * outside 100-599.
 */

import assert from "node:assert/strict";
import type { Balancer } from "../src/server.ts";
import {
  backendsYaml,
  baseUrl,
  defaultPool,
  startRawBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the strict backend received: each complete request's head, and incomplete ones. */
interface Received {
  heads: string[];
  /** Targets of requests whose body never arrived whole. */
  incomplete: string[];
}

/**
 * A keep-alive backend that frames requests strictly (one Content-Length or
 * chunked, never both) and answers each with `target bodyLength`. `misbehave`
 * may take over the answer for a target: it gets the connection and returns
 * whether to keep serving it.
 */
function startStrictBackend(
  misbehave: (target: string, conn: Deno.Conn) => Promise<boolean> | undefined = () => undefined,
) {
  const received: Received = { heads: [], incomplete: [] };
  const backend = startRawBackend(async (conn) => {
    let buffered = new Uint8Array(0);
    const more = async (): Promise<boolean> => {
      const chunk = new Uint8Array(64 * 1024);
      const count = await conn.read(chunk);
      if (count === null) return false;
      const joined = new Uint8Array(buffered.length + count);
      joined.set(buffered);
      joined.set(chunk.subarray(0, count), buffered.length);
      buffered = joined;
      return true;
    };
    const indexOf = (text: string) => decoder.decode(buffered).indexOf(text);
    for (;;) {
      while (indexOf("\r\n\r\n") === -1) if (!await more()) return;
      const headEnd = indexOf("\r\n\r\n");
      const head = decoder.decode(buffered.subarray(0, headEnd));
      buffered = buffered.subarray(headEnd + 4);
      const target = head.split(" ")[1];
      const lines = head.toLowerCase().split("\r\n").slice(1);
      const lengths = lines.filter((line) => line.startsWith("content-length:"));
      const chunked = lines.some((line) => line.startsWith("transfer-encoding:"));
      let bodyLength = 0;
      if (chunked) {
        for (;;) {
          while (indexOf("\r\n") === -1) {
            if (!await more()) return void received.incomplete.push(target);
          }
          const line = decoder.decode(buffered.subarray(0, indexOf("\r\n")));
          const size = parseInt(line, 16);
          while (buffered.length < line.length + 2 + size + 2) {
            if (!await more()) return void received.incomplete.push(target);
          }
          buffered = buffered.subarray(line.length + 2 + size + 2);
          bodyLength += size;
          if (size === 0) break;
        }
      } else if (lengths.length > 0) {
        bodyLength = Number(lengths[0].split(":")[1]);
        while (buffered.length < bodyLength) {
          if (!await more()) return void received.incomplete.push(target);
        }
        buffered = buffered.subarray(bodyLength);
      }
      received.heads.push(head);
      const takeOver = misbehave(target, conn);
      if (takeOver !== undefined) {
        if (await takeOver) continue;
        return;
      }
      const answer = `${target} ${bodyLength}`;
      await conn.write(encoder.encode(
        `HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\n\r\n${answer}`,
      ));
    }
  });
  return Object.assign(backend, { received });
}

/** Sends raw bytes on a new connection; the response head and body as text, "" when none came. */
async function exchange(port: number, bytes: string, waitMs = 2000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), waitMs);
  let text = "";
  try {
    await conn.write(encoder.encode(bytes));
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const count = await conn.read(buffer);
      if (count === null) break;
      text += decoder.decode(buffer.subarray(0, count));
      const headEnd = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)/i.exec(text);
      if (headEnd !== -1 && length !== null && text.length >= headEnd + 4 + Number(length[1])) {
        break;
      }
    }
  } catch {
    // the balancer closed the connection: what came so far is the answer
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
  return text;
}

/**
 * The balancer still serves, and the pooled connection it reuses answers each
 * request with its own response: two requests in a row, told apart by target.
 */
async function assertServesInStep(lb: Balancer, label: string): Promise<void> {
  for (const target of [`/after-${label}-1`, `/after-${label}-2`]) {
    const response = await fetch(`${baseUrl(lb)}${target}`);
    assert.equal(response.status, 200, label);
    assert.equal(await response.text(), `${target} 0`, `${label}: answered in step`);
  }
}

const HEALTH = "health_check: { path: /health, interval: 1h, unhealthy_threshold: 100 }\n";

/** A head the backend could frame differently from the balancer, or with a stray target. */
function ambiguity(head: string): string | undefined {
  const lines = head.toLowerCase().split("\r\n");
  const lengths = lines.filter((line) => line.startsWith("content-length:"));
  const encodings = lines.filter((line) => line.startsWith("transfer-encoding:"));
  if (lengths.length > 1) return "two Content-Length fields";
  if (lengths.length > 0 && encodings.length > 0) return "Content-Length with Transfer-Encoding";
  if (encodings.some((line) => line.split(":")[1].trim() !== "chunked")) return "not chunked";
  if (/[\0\r]/.test(head.replaceAll("\r\n", ""))) return "NUL or bare CR";
  if (!lines[0].split(" ")[1].startsWith("/")) return "not origin-form";
  if (lines[0].startsWith("connect ")) return "CONNECT";
  return undefined;
}

/** Client-side cases: the request bytes, and the status line the client must get ("" for none). */
const CLIENT_CASES: [name: string, request: string, expected: RegExp][] = [
  ["garbage request line", "HELLO THERE\r\n\r\n", /^HTTP\/1\.1 400 /],
  [
    "absolute-form target, turned into origin-form",
    "GET http://example.com/p/a?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
    /^HTTP\/1\.1 200 [^]*\r\n\r\n\/p\/a\?q=1 0$/,
  ],
  [
    "CONNECT",
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    /^HTTP\/1\.1 501 [^]*501 Not Implemented: the balancer does not tunnel CONNECT\n$/,
  ],
  [
    "Content-Length and Transfer-Encoding together",
    "POST /clte HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "3\r\nabc\r\n0\r\n\r\n",
    /^HTTP\/1\.1 400 /,
  ],
  [
    "two different Content-Lengths",
    "POST /twocl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    /^HTTP\/1\.1 400 /,
  ],
  [
    "an invalid chunk size: the connection closes without an answer",
    "POST /badchunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    /^$/,
  ],
  [
    "obs-fold",
    "GET /fold HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
    /^HTTP\/1\.1 400 /,
  ],
  ["NUL in a header", "GET /nul HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n", /^HTTP\/1\.1 400 /],
  [
    "100 KiB of headers",
    `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(100 * 1024)}\r\n\r\n`,
    /^HTTP\/1\.1 4(00|31) /,
  ],
  [
    "10,000 headers",
    `GET /many HTTP/1.1\r\nHost: a\r\n${
      Array.from({ length: 10_000 }, (_, i) => `X-H${i}: v\r\n`).join("")
    }\r\n`,
    /^HTTP\/1\.1 4(00|31) /,
  ],
];

Deno.test("bad input from clients: a clear 4xx (or a sanitised request), and the balancer keeps serving in step", async () => {
  await using backend = startStrictBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]) + HEALTH);
  await assertServesInStep(lb, "start");
  for (const [name, request, expected] of CLIENT_CASES) {
    const answer = await exchange(lb.addr.port, request);
    assert.match(answer, expected, name);
    assert.doesNotMatch(answer, /\bat .*\.ts:\d+/, `${name}: no stack trace`);
    await assertServesInStep(lb, name.split(" ")[0]);
  }
  const stats = defaultPool(lb).transports.http1.connectionStats(
    defaultPool(lb).balancer.backends[0],
  );
  assert.ok((stats.reused ?? 0) > 10, "the checks went over reused pooled connections");
  for (const head of backend.received.heads) {
    assert.equal(ambiguity(head), undefined, head);
  }
  assert.ok(!backend.received.heads.some((head) => head.includes("/badchunk")));
  assert.deepEqual(backend.received.incomplete.filter((t) => t !== "/badchunk"), []);
});

Deno.test("bad input from clients: a body shorter than its Content-Length, then a close, never reaches a backend whole", async () => {
  await using backend = startStrictBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]) + HEALTH);
  const answer = await exchange(
    lb.addr.port,
    "POST /short HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
    200,
  );
  assert.equal(answer, "", "the client left before any answer");
  await assertServesInStep(lb, "short");
  assert.ok(!backend.received.heads.some((head) => head.includes("/short")));
});

/** Backend-side cases: what the backend does for target `/case`, and what the client must get. */
const BACKEND_CASES: [
  name: string,
  misbehave: (conn: Deno.Conn) => Promise<boolean>,
  expected: { status: number; body: RegExp | "aborted" },
][] = [
  [
    "no status line",
    (conn) => write(conn, "garbage\r\n\r\n", false),
    { status: 502, body: /^502 Bad Gateway: the backend sent an invalid response\n$/ },
  ],
  [
    "an HTTP/0.9 reply",
    (conn) => write(conn, "<html>hello</html>", false),
    { status: 502, body: /^502 Bad Gateway: / },
  ],
  [
    "status 999",
    (conn) => write(conn, "HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n", true),
    { status: 502, body: /invalid response/ },
  ],
  [
    "status 42",
    (conn) => write(conn, "HTTP/1.1 42 Odd\r\nContent-Length: 0\r\n\r\n", true),
    { status: 502, body: /invalid response/ },
  ],
  [
    "a header value with a bare CR",
    (conn) =>
      write(
        conn,
        "HTTP/1.1 200 OK\r\nX-Bad: a\rInjected: yes\r\nContent-Length: 2\r\n\r\nok",
        true,
      ),
    { status: 502, body: /invalid response/ },
  ],
  [
    "a body shorter than its Content-Length, then a close",
    (conn) => write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", false),
    { status: 200, body: "aborted" },
  ],
  [
    "bad chunked encoding",
    (conn) =>
      write(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", true),
    { status: 200, body: "aborted" },
  ],
  [
    "a reset mid-body",
    (conn) => write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789", false),
    { status: 200, body: "aborted" },
  ],
  [
    "a reply to a request never sent (extra bytes on the idle connection)",
    async (conn) => {
      await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n/case 0", true);
      await idle.promise; // the client has its answer: the connection is back in the pool
      await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!", true);
      unsolicited.resolve();
      return true;
    },
    { status: 200, body: /^\/case 0$/ },
  ],
];

/** The extra-bytes case: the client got its answer, then the backend sent its unsolicited one. */
const idle = Promise.withResolvers<void>();
const unsolicited = Promise.withResolvers<void>();

async function write(conn: Deno.Conn, text: string, keepServing: boolean): Promise<boolean> {
  await conn.write(encoder.encode(text));
  return keepServing;
}

Deno.test("bad input from backends: 502 for what cannot be framed, aborted bodies, never a desync", async () => {
  let current: ((conn: Deno.Conn) => Promise<boolean>) | undefined;
  await using backend = startStrictBackend((target, conn) => {
    if (target !== "/case" || current === undefined) return undefined;
    const misbehave = current;
    current = undefined;
    return misbehave(conn);
  });
  await using lb = startTestBalancer(backendsYaml([backend.url]) + HEALTH, () => {});
  for (const [name, misbehave, expected] of BACKEND_CASES) {
    current = misbehave;
    const response = await fetch(`${baseUrl(lb)}/case`);
    assert.equal(response.status, expected.status, name);
    if (expected.body === "aborted") {
      await assert.rejects(response.text(), `${name}: the client sees the body cut off`);
    } else {
      assert.match(await response.text(), expected.body, name);
    }
    if (name.startsWith("a reply")) {
      idle.resolve();
      await unsolicited.promise;
      await waitFor(
        () =>
          defaultPool(lb).transports.http1.connectionStats(defaultPool(lb).balancer.backends[0])
            .idle === 0,
        "the pool to drop the connection that talked out of turn",
      );
    }
    await assertServesInStep(lb, name.split(" ")[1]);
  }
});

Deno.test("bad input from backends: one that accepts and never answers is a 504", async () => {
  const { promise: done, resolve: finish } = Promise.withResolvers<void>();
  await using silent = startRawBackend(async (conn) => {
    await conn.read(new Uint8Array(4096));
    await done;
  });
  await using lb = startTestBalancer(
    backendsYaml([silent.url]) + HEALTH + "timeouts: { response: 100ms }\n",
  );
  try {
    const response = await fetch(`${baseUrl(lb)}/never`);
    assert.equal(response.status, 504);
    assert.equal(
      await response.text(),
      "504 Gateway Timeout: the backend sent no response headers in time\n",
    );
  } finally {
    finish();
  }
});
