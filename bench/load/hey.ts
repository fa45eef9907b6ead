/**
 * hey as the fallback load generator when wrk is missing: it runs for the
 * duration with keep-alive connections, and its text summary is parsed.
 * Its latencies have a resolution of 0.1 ms.
 *
 * @module
 */

import {
  type LoadGenerator,
  type LoadResult,
  type LoadSpec,
  PERCENTILES,
  REQUEST_TIMEOUT_S,
  runDeadlineMs,
} from "./generator.ts";
import type { Supervisor } from "./processes.ts";

/** hey (it has no version flag), writing request bodies into `dir`. */
export function heyGenerator(supervisor: Supervisor, dir: string): LoadGenerator {
  return {
    name: "hey",
    flags: (connections) => `-c ${connections}`,
    run: (spec) => runHey(supervisor, dir, spec),
  };
}

async function runHey(supervisor: Supervisor, dir: string, spec: LoadSpec): Promise<LoadResult> {
  const args = [
    "-z",
    `${spec.durationS}s`,
    "-c",
    String(spec.connections),
    "-t",
    String(REQUEST_TIMEOUT_S),
    "-m",
    spec.scenario.method,
  ];
  if (spec.scenario.requestBytes > 0) {
    const bodyPath = `${dir}/body-${spec.scenario.name}.bin`;
    await Deno.writeFile(bodyPath, new Uint8Array(spec.scenario.requestBytes).fill(0x78));
    args.push("-D", bodyPath, "-T", "application/octet-stream");
  }
  args.push(spec.url);
  const output = await supervisor.run("hey", args, runDeadlineMs(spec.durationS));
  return parseHeyOutput(output.stdout + output.stderr, ["hey", ...args]);
}

/** Parses hey's summary: totals, latency distribution, status codes and errors. */
export function parseHeyOutput(output: string, command: string[]): LoadResult {
  const number = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? NaN);
  const seconds = number(/^\s*Total:\s+([\d.]+) secs/m);
  if (Number.isNaN(seconds)) {
    throw new Error(`hey printed no summary: ${output.trim().split("\n").slice(-3).join(" | ")}`);
  }
  const [statusPart, errorPart = ""] = output.split("Error distribution:");
  const statuses = [...statusPart.matchAll(/^\s*\[(\d{3})\]\s+(\d+) responses/gm)]
    .map(([, status, count]) => ({ status: Number(status), count: Number(count) }));
  const errors = [...errorPart.matchAll(/^\s*\[(\d+)\]\s+(.*)$/gm)]
    .map(([, count, message]) => ({ count: Number(count), timeout: /timeout/i.test(message) }));
  const sum = (items: { count: number }[]) => items.reduce((total, item) => total + item.count, 0);
  const latency = (p: number) => number(new RegExp(`^\\s*${p}%+ in ([\\d.]+) secs`, "m")) * 1000;
  const [p50, p75, p90, p95, p99] = PERCENTILES.map(latency);
  return {
    requests: sum(statuses),
    seconds,
    requestsPerSecond: sum(statuses) / seconds,
    bytesPerSecond: (number(/^\s*Total data:\s+(\d+) bytes/m) || 0) / seconds,
    latencyMs: { p50, p75, p90, p95, p99 },
    socketErrors: sum(errors.filter((error) => !error.timeout)),
    timeouts: sum(errors.filter((error) => error.timeout)),
    non2xx: sum(statuses.filter(({ status }) => status < 200 || status >= 400)),
    command,
    output,
  };
}
