/**
 * The load benchmark's report: per scenario, one row per setup with the
 * median of every number across rounds, rendered as a markdown table.
 *
 * @module
 */

import type { ConnectionsResult } from "./connections.ts";
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
  /** The lowest across rounds, before the load; undefined for the backend hit directly. */
  idleRssMiB?: number;
  /** Median across rounds; undefined for the backend hit directly. */
  cpuUsPerRequest?: number;
  /** The headline number over HAProxy's; undefined without HAProxy. */
  vsHaproxy?: number;
  /** The headline number over the floor's; undefined without the floor. */
  vsFloor?: number;
}

/** What the report says under a scenario's table. */
export interface ScenarioSummary {
  rows: Row[];
  /** Setups without a single successful measurement, with the first error. */
  failures: { label: string; error: string }[];
}

/** The explanation printed once above the tables. */
export const REPORT_NOTES =
  "backend direct is one of the three backends without a proxy in front; the floor is the " +
  "cheapest forwarder on Deno (bench/load/floor_proxy.ts: Deno.serve, pooled Deno.connect " +
  "connections, nothing else). Medians across rounds. errors (socket errors + timeouts) and " +
  "non-2xx are totals across rounds. Memory and CPU are the proxy process's own (nginx: its " +
  "worker; the balancer is started with deno run, so no deno task parent is counted, and its " +
  "workers are threads of that process): idle RSS is the lowest across rounds after one " +
  "request, peak RSS the highest under load, CPU µs/req the user+system time over the " +
  "measured run per completed request. vs floor and vs HAProxy compare req/s (large: MiB/s).";

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
  const headline = (row: Row) =>
    scenario.headline === "MiB/s" ? row.mibPerSecond : row.requestsPerSecond;
  const haproxy = rows.find((row) => row.setup === "haproxy");
  const floor = rows.find((row) => row.setup === "floor");
  for (const row of rows) {
    if (haproxy !== undefined) row.vsHaproxy = headline(row) / headline(haproxy);
    if (floor !== undefined) row.vsFloor = headline(row) / headline(floor);
  }
  return { rows, failures };
}

function aggregate(setup: Setup, measurements: Measurement[]): Row | undefined {
  const succeeded = measurements.filter((m) => m.result !== undefined);
  const results = succeeded.map((m) => m.result!);
  if (results.length === 0) return undefined;
  const mib = (kib: number | undefined) => kib === undefined ? [] : [kib / 1024];
  const rss = succeeded.flatMap((m) => mib(m.peakRssKiB));
  const idle = succeeded.flatMap((m) => mib(m.idleRssKiB));
  const cpu = succeeded.flatMap((m) => m.cpuUsPerRequest === undefined ? [] : [m.cpuUsPerRequest]);
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
    idleRssMiB: idle.length > 0 ? Math.min(...idle) : undefined,
    cpuUsPerRequest: cpu.length > 0 ? median(cpu) : undefined,
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
    "CPU µs/req",
    "idle RSS MiB",
    "peak RSS MiB",
    "vs floor",
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
    optional(row.cpuUsPerRequest, 1),
    optional(row.idleRssMiB, 1),
    optional(row.peakRssMiB, 1),
    ratio(row.vsFloor),
    ratio(row.vsHaproxy),
  ]);
  const failures = summary.failures.map(({ label, error }) => `- ${label}: failed: ${error}`);
  return [`### ${scenarioTitle(scenario)}`, "", markdownTable(header, body), ...failures]
    .join("\n");
}

function optional(value: number | undefined, digits: number): string {
  return value === undefined ? "—" : value.toFixed(digits);
}

function ratio(value: number | undefined): string {
  return value === undefined ? "—" : `${value.toFixed(2)}×`;
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

/** The connections scenario's table, one row per setup, with ratios to the floor. */
export function renderConnections(
  results: { setup: Setup; result?: ConnectionsResult; error?: string }[],
  idleS: number,
): string {
  const floor = results.find(({ setup }) => setup.id === "floor")?.result;
  const kib = (value: number) => (value / 1024).toFixed(1);
  const body = results.flatMap(({ setup, result }) =>
    result === undefined ? [] : [[
      setup.label,
      result.burstS.toFixed(2),
      floor === undefined ? "—" : `${(result.burstS / floor.burstS).toFixed(2)}×`,
      result.kibPerConnection.toFixed(1),
      floor === undefined ? "—" : (result.kibPerConnection - floor.kibPerConnection).toFixed(1),
      kib(result.idleRssKiB),
      kib(result.afterBurstRssKiB),
      kib(result.afterIdleRssKiB),
      result.newClientMs.toFixed(1),
      String(result.failed),
    ]]
  );
  const clients = results.find(({ result }) => result !== undefined)?.result?.clients ?? 0;
  const header = [
    "setup",
    "burst s",
    "vs floor",
    "KiB/conn",
    "vs floor KiB",
    "idle RSS MiB",
    "after burst MiB",
    `after ${idleS} s idle MiB`,
    "new client ms",
    "failed",
  ];
  const failures = results.flatMap(({ setup, error }) =>
    error === undefined ? [] : [`- ${setup.label}: failed: ${error}`]
  );
  return [
    `### connections: ${clients.toLocaleString("en-US")} keep-alive clients at once, each ` +
    `sending GET ${"/small"} before any answer is read, then held idle ${idleS} s`,
    "",
    markdownTable(header, body),
    ...failures,
  ].join("\n");
}
