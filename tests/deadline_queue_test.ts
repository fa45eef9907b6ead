/** The single-timer deadline queue behind the HTTP/1.1 client's response timeouts. */

import assert from "node:assert/strict";
import { DeadlineQueue } from "../src/internal/deadline_queue.ts";

Deno.test("deadline queue: expires what was not cancelled, in order, and only that", async () => {
  const expired: string[] = [];
  const { promise: lastExpired, resolve } = Promise.withResolvers<void>();
  const queue = new DeadlineQueue<string>(30, (item) => {
    expired.push(item);
    if (item === "d") resolve();
  });
  const a = queue.set("a");
  queue.set("b");
  const c = queue.set("c");
  queue.set("d");
  queue.cancel(a);
  queue.cancel(c);
  queue.cancel(c); // a second cancel is a no-op
  await lastExpired;
  assert.deepEqual(expired, ["b", "d"]);
  queue.close();
});

Deno.test("deadline queue: a deadline set after the first expired re-arms the timer", async () => {
  const expired: number[] = [];
  const { promise: bothExpired, resolve } = Promise.withResolvers<void>();
  const queue = new DeadlineQueue<number>(20, (item) => {
    expired.push(item);
    if (expired.length === 2) resolve();
  });
  queue.set(1);
  await new Promise((r) => setTimeout(r, 10));
  queue.set(2); // due 10 ms after the first: needs a second firing
  await bothExpired;
  assert.deepEqual(expired, [1, 2]);
  queue.close();
});

Deno.test("deadline queue: close stops the timer and drops every pending deadline", () => {
  const queue = new DeadlineQueue<string>(10_000, () => assert.fail("nothing may expire"));
  const first = queue.set("a");
  queue.set("b");
  queue.close();
  assert.equal(first.pending, false);
  queue.cancel(first); // harmless after close
  // The sanitizers fail this test if close() left the timer running.
});
