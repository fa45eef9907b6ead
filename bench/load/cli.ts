/**
 * The load benchmark's command-line flags, their defaults and the help text.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { SCENARIO_NAMES, type ScenarioName } from "./scenarios.ts";

/** What the command line asked for. */
export interface LoadOptions {
  scenarios: ScenarioName[];
  /** Seconds per measurement. */
  durationS: number;
  /** Setup ids to run; undefined means every available one. */
  only?: string[];
  connections: number;
  rounds: number;
  /** Where the raw results go. */
  jsonPath: string;
  help: boolean;
}

/** A flag that could not be understood. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The `--help` text. */
export const HELP_TEXT = `Usage: deno task bench:load [options]

Starts backends, this balancer (transports http1 and fetch, and http1 with 2 workers), HAProxy
and nginx when installed, drives each with wrk (or hey) in interleaved rounds and prints one markdown table per scenario.

Options:
  --scenario NAME    small | large | post; repeatable or a comma list (default: all three)
  --duration T       Length of each measurement: 10s, 1m or whole seconds (default: 10s)
  --only IDS         Comma list of setup ids, e.g. direct,http1,http1-w2,fetch,haproxy,nginx
                     (default: every setup whose tools are installed)
  --connections N    Concurrent connections of the load generator (default: 50)
  --rounds N         Rounds; the table shows the median across them (default: 2)
  --json FILE        Raw results (default: bench/results/load-<timestamp>.json)
  -h, --help         Show this help and exit`;

const OPTIONS = {
  scenario: { type: "string", multiple: true },
  duration: { type: "string", default: "10s" },
  only: { type: "string" },
  connections: { type: "string", default: "50" },
  rounds: { type: "string", default: "2" },
  json: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/**
 * Parses the flags; throws {@linkcode UsageError} on anything it does not understand.
 *
 * @example
 * ```ts
 * parseLoadArgs(["--scenario", "small,post", "--duration", "2s"], "bench/results/x.json");
 * // { scenarios: ["small", "post"], durationS: 2, connections: 50, rounds: 2, ... }
 * ```
 */
export function parseLoadArgs(args: string[], defaultJsonPath: string): LoadOptions {
  let values;
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    scenarios: parseScenarios(values.scenario),
    durationS: parseDurationS(values.duration),
    only: values.only === undefined ? undefined : commaList(values.only),
    connections: positiveInt("--connections", values.connections),
    rounds: positiveInt("--rounds", values.rounds),
    jsonPath: values.json ?? defaultJsonPath,
    help: values.help,
  };
}

function commaList(value: string): string[] {
  return value.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

function parseScenarios(values: string[] | undefined): ScenarioName[] {
  if (values === undefined) return [...SCENARIO_NAMES];
  const names = [...new Set(values.flatMap(commaList))];
  for (const name of names) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`--scenario: expected one of ${SCENARIO_NAMES.join(", ")}, got ${name}`);
    }
  }
  return names as ScenarioName[];
}

function parseDurationS(value: string): number {
  const match = /^(\d+)(s|m)?$/.exec(value);
  const seconds = match ? Number(match[1]) * (match[2] === "m" ? 60 : 1) : 0;
  if (seconds < 1) {
    throw new UsageError(`--duration: expected whole seconds like 10s or 1m, got ${value}`);
  }
  return seconds;
}

function positiveInt(flag: string, value: string): number {
  const number = /^\d+$/.test(value) ? Number(value) : 0;
  if (number < 1) throw new UsageError(`${flag}: expected an integer >= 1, got ${value}`);
  return number;
}
