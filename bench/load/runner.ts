/**
 * The measurement loop: rounds, then scenarios, then setups, so that every
 * setup is measured under the same conditions in turn. Each measurement
 * starts a fresh target, checks one response, warms up, then measures while
 * sampling the proxy's memory.
 *
 * @module
 */

import type { LoadGenerator, LoadResult } from "./generator.ts";
import { cpuSeconds } from "./cpu_time.ts";
import { rssOf, RssSampler } from "./rss.ts";
import type { Scenario, ScenarioName } from "./scenarios.ts";
import type { Setup } from "./setups.ts";
import type { Target, TargetContext } from "./target.ts";

/** What to run. */
export interface Plan {
  rounds: number;
  scenarios: Scenario[];
  setups: Setup[];
  connections: number;
  durationS: number;
}

/** One measurement, or why it failed. */
export interface Measurement {
  round: number;
  scenario: ScenarioName;
  setup: string;
  result?: LoadResult;
  /** The proxy's peak RSS; none for the backend hit directly. */
  peakRssKiB?: number;
  /** The proxy's RSS once started and one request answered, before the load. */
  idleRssKiB?: number;
  /** The proxy's CPU time (user and system) over the measured run, per completed request. */
  cpuUsPerRequest?: number;
  error?: string;
}

/** Not counted: lets connections open, pools fill and the JIT compile. */
export const WARMUP_S = 1;
/** Starting a target, checking it and stopping it, roughly. */
const OVERHEAD_S = 1;

/** Seconds the plan takes, roughly. */
export function estimateSeconds(plan: Plan): number {
  const count = plan.rounds * plan.scenarios.length * plan.setups.length;
  return count * (plan.durationS + WARMUP_S + OVERHEAD_S);
}

/**
 * Runs the plan. A setup that fails for a scenario is reported once and not
 * tried again for that scenario. Throws once `interrupted` is aborted.
 */
export async function runPlan(
  plan: Plan,
  generator: LoadGenerator,
  context: TargetContext,
  interrupted: AbortSignal,
  progress: (measurement: Measurement) => void,
): Promise<Measurement[]> {
  const measurements: Measurement[] = [];
  const failed = new Set<string>();
  for (let round = 1; round <= plan.rounds; round++) {
    for (const scenario of plan.scenarios) {
      for (const setup of plan.setups) {
        const key = `${setup.id} ${scenario.name}`;
        if (failed.has(key)) continue;
        const measurement: Measurement = { round, scenario: scenario.name, setup: setup.id };
        try {
          Object.assign(measurement, await measure(plan, generator, context, setup, scenario));
        } catch (error) {
          interrupted.throwIfAborted();
          measurement.error = error instanceof Error ? error.message : String(error);
          failed.add(key);
        }
        measurements.push(measurement);
        progress(measurement);
      }
    }
  }
  return measurements;
}

async function measure(
  plan: Plan,
  generator: LoadGenerator,
  context: TargetContext,
  setup: Setup,
  scenario: Scenario,
): Promise<Omit<Measurement, "round" | "scenario" | "setup">> {
  const target = await setup.start(context);
  try {
    const url = target.origin + scenario.path;
    await checkResponse(url, scenario);
    const idleRssKiB = target.process === undefined ? undefined : rssOf(target.process.pid);
    const spec = { url, scenario, connections: plan.connections };
    await generator.run({ ...spec, durationS: WARMUP_S });
    const run = () => generator.run({ ...spec, durationS: plan.durationS });
    return { ...await sampledRun(target, run), idleRssKiB };
  } finally {
    await target.process?.stop();
  }
}

async function sampledRun(
  target: Target,
  run: () => Promise<LoadResult>,
): Promise<{ result: LoadResult; peakRssKiB?: number; cpuUsPerRequest?: number }> {
  if (target.process === undefined) return { result: await run() };
  const { pid } = target.process;
  using sampler = new RssSampler(pid);
  const cpuBefore = cpuSeconds(pid);
  const result = await run();
  const cpuUsPerRequest = (cpuSeconds(pid) - cpuBefore) * 1e6 / Math.max(1, result.requests);
  return { result, peakRssKiB: sampler.peakKiB(), cpuUsPerRequest };
}

/** One request before the load: the target must answer 200 with the scenario's body size. */
async function checkResponse(url: string, scenario: Scenario): Promise<void> {
  const response = await fetch(url, {
    method: scenario.method,
    body: scenario.requestBytes > 0 ? new Uint8Array(scenario.requestBytes) : undefined,
    signal: AbortSignal.timeout(5000),
  });
  const bytes = (await response.arrayBuffer()).byteLength;
  if (response.status !== 200 || bytes !== scenario.responseBytes) {
    throw new Error(
      `${scenario.method} ${scenario.path} answered ${response.status} with ${bytes} bytes, ` +
        `expected 200 with ${scenario.responseBytes}`,
    );
  }
}
