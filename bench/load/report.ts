/**
 * The load benchmark's report: per scenario, one row per setup with the
 * median of every number across rounds, rendered as a markdown table.
 *
 * @module
 */

import type { Measurement } from "./runner.ts";
import type { Scenario } from "./scenarios.ts";
import type { Setup } from "./setups.ts";

/** One setup's numbers for one scenario. */
export interface Row {
  setup: string;
  label: string;
  /** Measurements that succeeded. */
  runs: number;
  requestsPerSecond: number;
  mibPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Socket errors and timeouts, summed over the rounds. */
  errors: number;
  /** Summed over the rounds. */
  non2xx: number;
  /** The highest across rounds; undefined for the backend hit directly. */
  peakRssMiB?: number;
  /** The headline number over HAProxy's; undefined without HAProxy. */
  vsHaproxy?: number;
}

/** What the report says under a scenario's table. */
export interface ScenarioSummary {
  rows: Row[];
  /** Setups without a single successful measurement, with the first error. */
  failures: { label: string; error: string }[];
}

/** The explanation printed once above the tables. */
export const REPORT_NOTES =
  "backend direct is one of the three backends without a proxy in front. " +
  "Medians across rounds. errors (socket errors + timeouts) and non-2xx are totals across " +
  "rounds; peak RSS is the highest across rounds, of the proxy process (nginx: its worker); " +
  "vs HAProxy compares req/s (large: MiB/s).";

const MIB = 1024 * 1024;

/** Aggregates one scenario's measurements per setup, in setup order. */
export function summarizeScenario(
  scenario: Scenario,
  setups: Setup[],
  measurements: Measurement[],
): ScenarioSummary {
  const ofScenario = measurements.filter((m) => m.scenario === scenario.name);
  const rows: Row[] = [];
  const failures: ScenarioSummary["failures"] = [];
  for (const setup of setups) {
    const mine = ofScenario.filter((m) => m.setup === setup.id);
    const row = aggregate(setup, mine);
    if (row !== undefined) rows.push(row);
    else {
      const error = mine.find((m) => m.error !== undefined)?.error ?? "not measured";
      failures.push({ label: setup.label, error });
    }
  }
  const haproxy = rows.find((row) => row.setup === "haproxy");
  if (haproxy !== undefined) {
    const headline = (row: Row) =>
      scenario.headline === "MiB/s" ? row.mibPerSecond : row.requestsPerSecond;
    for (const row of rows) row.vsHaproxy = headline(row) / headline(haproxy);
  }
  return { rows, failures };
}

function aggregate(setup: Setup, measurements: Measurement[]): Row | undefined {
  const succeeded = measurements.filter((m) => m.result !== undefined);
  const results = succeeded.map((m) => m.result!);
  if (results.length === 0) return undefined;
  const rss = succeeded.flatMap((m) => m.peakRssKiB === undefined ? [] : [m.peakRssKiB / 1024]);
  return {
    setup: setup.id,
    label: setup.label,
    runs: results.length,
    requestsPerSecond: median(results.map((r) => r.requestsPerSecond)),
    mibPerSecond: median(results.map((r) => r.bytesPerSecond / MIB)),
    p50Ms: median(results.map((r) => r.latencyMs.p50)),
    p95Ms: median(results.map((r) => r.latencyMs.p95)),
    p99Ms: median(results.map((r) => r.latencyMs.p99)),
    errors: sum(results.map((r) => r.socketErrors + r.timeouts)),
    non2xx: sum(results.map((r) => r.non2xx)),
    peakRssMiB: rss.length > 0 ? Math.max(...rss) : undefined,
  };
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** The scenario's title, table and failures, as markdown. */
export function renderScenario(scenario: Scenario, summary: ScenarioSummary): string {
  const withMib = scenario.headline === "MiB/s";
  const header = [
    "setup",
    "req/s",
    ...(withMib ? ["MiB/s"] : []),
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "non-2xx",
    "peak RSS MiB",
    "vs HAProxy",
  ];
  const body = summary.rows.map((row) => [
    row.label,
    integer(row.requestsPerSecond),
    ...(withMib ? [integer(row.mibPerSecond)] : []),
    row.p50Ms.toFixed(2),
    row.p95Ms.toFixed(2),
    row.p99Ms.toFixed(2),
    String(row.errors),
    String(row.non2xx),
    row.peakRssMiB === undefined ? "—" : row.peakRssMiB.toFixed(1),
    row.vsHaproxy === undefined ? "—" : `${row.vsHaproxy.toFixed(2)}×`,
  ]);
  const failures = summary.failures.map(({ label, error }) => `- ${label}: failed: ${error}`);
  return [`### ${scenarioTitle(scenario)}`, "", markdownTable(header, body), ...failures]
    .join("\n");
}

function scenarioTitle(scenario: Scenario): string {
  const sent = scenario.requestBytes > 0 ? ` with a ${size(scenario.requestBytes)} body` : "";
  return `${scenario.name}: ${scenario.method} ${scenario.path}${sent}, ` +
    `${size(scenario.responseBytes)} response`;
}

function size(bytes: number): string {
  if (bytes >= MIB) return `${bytes / MIB} MiB`;
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

function integer(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** A table with padded columns: the first left-aligned, the others right-aligned. */
function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" | ")} |`;
  const rule = `| ${
    widths.map((w, i) => i === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`).join(" | ")
  } |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
