/**
 * The worker isolates of `workers: N`, seen from the primary isolate: it
 * starts them on the proxy's port, hands each the backend state it shares,
 * passes reloaded configs on, gathers their telemetry for the admin API,
 * prints their log lines, restarts one that fails, and stops them.
 *
 * @module
 */

import type { ListenConfig } from "../config/listen_address.ts";
import type { Config, ListenerConfig } from "../config/types.ts";
import type { SharedPoolsState } from "../pools/pool_set.ts";
import type { TelemetrySnapshot } from "../observability/telemetry.ts";
import { withDeadline } from "../internal/with_deadline.ts";

/** What the primary isolate tells a worker. */
export type WorkerCommand =
  | { type: "start"; config: Config; shared: SharedPoolsState }
  | { type: "configure"; config: Config; shared: SharedPoolsState }
  | { type: "snapshot"; id: number }
  | { type: "stop" };

/** What a worker tells the primary isolate. */
export type WorkerReport =
  | { type: "listening" }
  | { type: "log"; line: string }
  | { type: "snapshot"; id: number; snapshot: TelemetrySnapshot }
  | { type: "stopped"; drained: boolean };

/** How long the admin API waits for a worker's figures before it answers without them. */
const SNAPSHOT_TIMEOUT_MS = 1000;
/** How long after the drain deadline a worker may take to report that it stopped. */
const STOP_GRACE_MS = 1000;

interface Running {
  worker: Worker;
  listening: PromiseWithResolvers<void>;
  stopped: PromiseWithResolvers<boolean>;
  state: "starting" | "listening" | "failed";
}

/**
 * Worker isolates serving beside the primary one. Worker `i` (from 1; the
 * primary is 0) reports under that number in `lb_worker_requests_total`.
 *
 * @example
 * ```ts
 * const workers = new WorkerPool(1, config, pools.shared(), console.error);
 * await workers.ready;
 * const snapshots = await workers.snapshots();
 * await workers.stop();
 * ```
 */
export class WorkerPool {
  /** Resolves once every worker listens (or failed to start, which is logged). */
  readonly ready: Promise<void>;
  readonly #running: Running[] = [];
  readonly #listen: ListenConfig;
  /** The listeners with the ports the primary got, which a reload cannot change. */
  readonly #listeners: ListenerConfig[] | undefined;
  readonly #log: (line: string) => void;
  readonly #snapshots = new Map<number, (snapshot: TelemetrySnapshot) => void>();
  #config: Config;
  #shared: SharedPoolsState;
  #nextSnapshot = 0;
  #stopping = false;

  /**
   * Starts `count` workers on `config`, whose `listen` (and `listeners`)
   * must name the ports the primary got. `entry` is the workers' module.
   */
  constructor(
    count: number,
    config: Config,
    shared: SharedPoolsState,
    log: (line: string) => void,
    readonly entry: URL = new URL("./worker_main.ts", import.meta.url),
  ) {
    this.#config = config;
    this.#listen = config.listen;
    this.#listeners = config.listeners;
    this.#shared = shared;
    this.#log = log;
    for (let i = 0; i < count; i++) this.#running.push(this.#spawn(i));
    this.ready = Promise.all(this.#running.map((running) => running.listening.promise))
      .then(() => {});
  }

  /** Puts a reloaded config in force in every worker, over the primary's current `shared` state. */
  configure(config: Config, shared: SharedPoolsState): void {
    this.#config = { ...config, listen: this.#listen };
    if (this.#listeners !== undefined) {
      // The ports stay the primary's; ACME's settings are the new config's.
      this.#config.listeners = this.#listeners.map((listener, i) => {
        const acme = config.listeners?.[i]?.acme;
        return acme === undefined ? listener : { ...listener, acme };
      });
    }
    this.#shared = shared;
    for (const { worker } of this.#running) {
      worker.postMessage({ type: "configure", config: this.#config, shared } as WorkerCommand);
    }
  }

  /** Every worker's telemetry, in worker order; undefined for one that did not answer in time. */
  snapshots(): Promise<(TelemetrySnapshot | undefined)[]> {
    return Promise.all(this.#running.map((running) => this.#snapshot(running)));
  }

  /**
   * Tells every worker to stop and drain, waits until they reported (at most
   * `timeouts.drain` and a second), then ends them. Resolves to true when
   * every worker finished its requests in time.
   */
  async stop(): Promise<boolean> {
    this.#stopping = true;
    for (const { worker } of this.#running) worker.postMessage({ type: "stop" } as WorkerCommand);
    const reported = Promise.all(this.#running.map(({ stopped }) => stopped.promise));
    const ms = this.#config.timeouts.drain + STOP_GRACE_MS;
    const inTime = await withDeadline(reported.then(() => {}), ms);
    for (const { worker } of this.#running) worker.terminate();
    return inTime && (await reported).every(Boolean);
  }

  #spawn(index: number): Running {
    const worker = new Worker(this.entry, { type: "module" });
    const running: Running = {
      worker,
      listening: Promise.withResolvers(),
      stopped: Promise.withResolvers(),
      state: "starting",
    };
    const number = index + 1;
    worker.onmessage = ({ data }: MessageEvent<WorkerReport>) => {
      if (data.type === "listening") {
        running.state = "listening";
        running.listening.resolve();
      } else if (data.type === "log") this.#log(data.line);
      else if (data.type === "snapshot") this.#snapshots.get(data.id)?.(data.snapshot);
      else running.stopped.resolve(data.drained);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      const starting = running.state === "starting";
      running.state = "failed";
      // One that never listened had no requests to lose.
      running.stopped.resolve(starting);
      if (starting) {
        this.#log(`worker ${number} failed to start: ${event.message}`);
        running.listening.resolve();
      } else if (!this.#stopping) {
        this.#log(`worker ${number} failed: ${event.message}; starting a new one`);
        this.#running[index] = this.#spawn(index);
      }
    };
    const start: WorkerCommand = { type: "start", config: this.#config, shared: this.#shared };
    worker.postMessage(start);
    return running;
  }

  #snapshot({ worker, state }: Running): Promise<TelemetrySnapshot | undefined> {
    if (state === "failed") return Promise.resolve(undefined);
    const id = this.#nextSnapshot++;
    const { promise, resolve } = Promise.withResolvers<TelemetrySnapshot | undefined>();
    const timer = setTimeout(() => resolve(undefined), SNAPSHOT_TIMEOUT_MS);
    this.#snapshots.set(id, resolve);
    worker.postMessage({ type: "snapshot", id } as WorkerCommand);
    return promise.finally(() => {
      clearTimeout(timer);
      this.#snapshots.delete(id);
    });
  }
}
