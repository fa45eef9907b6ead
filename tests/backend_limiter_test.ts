/** limits.max_in_flight: slots per backend, a bounded queue, its timeout, and no limit at 0. */

import assert from "node:assert/strict";
import { BackendLimiter, type Slot } from "../src/resilience/backend_limiter.ts";
import { newBackend } from "../src/load_balancer.ts";

const backend = newBackend({ url: "http://127.0.0.1:9001", weight: 1, transport: "http1" });
const signal = new AbortController().signal;

Deno.test("limiter: slots up to the limit, then a queue served in order, then refusals", async () => {
  const limiter = new BackendLimiter({ maxInFlight: 2, queue: 2, queueTimeoutMs: 10_000 });
  const first = limiter.admit(backend, { signal }) as Slot;
  const second = limiter.admit(backend, { signal }) as Slot;
  assert.ok(!(first instanceof Promise) && !(second instanceof Promise));
  const third = limiter.admit(backend, { signal });
  const fourth = limiter.admit(backend, { signal });
  assert.ok(third instanceof Promise && fourth instanceof Promise);
  assert.equal(
    await limiter.admit(backend, { signal }),
    "the backend is at its limit and its queue is full",
  );
  assert.deepEqual(limiter.occupancy(backend), { active: 2, waiting: 2 });
  first[Symbol.dispose]();
  first[Symbol.dispose](); // a second disposal gives nothing back
  const thirdSlot = await third as Slot;
  assert.deepEqual(limiter.occupancy(backend), { active: 2, waiting: 1 });
  second[Symbol.dispose]();
  (await fourth as Slot)[Symbol.dispose]();
  thirdSlot[Symbol.dispose]();
  assert.deepEqual(limiter.occupancy(backend), { active: 0, waiting: 0 });
});

Deno.test("limiter: a wait longer than the queue timeout or an aborted client gives up", async () => {
  const limiter = new BackendLimiter({ maxInFlight: 1, queue: 5, queueTimeoutMs: 30 });
  const held = limiter.admit(backend, { signal }) as Slot;
  assert.equal(
    await limiter.admit(backend, { signal }),
    "no free slot on the backend within 30 ms",
  );
  const client = new AbortController();
  const waiting = limiter.admit(backend, client);
  client.abort();
  assert.equal(await waiting, "the client went away");
  assert.deepEqual(limiter.occupancy(backend), { active: 1, waiting: 0 });
  held[Symbol.dispose]();
  assert.deepEqual(limiter.occupancy(backend), { active: 0, waiting: 0 });
});

Deno.test("limiter: max_in_flight 0 means no limit and no queue", () => {
  const limiter = new BackendLimiter({ maxInFlight: 0, queue: 0, queueTimeoutMs: 1 });
  for (let i = 0; i < 1000; i++) {
    assert.ok(!(limiter.admit(backend, { signal }) instanceof Promise));
  }
});
