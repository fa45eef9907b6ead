/**
 * Limits end to end: limits.max_body (declared and streamed), max_in_flight
 * with its queue and timeouts.queue, and slow clients that never finish their
 * headers.
 */

import assert from "node:assert/strict";
import {
  backendsYaml,
  baseUrl,
  defaultPool,
  headerValues,
  rawRequest,
  startBackend,
  startRawBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const encoder = new TextEncoder();

Deno.test("limits: a declared body over max_body is 413 before anything reaches a backend", async () => {
  let reached = 0;
  await using backend = startBackend((request) => {
    if (request.method === "POST") reached++;
    return new Response("ok");
  });
  await using lb = startTestBalancer(backendsYaml([backend.url]) + "limits: { max_body: 1KiB }\n");
  const response = await fetch(baseUrl(lb), { method: "POST", body: "x".repeat(1025) });
  assert.equal(response.status, 413);
  assert.equal(
    await response.text(),
    "413 Content Too Large: the request body is larger than 1024 bytes\n",
  );
  const raw = await rawRequest(
    lb.addr.port,
    `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n${"x".repeat(1025)}`,
  );
  assert.equal(raw.status, 413);
  assert.deepEqual(headerValues(raw, "connection"), ["close"], "one Connection: close");
  const fits = await fetch(baseUrl(lb), { method: "POST", body: "x".repeat(1024) });
  assert.equal(await fits.text(), "ok");
  assert.equal(reached, 1);
});

Deno.test("limits: a chunked body crossing max_body is cut, answered 413, the upstream request aborted", async () => {
  const { promise: upstreamEnded, resolve: upstreamEnd } = Promise.withResolvers<string>();
  await using backend = startBackend(async (request) => {
    if (request.method !== "PUT") return new Response("health");
    try {
      const body = await request.arrayBuffer();
      upstreamEnd(`complete: ${body.byteLength}`);
    } catch (error) {
      upstreamEnd(`aborted: ${(error as Error).name}`);
    }
    return new Response("ok");
  });
  await using lb = startTestBalancer(backendsYaml([backend.url]) + "limits: { max_body: 64KiB }\n");
  const chunk = new Uint8Array(16 * 1024);
  const body = ReadableStream.from((function* () {
    for (let i = 0; i < 8; i++) yield chunk;
  })());
  const response = await fetch(baseUrl(lb), { method: "PUT", body });
  assert.equal(response.status, 413);
  await response.body?.cancel();
  assert.match(await upstreamEnded, /^aborted/);
});

Deno.test("limits: beyond max_in_flight requests queue, a full queue or a long wait is 503", async () => {
  const gates: (() => void)[] = [];
  let started = 0;
  await using backend = startBackend(async (request) => {
    if (new URL(request.url).pathname === "/") return new Response("health");
    started++;
    const { promise, resolve } = Promise.withResolvers<void>();
    gates.push(resolve);
    await promise;
    return new Response("done");
  });
  await using lb = startTestBalancer(
    backendsYaml([backend.url]) +
      "limits: { max_in_flight: 2, queue: 1 }\ntimeouts: { queue: 5s }\n",
  );
  const slow = [0, 1, 2].map(() => fetch(`${baseUrl(lb)}/work`));
  const [target] = defaultPool(lb).balancer.backends;
  await waitFor(
    () => started === 2 && lb.proxy.limiter.occupancy(target).waiting === 1,
    "two requests in flight and one queued",
  );
  const refused = await fetch(`${baseUrl(lb)}/work`);
  assert.equal(refused.status, 503);
  assert.equal(
    await refused.text(),
    "503 Service Unavailable: the backend is at its limit and its queue is full\n",
  );
  assert.equal(started, 2, "the queued request waits");
  gates.shift()!();
  await waitFor(() => started === 3, "the queued request to start");
  for (const gate of gates.splice(0)) gate();
  const answers = await Promise.all(slow.map(async (pending) => await (await pending).text()));
  assert.deepEqual(answers, ["done", "done", "done"]);
});

Deno.test("limits: a request waiting longer than timeouts.queue gets 503", async () => {
  const { promise: release, resolve: releaseAll } = Promise.withResolvers<void>();
  await using backend = startBackend(async (request) => {
    if (new URL(request.url).pathname === "/work") await release;
    return new Response("done");
  });
  await using lb = startTestBalancer(
    backendsYaml([backend.url]) + "limits: { max_in_flight: 1 }\ntimeouts: { queue: 50ms }\n",
  );
  const busy = fetch(`${baseUrl(lb)}/work`);
  try {
    const started = performance.now();
    const [target] = defaultPool(lb).balancer.backends;
    await waitFor(() => lb.proxy.limiter.occupancy(target).active === 1, "the first request");
    const waited = await fetch(`${baseUrl(lb)}/work`);
    assert.equal(waited.status, 503);
    assert.equal(
      await waited.text(),
      "503 Service Unavailable: no free slot on the backend within 50 ms\n",
    );
    assert.ok(performance.now() - started >= 50);
  } finally {
    releaseAll();
    await (await busy).body?.cancel();
  }
});

Deno.test("limits: 200 clients sending their headers slowly do not keep others from being served", async () => {
  await using backend = startBackend(() => new Response("served"));
  await using lb = startTestBalancer(backendsYaml([backend.url]));
  const slow: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: lb.addr.port });
      await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: "));
      slow.push(conn);
    }
    for (let i = 0; i < 5; i++) {
      const response = await rawRequest(
        lb.addr.port,
        "GET / HTTP/1.1\r\nHost: fast\r\nConnection: close\r\n\r\n",
      );
      assert.equal(response.status, 200);
      assert.equal(new TextDecoder().decode(response.body), "served");
    }
    // and one more byte from each slow client does not change that
    for (const conn of slow) await conn.write(encoder.encode("a"));
    const after = await fetch(baseUrl(lb));
    assert.equal(await after.text(), "served");
  } finally {
    for (const conn of slow) conn.close();
  }
});

for (const transport of ["http1", "fetch"]) {
  Deno.test(`${transport}: an upstream body silent longer than timeouts.idle is cut and the client connection closed`, async () => {
    const { promise: done, resolve: finish } = Promise.withResolvers<void>();
    await using backend = startRawBackend(async (conn) => {
      const request = new Uint8Array(4096);
      const count = await conn.read(request);
      const head = new TextDecoder().decode(request.subarray(0, count ?? 0));
      if (head.startsWith("GET / ")) {
        await conn.write(encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        return;
      }
      await conn.write(encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part;"));
      await done;
    });
    await using lb = startTestBalancer(
      `transport: ${transport}\n${backendsYaml([backend.url])}timeouts: { idle: 100ms }\n`,
    );
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: lb.addr.port });
      await conn.write(encoder.encode("GET /stall HTTP/1.1\r\nHost: a\r\n\r\n"));
      const started = performance.now();
      // Read until the balancer closes the connection; a guard gives up after 5 s.
      let closedByGuard = false;
      const guard = setTimeout(() => {
        closedByGuard = true;
        conn.close();
      }, 5000);
      let text = "";
      const buffer = new Uint8Array(4096);
      for (let reads = 0; reads < 100; reads++) {
        const count = await conn.read(buffer).catch(() => null);
        if (count === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, count));
      }
      clearTimeout(guard);
      if (!closedByGuard) conn.close();
      assert.equal(closedByGuard, false, "the balancer closed the client connection");
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nfirst part;$/);
      assert.ok(performance.now() - started >= 100, "closed after the idle timeout");
    } finally {
      finish();
    }
  });
}

Deno.test("http1: pooled connections idle longer than timeouts.pool_idle are closed", async () => {
  await using backend = startBackend(() => new Response("ok"));
  await using lb = startTestBalancer(
    backendsYaml([backend.url]) +
      "health_check: { interval: 1h }\ntimeouts: { pool_idle: 150ms }\n",
  );
  const [target] = defaultPool(lb).balancer.backends;
  const stats = () => defaultPool(lb).transports.http1.connectionStats(target);
  for (let i = 0; i < 3; i++) assert.equal(await (await fetch(baseUrl(lb))).text(), "ok");
  assert.equal(stats().idle, 1, "one connection, reused while it is fresh");
  assert.equal(stats().reused, 2);
  const idleSince = performance.now();
  await waitFor(() => stats().idle === 0, "the idle connection to close", 2000);
  assert.ok(performance.now() - idleSince >= 100, "not before pool_idle");
  assert.equal(await (await fetch(baseUrl(lb))).text(), "ok");
  assert.equal(stats().opened, 2, "a fresh connection after that");
});
