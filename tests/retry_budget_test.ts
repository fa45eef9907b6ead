/** The retry budget: a share of the requests of a 10-second sliding window, plus a minimum. */

import assert from "node:assert/strict";
import { RetryBudget } from "../src/resilience/retry_budget.ts";

Deno.test("retry budget: min retries always, then budget percent of the window's requests", () => {
  let now = 0;
  const budget = new RetryBudget({ budget: 20, min: 3 }, () => now);
  const retries = (tries: number) => Array.from({ length: tries }, () => budget.tryRetry());
  assert.deepEqual(retries(4), [true, true, true, false], "3 allowed without any request");
  for (let i = 0; i < 100; i++) budget.recordRequest();
  // 20% of 100 requests plus 3, and 3 were taken already.
  assert.equal(retries(30).filter(Boolean).length, 20);
  now = 5_000;
  assert.equal(budget.tryRetry(), false, "5 s later the same window still holds them");
  now = 10_500;
  assert.equal(retries(10).filter(Boolean).length, 3, "the window moved on: only min again");
});

Deno.test("retry budget: the window slides one second at a time", () => {
  let now = 0;
  const budget = new RetryBudget({ budget: 50, min: 0 }, () => now);
  for (let i = 0; i < 10; i++) budget.recordRequest(); // in second 0
  now = 9_000;
  for (let i = 0; i < 10; i++) budget.recordRequest(); // in second 9
  assert.equal(Array.from({ length: 20 }, () => budget.tryRetry()).filter(Boolean).length, 10);
  now = 10_000; // second 0 left the window: 10 requests, 10 retries
  assert.equal(budget.tryRetry(), false);
  now = 19_999; // second 9 too: an empty window
  assert.equal(budget.tryRetry(), false);
  budget.recordRequest();
  budget.recordRequest();
  assert.equal(budget.tryRetry(), true, "50% of 2 requests");
  assert.equal(budget.tryRetry(), false);
});
