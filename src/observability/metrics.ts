/**
 * Metric primitives and the Prometheus text exposition format (version
 * 0.0.4), written by hand: a histogram with fixed buckets, and a writer that
 * lays out families, samples and escaped labels.
 *
 * @module
 */

/** Labels of one sample, name to value. */
export type Labels = Readonly<Record<string, string>>;

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Bucket upper bounds, in seconds, for request and upstream durations: from
 * half a millisecond (a balancer on the same host as its backends) to 30 s.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** A histogram's figures as plain data: what a copy sent between isolates keeps. */
export interface HistogramCounts {
  readonly counts: Float64Array;
  readonly sum: number;
  readonly count: number;
}

/**
 * Counts observations into fixed buckets; recording is a short scan and two
 * additions.
 *
 * @example
 * ```ts
 * const histogram = new Histogram(DURATION_BUCKETS);
 * histogram.observe(0.012);
 * histogram.count; // 1
 * ```
 */
export class Histogram implements HistogramCounts {
  /** Observations per bucket, not cumulative; the last one is `+Inf`. */
  readonly counts: Float64Array;
  /** The sum of every observed value. */
  sum = 0;
  /** How many values were observed. */
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** Adds what `other`, a histogram with the same bounds (or its copy from another isolate), counted. */
  add(other: HistogramCounts): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.sum += other.sum;
    this.count += other.count;
  }

  /** Cumulative counts, one per bound and then `+Inf`, as Prometheus wants them. */
  cumulative(): number[] {
    let total = 0;
    return Array.from(this.counts, (count) => total += count);
  }
}

/**
 * Builds a text exposition: declare a family, then write its samples.
 *
 * @example
 * ```ts
 * const text = new MetricsText();
 * text.family("lb_retries_total", "counter", "Requests sent again to another backend.");
 * text.sample("lb_retries_total", { backend: "http://127.0.0.1:9001" }, 3);
 * text.toString(); // "# HELP lb_retries_total ...\n# TYPE lb_retries_total counter\nlb_retries_total{...} 3\n"
 * ```
 */
export class MetricsText {
  #text = "";

  /** Starts a family: its help line and its type. */
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.#text += `# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}\n`;
    this.#text += `# TYPE ${name} ${type}\n`;
  }

  /** One sample of the current family. */
  sample(name: string, labels: Labels, value: number): void {
    this.#text += `${name}${formatLabels(labels)} ${formatValue(value)}\n`;
  }

  /** A histogram's `_bucket`, `_sum` and `_count` samples. */
  histogram(name: string, labels: Labels, histogram: Histogram): void {
    const cumulative = histogram.cumulative();
    histogram.bounds.forEach((bound, i) => {
      this.sample(`${name}_bucket`, { ...labels, le: formatValue(bound) }, cumulative[i]);
    });
    this.sample(`${name}_bucket`, { ...labels, le: "+Inf" }, histogram.count);
    this.sample(`${name}_sum`, labels, histogram.sum);
    this.sample(`${name}_count`, labels, histogram.count);
  }

  toString(): string {
    return this.#text;
  }
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) =>
    `${name}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
