/**
 * Hot reload: a new config, validated whole by `loadConfig`, put in force as
 * one swap while requests keep flowing: routes and pools together. Backends
 * kept in the same pool keep their objects (health, ejection, pools,
 * counters); removed ones, and pools removed whole, finish their in-flight
 * requests up to `timeouts.drain` before they are forgotten. A changed
 * listen address or certificate file needs a restart and is only logged;
 * ACME's settings (domains, `renew_before`) apply.
 *
 * @module
 */

import type { Config, ListenerConfig } from "./types.ts";
import { type ConfigWatch, watchConfigFile } from "./watcher.ts";
import { formatAddress, type ListenConfig } from "./listen_address.ts";
import type { PoolChanges, SharedPoolsState } from "../pools/pool_set.ts";
import type { Proxy } from "../proxy.ts";
import { Router } from "../routing/router.ts";
import { closeTunnels } from "../websocket/websocket_proxy.ts";
import { namesPools, routeConfigs } from "./types.ts";

/** How often a drain looks whether the removed backends finished. */
const DRAIN_POLL_MS = 50;

function showAddress(address: ListenConfig | null): string {
  return address === null ? "off" : formatAddress(address);
}

/**
 * The listeners and their certificate files: a change of any needs a
 * restart. ACME settings are not shown: they apply without one.
 */
function showListeners(listeners: ListenerConfig[] | undefined): string {
  return listeners === undefined
    ? "one plain listener"
    : listeners.map((listener) =>
      `${formatAddress(listener)}${
        listener.tls
          ? ` (tls ${listener.tls.cert} ${listener.tls.key})`
          : listener.acme
          ? " (tls from acme)"
          : ""
      }`
    ).join(", ");
}

/**
 * Applies new configs to a running balancer and watches its config file.
 *
 * @example
 * ```ts
 * await using reloader = new ConfigReloader(proxy, adminOptions, console.error);
 * reloader.watch("config.yaml");
 * ```
 */
export class ConfigReloader implements AsyncDisposable {
  readonly #proxy: Proxy;
  readonly #admin: { token: string | null };
  readonly #log: (line: string) => void;
  readonly #drains = new Set<{ finish(): void }>();
  #watch: ConfigWatch | undefined;
  /** Called with each config put in force: the primary isolate passes it on to its workers. */
  onApply: ((config: Config) => void) | undefined;
  /** Turns each loaded config into the one to apply: DNS discovery adds what it found. */
  prepare: ((config: Config) => Config) | undefined;
  /** The reload in progress; a change meanwhile runs once more after it. */
  #reloading: Promise<void> | undefined;
  #again = false;

  constructor(
    proxy: Proxy,
    /** The admin API's options, whose token a reload replaces. */
    admin: { token: string | null },
    log: (line: string) => void,
  ) {
    this.#proxy = proxy;
    this.#admin = admin;
    this.#log = log;
  }

  /**
   * Reloads from `path` whenever it changes or SIGHUP arrives. `adjust`
   * edits each new config before it is applied (the `--port` override).
   */
  watch(path: string, adjust: (config: Config) => void = () => {}): void {
    this.#watch ??= watchConfigFile(path, () => void this.reload(path, adjust));
  }

  /**
   * Loads `path` and applies it; an invalid config is logged with the same
   * text as at startup and changes nothing. Resolves once it is in force.
   */
  reload(path: string, adjust: (config: Config) => void = () => {}): Promise<void> {
    if (this.#reloading !== undefined) {
      this.#again = true;
      return this.#reloading;
    }
    const run = async (): Promise<void> => {
      let config: Config;
      try {
        // Loaded here, not at the top: worker isolates apply configs but never read one.
        const { loadConfig } = await import("./config.ts");
        config = await loadConfig(path);
      } catch (error) {
        // loadConfig's errors are ConfigErrors: the same lines as at startup.
        this.#proxy.telemetry.configReloads.failure++;
        this.#log(error instanceof Error ? error.message : String(error));
        this.#log("config reload failed: still running on the previous config");
        return;
      }
      adjust(config);
      this.apply(this.prepare?.(config) ?? config);
    };
    this.#reloading = (async () => {
      try {
        do {
          this.#again = false;
          await run();
        } while (this.#again);
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /**
   * Puts a valid `next` config in force as one swap; in a worker isolate,
   * over the backend state the primary made (`shared`). A `quiet` apply
   * (DNS discovery's, which logs its own lines) is neither logged nor counted
   * as a reload.
   */
  apply(next: Config, shared?: SharedPoolsState, quiet = false): void {
    const proxy = this.#proxy;
    const previous = proxy.config;
    next.listen = this.#keep("listen", previous.listen, next.listen, showAddress)!;
    next.admin.listen = this.#keep(
      "admin.listen",
      previous.admin.listen,
      next.admin.listen,
      showAddress,
    );
    next.workers = this.#keep("workers", previous.workers, next.workers, String);
    const kept = this.#keep("listeners", previous.listeners, next.listeners, showListeners);
    // The same listeners may bring new ACME settings (domains, renew_before): those apply.
    const listeners = showListeners(kept) === showListeners(next.listeners) ? next.listeners : kept;
    if (listeners === undefined) delete next.listeners;
    else next.listeners = listeners;
    const changes = proxy.pools.apply(next, shared);
    proxy.router = new Router(routeConfigs(next));
    proxy.limiter.options = {
      maxInFlight: next.limits.max_in_flight,
      queue: next.limits.queue,
      queueTimeoutMs: next.timeouts.queue,
    };
    proxy.retryBudget.options = next.retries;
    proxy.telemetry.configure(next);
    this.#admin.token = next.admin.token;
    proxy.config = next;
    for (const listener of proxy.acmeListeners) listener.refresh();
    if (!quiet) {
      proxy.telemetry.configReloads.success++;
      this.#log(`config reloaded: ${this.#summary(next, changes)}`);
    }
    for (const pool of changes.closed) void pool.health.stop();
    if (changes.removed.length > 0 || changes.replaced.length > 0) {
      this.#drain(changes, next.timeouts.drain);
    }
    this.onApply?.(next);
  }

  /** What the reload put in force, for its log line; as before pools for a config without them. */
  #summary(next: Config, { removed }: PoolChanges): string {
    const backends = this.#proxy.pools.backends.map((backend) => backend.url.origin).join(" ");
    const draining = removed.length > 0
      ? `; draining ${removed.map((backend) => backend.url.origin).join(" ")}`
      : "";
    if (!namesPools(next)) {
      return `strategy ${next.strategy}, backends ${backends}${draining}`;
    }
    const pools = [...this.#proxy.pools].map((pool) => pool.name).join(" ");
    const routes = this.#proxy.router.routes.map((route) => route.name).join(" ");
    return `pools ${pools}, routes ${routes}, backends ${backends}${draining}`;
  }

  /** Resolves once every removed backend drained (or its deadline passed). */
  async drained(): Promise<void> {
    while (this.#drains.size > 0) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  /** Stops watching and ends the drains at once. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#watch?.[Symbol.asyncDispose]();
    await this.#reloading;
    for (const drain of [...this.#drains]) drain.finish();
  }

  /** The value in force: a change of `key` needs a restart. */
  #keep<T>(key: string, current: T, wanted: T, show: (value: T) => string): T {
    if (show(current) !== show(wanted)) {
      this.#log(`${key} changed from ${show(current)} to ${show(wanted)}: restart required`);
    }
    return current;
  }

  /**
   * Waits until the backends a reload removed have no request in flight or
   * `deadlineMs` passed, then forgets them (their counters, their idle
   * connections) and closes the transports it replaced and those of the
   * pools it removed.
   */
  #drain({ removed, replaced, closed }: PoolChanges, deadlineMs: number): void {
    const { telemetry, pools } = this.#proxy;
    const deadline = performance.now() + deadlineMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drain = {
      finish: () => {
        clearTimeout(timer);
        this.#drains.delete(drain);
        void closeTunnels(this.#proxy.tunnels, 0, removed);
        for (const backend of removed) {
          telemetry.forget(backend);
          const pool = pools.get(backend.pool);
          for (const transport of Object.values(pool?.transports ?? {})) transport.forget(backend);
        }
        for (const transport of replaced) transport.close();
        for (const pool of closed) {
          for (const transport of Object.values(pool.transports)) transport.close();
        }
      },
    };
    // Replaced transports cannot tell their requests in flight: they wait for the deadline.
    const check = () => {
      const busy = replaced.length > 0 ||
        removed.some((backend) => telemetry.inFlightOf(backend) > 0);
      if (busy && performance.now() < deadline) timer = setTimeout(check, DRAIN_POLL_MS);
      else drain.finish();
    };
    this.#drains.add(drain);
    check();
  }
}
