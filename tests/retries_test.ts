/**
 * Safe retries end to end: idempotent requests go on to another backend after
 * a failure before the response head, POST and PATCH never once sent, bodies
 * replayed only up to retries.max_body, attempts capped, the budget honoured.
 */

import assert from "node:assert/strict";
import {
  backendsYaml,
  baseUrl,
  startBackend,
  startRawBackend,
  startTestBalancer,
} from "./helpers.ts";

/** A backend that reads the request, then closes without answering; counts requests, not probes. */
function startResettingBackend() {
  const seen = { count: 0 };
  const backend = startRawBackend(async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    const count = await conn.read(buffer);
    if (!new TextDecoder().decode(buffer.subarray(0, count ?? 0)).includes(" /health ")) {
      seen.count++;
    }
  });
  return Object.assign(backend, { seen });
}

/** A backend answering with what it received. */
function startEchoBackend() {
  const seen = { count: 0 };
  const backend = startBackend(async (request) => {
    if (new URL(request.url).pathname !== "/health") seen.count++;
    const body = await request.text();
    return Response.json({ method: request.method, body });
  });
  return Object.assign(backend, { seen });
}

/** Round robin over [failing, good]: the first attempt always hits the failing one. */
const HEALTH = "health_check: { path: /health, interval: 1h, unhealthy_threshold: 100 }\n";

Deno.test("retries: an idempotent request goes on to another backend after a reset", async () => {
  await using failing = startResettingBackend();
  await using good = startEchoBackend();
  await using lb = startTestBalancer(backendsYaml([failing.url, good.url]) + HEALTH);
  for (const method of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]) {
    const response = await fetch(baseUrl(lb), { method, body: method === "PUT" ? "data" : null });
    assert.equal(response.status, 200, method);
    if (method !== "HEAD") {
      assert.deepEqual(await response.json(), { method, body: method === "PUT" ? "data" : "" });
    } else await response.body?.cancel();
    // round robin: the next request starts on the failing backend again
    await (await fetch(baseUrl(lb))).body?.cancel();
  }
  assert.equal(failing.seen.count, 5, "each first attempt reached the failing backend");
});

Deno.test("retries: POST and PATCH are never sent twice once bytes went out; Idempotency-Key allows it", async () => {
  await using failing = startResettingBackend();
  await using good = startEchoBackend();
  await using lb = startTestBalancer(backendsYaml([failing.url, good.url]) + HEALTH);
  for (const method of ["POST", "PATCH"]) {
    const response = await fetch(baseUrl(lb), { method, body: "pay once" });
    await response.body?.cancel();
    assert.equal(response.status, 502, method);
    await (await fetch(baseUrl(lb))).body?.cancel(); // to the good one: the next starts on failing
  }
  assert.equal(good.seen.count, 2, "only the two GETs reached the good backend");
  const keyed = await fetch(baseUrl(lb), {
    method: "POST",
    body: "pay once",
    headers: { "idempotency-key": "order-7" },
  });
  assert.equal(keyed.status, 200);
  assert.deepEqual(await keyed.json(), { method: "POST", body: "pay once" });
});

Deno.test("retries: a POST that never reached a backend (refused) goes to another", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refusing = `http://127.0.0.1:${(closed.addr as Deno.NetAddr).port}`;
  closed.close();
  await using good = startEchoBackend();
  await using lb = startTestBalancer(backendsYaml([refusing, good.url]) + HEALTH);
  const response = await fetch(baseUrl(lb), { method: "POST", body: "once" });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { method: "POST", body: "once" });
});

Deno.test("retries: a body up to retries.max_body is replayed intact, a larger one is not retried", async () => {
  await using failing = startResettingBackend();
  await using good = startEchoBackend();
  await using lb = startTestBalancer(
    backendsYaml([failing.url, good.url]) + HEALTH + "retries: { max_body: 1KiB }\n",
  );
  const small = "x".repeat(1024);
  const replayed = await fetch(baseUrl(lb), { method: "PUT", body: small });
  assert.equal(replayed.status, 200);
  assert.deepEqual(await replayed.json(), { method: "PUT", body: small });
  await (await fetch(baseUrl(lb))).body?.cancel();
  // A streamed body: no Content-Length, so nothing is known before it is sent.
  const large = ReadableStream.from([new TextEncoder().encode("y".repeat(1025))]);
  const refused = await fetch(baseUrl(lb), { method: "PUT", body: large });
  await refused.body?.cancel();
  assert.equal(refused.status, 502);
  assert.equal(good.seen.count, 2, "the large PUT never reached the good backend");
});

Deno.test("retries: attempts caps the tries, and no backend is tried twice for one request", async () => {
  const failing = [startResettingBackend(), startResettingBackend(), startResettingBackend()];
  try {
    const urls = failing.map((backend) => backend.url);
    await using two = startTestBalancer(backendsYaml(urls) + HEALTH);
    const first = await fetch(baseUrl(two));
    await first.body?.cancel();
    assert.equal(first.status, 502);
    const counts = failing.map((backend) => backend.seen.count);
    assert.deepEqual(counts.toSorted(), [0, 1, 1], "2 attempts on 2 backends");
    await using many = startTestBalancer(
      backendsYaml(urls) + HEALTH + "retries: { attempts: 10 }\n",
    );
    const second = await fetch(baseUrl(many));
    await second.body?.cancel();
    assert.equal(second.status, 502);
    assert.deepEqual(
      failing.map((backend, i) => backend.seen.count - counts[i]),
      [1, 1, 1],
      "3 attempts, each backend once, though 10 were allowed",
    );
  } finally {
    for (const backend of failing) await backend[Symbol.asyncDispose]();
  }
});

Deno.test("retries: a response timeout (504) is retried for a GET", async () => {
  const { promise: done, resolve: finish } = Promise.withResolvers<void>();
  await using silent = startRawBackend(async (conn) => {
    await conn.read(new Uint8Array(4096));
    await done;
  });
  await using good = startEchoBackend();
  await using lb = startTestBalancer(
    backendsYaml([silent.url, good.url]) + HEALTH + "timeouts: { response: 100ms }\n",
  );
  try {
    const response = await fetch(baseUrl(lb));
    assert.equal(response.status, 200);
    await response.body?.cancel();
  } finally {
    finish();
  }
});

Deno.test("retries: an exhausted budget sends the failure back instead", async () => {
  await using failing = startResettingBackend();
  await using good = startEchoBackend();
  await using lb = startTestBalancer(
    backendsYaml([failing.url, good.url]) + HEALTH + "retries: { budget: 0, min: 1 }\n",
  );
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const response = await fetch(baseUrl(lb));
    await response.body?.cancel();
    statuses.push(response.status);
  }
  // A retry's pick takes the next turn of the rotation; a refused one does not.
  // 1: failing, retried (the one retry always allowed) to good; 2: failing, budget spent;
  // 3: good; 4: failing, budget spent
  assert.deepEqual(statuses, [200, 502, 200, 502]);
});
