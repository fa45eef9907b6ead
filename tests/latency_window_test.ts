/** Unit tests of the per-backend window of recent latency and traffic. */

import assert from "node:assert/strict";
import { LatencyWindow, SLICE_MS } from "../src/observability/latency_window.ts";

const T0 = 1_800_000_000_000; // a slice boundary

Deno.test("latency window: percentiles within about 10% of the true value", () => {
  const window = new LatencyWindow();
  for (let i = 1; i <= 1000; i++) window.record(T0 + i, i / 10, false); // 0.1 .. 100 ms
  const { p50, p95, p99 } = window.percentiles(T0 + 1000, 60_000);
  for (const [got, want] of [[p50, 50], [p95, 95], [p99, 99]] as const) {
    assert.ok(got !== null && got >= want && got <= want * 1.21, `${got} for ${want}`);
  }
});

Deno.test("latency window: only the window asked for counts, and empty means null", () => {
  const window = new LatencyWindow();
  assert.deepEqual(window.percentiles(T0, 60_000), { p50: null, p95: null, p99: null });
  window.record(T0, 1000, false); // a slow one, two minutes before
  window.record(T0 + 120_000, 1, false);
  const recent = window.percentiles(T0 + 120_000, 60_000);
  assert.ok(recent.p99! < 2, "the old slow response left the one-minute window");
  const wide = window.percentiles(T0 + 120_000, 300_000);
  assert.ok(wide.p99! >= 1000, "but is in the five-minute one");
  window.record(T0 + 120_000, undefined, true); // no backend answered: counted, no latency
  assert.deepEqual(window.percentiles(T0 + 120_000, 60_000), recent);
});

Deno.test("latency window: history has 60 slices of 5 s, oldest first, with counts", () => {
  const window = new LatencyWindow();
  window.record(T0, 2, false);
  window.record(T0 + 1, 4, true);
  window.record(T0 + SLICE_MS, 8, false);
  const history = window.history(T0 + SLICE_MS + 1);
  assert.equal(history.length, 60);
  assert.equal(history.at(-1)!.at, T0 + SLICE_MS);
  assert.deepEqual(
    { ...history.at(-2)!, p50: undefined, p95: undefined, p99: undefined },
    { at: T0, requests: 2, errors: 1, p50: undefined, p95: undefined, p99: undefined },
  );
  assert.equal(history.at(-1)!.requests, 1);
  assert.deepEqual(history[0], {
    at: T0 + SLICE_MS - 59 * SLICE_MS,
    requests: 0,
    errors: 0,
    p50: null,
    p95: null,
    p99: null,
  });
  // Five minutes on, the ring reuses the first slice for new traffic.
  window.record(T0 + 300_000, 3, false);
  assert.equal(window.history(T0 + 300_000).filter((point) => point.requests > 0).length, 2);
});
