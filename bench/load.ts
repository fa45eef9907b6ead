/**
 * `deno task bench:load`: starts three backends, then measures the backend
 * alone, this balancer per transport, HAProxy and nginx (when installed) with
 * wrk (or hey) in interleaved rounds, and prints one markdown table per
 * scenario. Raw numbers go to a JSON file. Every process it starts is stopped
 * at the end, on an error and on Ctrl-C.
 *
 * @module
 */

import { startBackends } from "./load/backends.ts";
import { HELP_TEXT, type LoadOptions, parseLoadArgs, UsageError } from "./load/cli.ts";
import type { LoadGenerator } from "./load/generator.ts";
import { heyGenerator } from "./load/hey.ts";
import { detectTools, type Machine, machineInfo, type Tools } from "./load/machine.ts";
import { Supervisor } from "./load/processes.ts";
import { type ConnectionsResult, measureConnections } from "./load/connections.ts";
import {
  renderConnections,
  renderScenario,
  REPORT_NOTES,
  summarizeScenario,
} from "./load/report.ts";
import { estimateSeconds, type Measurement, type Plan, runPlan, WARMUP_S } from "./load/runner.ts";
import { SCENARIOS } from "./load/scenarios.ts";
import { buildSetups, type Setup } from "./load/setups.ts";
import type { TargetContext } from "./load/target.ts";
import { wrkGenerator } from "./load/wrk.ts";

const RESULTS_DIR = new URL("./results", import.meta.url).pathname;

async function main(args: string[]): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  let options: LoadOptions;
  let selection: SetupSelection;
  const [machine, tools] = await Promise.all([machineInfo(), detectTools()]);
  try {
    options = parseLoadArgs(args, `${RESULTS_DIR}/load-${stamp}.json`);
    selection = selectSetups(buildSetups(tools), options.only);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n\n${HELP_TEXT}`);
    return 2;
  }
  if (options.help) {
    console.log(HELP_TEXT);
    return 0;
  }
  if (tools.wrk === undefined && tools.hey === undefined) {
    console.error("neither wrk nor hey is installed: apt-get install -y wrk");
    return 1;
  }
  if (options.generator !== undefined && tools[options.generator] === undefined) {
    console.error(
      `--generator ${options.generator}: not installed (apt-get install -y ${options.generator})`,
    );
    return 1;
  }
  const dir = await Deno.makeTempDir({ prefix: "deno-lb-bench-" });
  await Deno.chmod(dir, 0o755); // nginx workers run as an unprivileged user
  const supervisor = new Supervisor(dir);
  const interrupt = new AbortController();
  const onSignal = () => {
    if (interrupt.signal.aborted) Deno.exit(130); // a second Ctrl-C: leave at once
    console.error("\ninterrupted: stopping every process");
    interrupt.abort();
    supervisor.stopAll();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let succeeded = false;
  try {
    const generator = chooseGenerator(tools, supervisor, dir, options.generator);
    const run = { options, machine, tools, generator, selection, dir, supervisor };
    succeeded = await benchmark(run, interrupt.signal);
    return succeeded ? 0 : 1;
  } catch (error) {
    if (interrupt.signal.aborted) return 130;
    throw error;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await supervisor.stopAll();
    if (succeeded || interrupt.signal.aborted) await Deno.remove(dir, { recursive: true });
    else console.error(`logs and configs kept in ${dir}`);
  }
}

interface SetupSelection {
  setups: Setup[];
  /** Why each selected setup that cannot run here is left out. */
  notRun: string[];
}

/** The setups `--only` names (all by default), minus those whose tool is missing. */
function selectSetups(all: Setup[], only: string[] | undefined): SetupSelection {
  const ids = all.map((setup) => setup.id);
  const unknown = only?.filter((id) => !ids.includes(id)) ?? [];
  if (unknown.length > 0) {
    throw new UsageError(`--only: expected some of ${ids.join(",")}, got ${unknown.join(",")}`);
  }
  const selected = all.filter((setup) => only?.includes(setup.id) ?? true);
  return {
    setups: selected.filter((setup) => setup.missing === undefined),
    notRun: selected.flatMap((setup) => setup.missing ? [`${setup.id} (${setup.missing})`] : []),
  };
}

/** The one `--generator` names, else wrk when installed, else hey. */
function chooseGenerator(
  tools: Tools,
  supervisor: Supervisor,
  dir: string,
  wanted: "wrk" | "hey" | undefined,
): LoadGenerator {
  return (wanted ?? (tools.wrk !== undefined ? "wrk" : "hey")) === "wrk"
    ? wrkGenerator(supervisor, dir, tools.wrk!)
    : heyGenerator(supervisor, dir);
}

interface Run {
  options: LoadOptions;
  machine: Machine;
  tools: Tools;
  generator: LoadGenerator;
  selection: SetupSelection;
  dir: string;
  supervisor: Supervisor;
}

/**
 * Runs the plan, prints the report and writes the JSON; false when a
 * measurement failed. Throws once `interrupted` is aborted.
 */
async function benchmark(run: Run, interrupted: AbortSignal): Promise<boolean> {
  const { options, selection } = run;
  const plan: Plan = {
    rounds: options.rounds,
    scenarios: options.scenarios.map((name) => SCENARIOS[name]),
    setups: selection.setups,
    connections: options.connections,
    durationS: options.durationS,
  };
  const notRun = selection.notRun.length > 0 ? ` Not run: ${selection.notRun.join(", ")}.` : "";
  const thenConnections = options.connectionsScenario
    ? ` Then connections: ${selection.setups.filter((setup) => setup.id !== "direct").length} ` +
      `setups × (burst + ${options.idleS} s idle).`
    : "";
  console.error(estimateLine(plan) + thenConnections + notRun);
  const startedAt = new Date();
  const backends = await startBackends(run.supervisor, run.dir, run.tools.nginx);
  const context: TargetContext = {
    supervisor: run.supervisor,
    dir: run.dir,
    backendPorts: backends.ports,
  };
  const measurements = await runPlan(plan, run.generator, context, interrupted, (m) => {
    console.error(progressLine(m, plan));
  });
  interrupted.throwIfAborted();
  const held = options.connectionsScenario ? await runConnections(run, context, interrupted) : [];
  const summaries = Object.fromEntries(
    plan.scenarios.map((s) => [s.name, summarizeScenario(s, plan.setups, measurements)]),
  );
  const header = headerLine(run, backends.description);
  console.log(["## Load benchmark", "", header, "", REPORT_NOTES + notRun, ""].join("\n"));
  for (const scenario of plan.scenarios) {
    console.log(renderScenario(scenario, summaries[scenario.name]) + "\n");
  }
  if (options.connectionsScenario) {
    console.log(renderConnections(held, options.idleS) + "\n");
  }
  await writeJson(options.jsonPath, {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: { script: "bench/load.ts", args: Deno.args },
    options,
    machine: run.machine,
    versions: { deno: run.machine.deno, ...run.tools },
    generator: run.generator.name,
    backends: backends.description,
    header,
    setups: plan.setups.map(({ id, label }) => ({ id, label })),
    notRun: selection.notRun,
    summaries,
    measurements,
    connections: held.map(({ setup, result, error }) => ({
      setup: setup.id,
      result,
      error,
    })),
  });
  console.error(`raw results: ${options.jsonPath} (took ${formatSeconds(elapsedS(startedAt))})`);
  return measurements.every((m) => m.error === undefined) &&
    held.every((c) => c.error === undefined);
}

/** The connections scenario once per proxy setup (the backend direct has no memory to report). */
async function runConnections(
  run: Run,
  context: TargetContext,
  interrupted: AbortSignal,
): Promise<{ setup: Setup; result?: ConnectionsResult; error?: string }[]> {
  const results = [];
  for (const setup of run.selection.setups.filter((one) => one.id !== "direct")) {
    try {
      const result = await measureConnections(
        setup,
        context,
        run.options.clients,
        run.options.idleS,
      );
      results.push({ setup, result });
      console.error(
        `connections ${setup.id}: ${result.clients} answered in ${result.burstS.toFixed(2)} s, ` +
          `${result.kibPerConnection.toFixed(1)} KiB each, ${result.failed} failed`,
      );
    } catch (error) {
      interrupted.throwIfAborted();
      results.push({ setup, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return results;
}

function estimateLine(plan: Plan): string {
  const count = `${plural(plan.scenarios.length, "scenario")} × ` +
    `${plural(plan.setups.length, "setup")} × ${plural(plan.rounds, "round")}`;
  const each = `${plan.durationS} s + ${WARMUP_S} s warm-up + start`;
  return `setups: ${plan.setups.map((s) => s.id).join(", ")}; ${count} × (${each}): ` +
    `about ${formatSeconds(estimateSeconds(plan))}.`;
}

function headerLine(run: Run, backends: string): string {
  const { options, machine, tools, generator } = run;
  const peers = [
    tools.haproxy && `, HAProxy ${tools.haproxy}`,
    tools.nginx && `, nginx ${tools.nginx}`,
  ].filter(Boolean).join("");
  const rounds = plural(options.rounds, "round");
  return `${generator.name} (${generator.flags(options.connections)}), ` +
    `${options.durationS} s per measurement after a ${WARMUP_S} s warm-up, ${rounds} ` +
    `(interleaved); ${machine.nproc} cores (${machine.cpuModel}), Linux ${machine.kernel}, ` +
    `Deno ${machine.deno}${peers}; backends: ${backends}. ` +
    "The generator, the proxy and the backends share the cores.";
}

function progressLine(m: Measurement, plan: Plan): string {
  const where = `round ${m.round}/${plan.rounds} ${m.scenario} ${m.setup}`;
  if (m.result === undefined) return `${where}: failed: ${m.error}`;
  const { requestsPerSecond, latencyMs, socketErrors, timeouts, non2xx } = m.result;
  const errors = socketErrors + timeouts + non2xx > 0
    ? `, ${socketErrors + timeouts} errors, ${non2xx} non-2xx`
    : "";
  return `${where}: ${Math.round(requestsPerSecond)} req/s, p99 ${latencyMs.p99.toFixed(2)} ms` +
    errors;
}

async function writeJson(path: string, data: unknown): Promise<void> {
  const parent = path.slice(0, path.lastIndexOf("/") + 1);
  if (parent !== "") await Deno.mkdir(parent, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(data, null, 2) + "\n");
}

function elapsedS(since: Date): number {
  return (Date.now() - since.getTime()) / 1000;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function formatSeconds(seconds: number): string {
  const rounded = Math.round(seconds);
  return rounded < 60 ? `${rounded} s` : `${Math.floor(rounded / 60)} min ${rounded % 60} s`;
}

Deno.exit(await main(Deno.args));
