/**
 * The access log: its two formats, the batching stdout writer, and one line
 * per request through a real balancer with every field checked.
 */

import assert from "node:assert/strict";
import { AccessLog, type AccessLogEntry, BatchedWriter } from "../src/observability/access_log.ts";
import {
  backendsYaml,
  baseUrl,
  defaultPool,
  startBackend,
  startNamedBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const ENTRY: AccessLogEntry = {
  time: "2026-11-27T16:51:07.123Z",
  client: "127.0.0.1",
  method: "GET",
  target: '/a%20b?q="x"',
  status: 200,
  bytes: 12,
  duration_ms: 1.234,
  upstream_ms: 0.8,
  route: "default",
  pool: "default",
  backend: "http://127.0.0.1:9001",
  attempts: 1,
  request_id: "9f86d081-1",
};

const KEYS = [
  "time",
  "client",
  "method",
  "target",
  "status",
  "bytes",
  "duration_ms",
  "upstream_ms",
  "route",
  "pool",
  "backend",
  "attempts",
  "request_id",
];

function collect(format: "json" | "common" | "off"): { log: AccessLog; lines: string[] } {
  const lines: string[] = [];
  return { log: new AccessLog(format, (line) => lines.push(line)), lines };
}

Deno.test("access log: json lines carry every key, in order", () => {
  const { log, lines } = collect("json");
  log.record(ENTRY);
  assert.equal(lines.length, 1);
  assert.deepEqual(Object.keys(JSON.parse(lines[0])), KEYS);
  assert.deepEqual(JSON.parse(lines[0]), ENTRY);
});

Deno.test("access log: common is the Common Log Format in UTC; off writes nothing", () => {
  const common = collect("common");
  common.log.record(ENTRY);
  common.log.record({ ...ENTRY, bytes: 0, client: "::1", time: "2026-01-02T03:04:05.000Z" });
  assert.deepEqual(common.lines, [
    '127.0.0.1 - - [27/Nov/2026:16:51:07 +0000] "GET /a%20b?q=\\"x\\" HTTP/1.1" 200 12',
    '::1 - - [02/Jan/2026:03:04:05 +0000] "GET /a%20b?q=\\"x\\" HTTP/1.1" 200 -',
  ]);
  const off = collect("off");
  off.log.record(ENTRY);
  assert.deepEqual(off.lines, []);
  assert.equal(off.log.enabled, false);
});

Deno.test("access log: the stdout writer batches lines into one write, and close flushes", async () => {
  const writes: string[] = [];
  const decoder = new TextDecoder();
  const writer = new BatchedWriter((bytes) => {
    writes.push(decoder.decode(bytes));
    return bytes.length;
  }, 10);
  writer.line("one");
  writer.line("two");
  assert.deepEqual(writes, [], "nothing written yet");
  await waitFor(() => writes.length > 0, "the batch");
  assert.deepEqual(writes, ["one\ntwo\n"]);
  writer.line("three");
  writer.close();
  assert.deepEqual(writes, ["one\ntwo\n", "three\n"]);
  writer.line("after close");
  assert.equal(writes.at(-1), "after close\n", "written at once after close");
});

Deno.test("access log: the writer copes with partial writes", () => {
  let written = "";
  const decoder = new TextDecoder();
  const writer = new BatchedWriter((bytes) => {
    const count = Math.min(3, bytes.length);
    written += decoder.decode(bytes.subarray(0, count));
    return count;
  });
  writer.line("abcdefgh");
  writer.close();
  assert.equal(written, "abcdefgh\n");
});

Deno.test("access log: one JSON line per request, every field from the real exchange", async () => {
  await using backend = startBackend(() => new Response("hello world"));
  const lines: string[] = [];
  await using lb = startTestBalancer(backendsYaml([backend.url]), () => {}, (l) => lines.push(l));
  const before = Date.now();
  const response = await fetch(`${baseUrl(lb)}/path%2Fx?a=1&a=2`, {
    method: "POST",
    body: "ping",
    headers: { "x-request-id": "client-id-7" },
  });
  assert.equal(await response.text(), "hello world");
  await waitFor(() => lines.length === 1, "the log line");
  const entry = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(entry), KEYS);
  assert.ok(Date.parse(entry.time) >= before - 1 && Date.parse(entry.time) <= Date.now());
  assert.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(entry.client, "127.0.0.1");
  assert.equal(entry.method, "POST");
  assert.equal(entry.target, "/path%2Fx?a=1&a=2");
  assert.equal(entry.status, 200);
  assert.equal(entry.bytes, 11);
  assert.equal(typeof entry.duration_ms, "number");
  assert.ok(entry.upstream_ms > 0 && entry.upstream_ms <= entry.duration_ms);
  assert.equal(entry.route, "default");
  assert.equal(entry.pool, "default");
  assert.equal(entry.backend, backend.url);
  assert.equal(entry.attempts, 1);
  assert.equal(entry.request_id, "client-id-7");
});

Deno.test("access log: a streamed body is counted whole, and logged once it ended", async () => {
  const chunk = new Uint8Array(64 * 1024).fill(1);
  const { promise: finish, resolve: release } = Promise.withResolvers<void>();
  await using backend = startBackend(() =>
    new Response(
      new ReadableStream({
        async start(controller) {
          for (let i = 0; i < 8; i++) controller.enqueue(chunk);
          await finish;
          for (let i = 0; i < 8; i++) controller.enqueue(chunk);
          controller.close();
        },
      }),
    )
  );
  const lines: string[] = [];
  await using lb = startTestBalancer(backendsYaml([backend.url]), () => {}, (l) => lines.push(l));
  const response = await fetch(baseUrl(lb));
  const reader = response.body!.getReader();
  let received = (await reader.read()).value!.length;
  assert.deepEqual(lines, [], "no line while the body streams");
  release();
  for (let part = await reader.read(); !part.done; part = await reader.read()) {
    received += part.value.length;
  }
  assert.equal(received, 16 * chunk.length);
  await waitFor(() => lines.length === 1, "the log line");
  assert.equal(JSON.parse(lines[0]).bytes, 16 * chunk.length);
});

Deno.test("access log: a client that leaves mid-body still gets its line, with the bytes sent", async () => {
  await using backend = startBackend(() =>
    new Response(
      new ReadableStream({
        pull: (controller) => controller.enqueue(new Uint8Array(16 * 1024)),
      }, { highWaterMark: 0 }),
    )
  );
  const lines: string[] = [];
  await using lb = startTestBalancer(backendsYaml([backend.url]), () => {}, (l) => lines.push(l));
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: lb.addr.port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    await conn.read(new Uint8Array(1024));
  }
  await waitFor(() => lines.length === 1, "the log line");
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.status, 200);
  assert.ok(entry.bytes > 0, "some bytes went out");
  assert.equal((await lb.proxy.telemetry.status()).backends[0].in_flight, 0);
});

Deno.test("access log: a retried request logs both attempts and the backend that answered", async () => {
  const dead = startBackend(() => new Response("never"));
  await dead.close();
  await using alive = startNamedBackend();
  const lines: string[] = [];
  await using lb = startTestBalancer(
    backendsYaml([dead.url, alive.url]),
    () => {},
    (l) => lines.push(l),
  );
  await (await fetch(baseUrl(lb))).text();
  await waitFor(() => lines.length === 1, "the log line");
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.attempts, 2);
  assert.equal(entry.backend, alive.url);
  assert.equal(entry.status, 200);
});

Deno.test("access log: the balancer's own errors are logged with their body size", async () => {
  await using backend = startNamedBackend();
  const lines: string[] = [];
  await using lb = startTestBalancer(backendsYaml([backend.url]), () => {}, (l) => lines.push(l));
  defaultPool(lb).balancer.backends[0].healthy = false;
  const response = await fetch(`${baseUrl(lb)}/x`);
  const body = await response.text();
  await waitFor(() => lines.length === 1, "the log line");
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.status, 503);
  assert.equal(entry.bytes, body.length);
  assert.equal(entry.backend, null);
  assert.equal(entry.upstream_ms, null);
  assert.equal(entry.attempts, 0);
  assert.equal(entry.request_id, response.headers.get("x-request-id"));
});

Deno.test("access log: logging.access off writes nothing; common writes CLF lines", async () => {
  await using backend = startNamedBackend();
  for (
    const [format, pattern] of [["off", undefined], [
      "common",
      /^127\.0\.0\.1 - - \[.+\] "GET \/c HTTP\/1\.1" 200 \d+$/,
    ]] as const
  ) {
    const lines: string[] = [];
    await using lb = startTestBalancer(
      `${backendsYaml([backend.url])}logging: { access: ${format} }\n`,
      () => {},
      (l) => lines.push(l),
    );
    await (await fetch(`${baseUrl(lb)}/c`)).text();
    await lb.shutdown();
    if (pattern === undefined) assert.deepEqual(lines, []);
    else {
      assert.equal(lines.length, 1);
      assert.match(lines[0], pattern);
    }
  }
});
