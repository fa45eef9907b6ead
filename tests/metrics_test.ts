/** Unit tests of the metric primitives and the exposition writer, read back by the test parser. */

import assert from "node:assert/strict";
import { DURATION_BUCKETS, Histogram, MetricsText } from "../src/observability/metrics.ts";
import { parsePrometheus, sampleValue } from "./helpers.ts";

Deno.test("metrics: a histogram's buckets are cumulative and end at +Inf", () => {
  const histogram = new Histogram([0.1, 1]);
  for (const value of [0.05, 0.1, 0.5, 2, 3]) histogram.observe(value);
  assert.deepEqual(histogram.cumulative(), [2, 3, 5]);
  assert.equal(histogram.count, 5);
  assert.equal(histogram.sum, 5.65);
});

Deno.test("metrics: the writer's text parses back, labels escaped", () => {
  const text = new MetricsText();
  text.family("test_total", "counter", "A counter\nwith a \\ in its help.");
  text.sample("test_total", { path: 'a"b\\c\nd' }, 3);
  text.family("test_seconds", "histogram", "A histogram.");
  const histogram = new Histogram(DURATION_BUCKETS);
  histogram.observe(0.003);
  text.histogram("test_seconds", { backend: "x" }, histogram);
  const families = parsePrometheus(text.toString());
  assert.equal(families.get("test_total")?.help, "A counter\\nwith a \\\\ in its help.");
  assert.equal(sampleValue(families, "test_total", { path: 'a"b\\c\nd' }), 3);
  assert.equal(sampleValue(families, "test_seconds_bucket", { backend: "x", le: "0.0025" }), 0);
  assert.equal(sampleValue(families, "test_seconds_bucket", { backend: "x", le: "0.005" }), 1);
  assert.equal(sampleValue(families, "test_seconds_bucket", { backend: "x", le: "+Inf" }), 1);
  assert.equal(sampleValue(families, "test_seconds_count", { backend: "x" }), 1);
});

Deno.test("metrics: the test parser rejects what Prometheus would", () => {
  for (
    const bad of [
      "x 1\n",
      '# TYPE x counter\nx{a="1"} one\n',
      "# TYPE x counter\nx{a=1} 1\n",
      "# TYPE x counter\ny 1\n",
      "# TYPE x counter\nx 1",
      "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\n# TYPE x counter\n",
    ]
  ) {
    assert.throws(() => parsePrometheus(bad), Error, bad);
  }
});
