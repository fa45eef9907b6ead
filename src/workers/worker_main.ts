/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The entry point of a worker isolate (`workers` above 1): it serves the
 * proxy's port beside the primary isolate, over the backend state the
 * primary shares, and follows the primary's commands (a reloaded config, a
 * telemetry snapshot, stop). Its log lines go to the primary; its access log
 * goes to stdout.
 *
 * @module
 */

import { BatchedWriter } from "../observability/access_log.ts";
import { ConfigReloader } from "../config/reload.ts";
import { type ProxyServer, serveProxy } from "../server.ts";
import type { WorkerCommand, WorkerReport } from "./worker_pool.ts";

const report = (message: WorkerReport) => self.postMessage(message);
const log = (line: string) => report({ type: "log", line });
const stdout = BatchedWriter.stdout();
let server: ProxyServer | undefined;
let reloader: ConfigReloader | undefined;

/** Carries out one command of the primary isolate. */
export async function follow(command: WorkerCommand): Promise<void> {
  if (command.type === "start") {
    server = serveProxy(command.config, log, stdout.line, {
      reusePort: true,
      shared: command.shared,
    });
    // The primary logs each reload once; a worker applies it silently.
    reloader = new ConfigReloader(server.proxy, { token: null }, () => {});
    report({ type: "listening" });
  } else if (command.type === "configure") {
    reloader!.apply(command.config, command.shared);
  } else if (command.type === "snapshot") {
    report({ type: "snapshot", id: command.id, snapshot: server!.proxy.telemetry.snapshot() });
  } else {
    await reloader?.[Symbol.asyncDispose]();
    const drained = await server?.stop() ?? true;
    stdout.close();
    report({ type: "stopped", drained });
  }
}

self.onmessage = ({ data }: MessageEvent<WorkerCommand>) => follow(data);
