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
  /** Whether `--scenario` named `connections`, which runs after the others. */
  connectionsScenario: boolean;
  /** Clients of the connections scenario. */
  clients: number;
  /** Seconds the connections scenario holds its connections idle. */
  idleS: number;
  /** Seconds per measurement. */
  durationS: number;
  /** Setup ids to run; undefined means every available one. */
  only?: string[];
  connections: number;
  rounds: number;
  /** The load generator `--generator` names; undefined: wrk when installed, else hey. */
  generator?: "wrk" | "hey";
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

Starts backends, the floor (the cheapest forwarder on Deno, bench/load/floor_proxy.ts), this
balancer (transports http1 and fetch, http1 with 2 workers, http1 with 20 routes over 3 pools),
HAProxy and nginx when installed, drives each with wrk (or hey) in interleaved rounds and prints
one markdown table per scenario, with every setup's CPU per request, idle and peak RSS, and its
ratios to the floor and to HAProxy.

Options:
  --scenario NAME    small | large | post | connections; repeatable or a comma list
                     (default: small, large and post; connections runs only when named)
  --duration T       Length of each measurement: 10s, 1m or whole seconds (default: 10s)
  --only IDS         Comma list of setup ids: direct, floor, http1, http1-routes, http1-w2,
                     fetch, haproxy, nginx
                     (default: every setup whose tools are installed)
  --connections N    Concurrent connections of the load generator (default: 50)
  --generator NAME   wrk | hey (default: wrk when installed, else hey)
  --clients N        Clients of the connections scenario (default: 5000)
  --idle T           How long the connections scenario holds them idle (default: 60s)
  --rounds N         Rounds; the table shows the median across them (default: 2)
  --json FILE        Raw results (default: bench/results/load-<timestamp>.json)
  -h, --help         Show this help and exit`;

const OPTIONS = {
  scenario: { type: "string", multiple: true },
  duration: { type: "string", default: "10s" },
  only: { type: "string" },
  connections: { type: "string", default: "50" },
  generator: { type: "string" },
  clients: { type: "string", default: "5000" },
  idle: { type: "string", default: "60s" },
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
  const scenarios = parseScenarios(values.scenario);
  return {
    scenarios: scenarios.filter((name) => name !== CONNECTIONS) as ScenarioName[],
    connectionsScenario: scenarios.includes(CONNECTIONS),
    clients: positiveInt("--clients", values.clients),
    idleS: parseDurationS("--idle", values.idle),
    durationS: parseDurationS("--duration", values.duration),
    only: values.only === undefined ? undefined : commaList(values.only),
    connections: positiveInt("--connections", values.connections),
    rounds: positiveInt("--rounds", values.rounds),
    generator: parseGenerator(values.generator),
    jsonPath: values.json ?? defaultJsonPath,
    help: values.help,
  };
}

function parseGenerator(value: string | undefined): "wrk" | "hey" | undefined {
  if (value === undefined || value === "wrk" || value === "hey") return value;
  throw new UsageError(`--generator: expected wrk or hey, got ${value}`);
}

function commaList(value: string): string[] {
  return value.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

const CONNECTIONS = "connections";

function parseScenarios(values: string[] | undefined): string[] {
  if (values === undefined) return [...SCENARIO_NAMES];
  const names = [...new Set(values.flatMap(commaList))];
  const known = [...SCENARIO_NAMES, CONNECTIONS];
  for (const name of names) {
    if (!known.includes(name)) {
      throw new UsageError(`--scenario: expected one of ${known.join(", ")}, got ${name}`);
    }
  }
  return names;
}

function parseDurationS(flag: string, value: string): number {
  const match = /^(\d+)(s|m)?$/.exec(value);
  const seconds = match ? Number(match[1]) * (match[2] === "m" ? 60 : 1) : 0;
  if (seconds < 1) {
    throw new UsageError(`${flag}: expected whole seconds like 10s or 1m, got ${value}`);
  }
  return seconds;
}

function positiveInt(flag: string, value: string): number {
  const number = /^\d+$/.test(value) ? Number(value) : 0;
  if (number < 1) throw new UsageError(`${flag}: expected an integer >= 1, got ${value}`);
  return number;
}
