/**
 * The floor as a benchmark target: `floor_proxy.ts` in a subprocess in front
 * of the backends.
 *
 * @module
 */

import { freePort, waitForPort } from "./processes.ts";
import type { Target, TargetContext } from "./target.ts";

const FLOOR_PROXY = new URL("./floor_proxy.ts", import.meta.url).pathname;

/** Starts the floor forwarder in front of the backends. */
export async function startFloor(context: TargetContext): Promise<Target> {
  const port = freePort();
  const process = context.supervisor.spawn("floor", Deno.execPath(), [
    "run",
    "--allow-net",
    FLOOR_PROXY,
    String(port),
    ...context.backendPorts.map(String),
  ]);
  await waitForPort(process, port);
  return { origin: `http://127.0.0.1:${port}`, process };
}
