/**
 * DNS discovery: pools with `discovery` find backends in DNS (A, AAAA or SRV
 * records), re-resolved every `interval`. Each answer becomes the pool's
 * discovered backends in a config put in force like a reload, so that new
 * addresses join (in slow start when set), vanished ones drain and leave,
 * and kept ones keep their state; worker isolates get it the same way. A
 * failed or empty lookup keeps the last good set.
 *
 * @module
 */

import type { BackendConfig, Config, DiscoveryConfig, PoolConfig } from "../config/types.ts";

/** The part of `Deno.resolveDns` discovery uses; tests may hand in another. */
export type ResolveDns = (
  query: string,
  recordType: "A" | "AAAA" | "SRV",
  options?: Deno.ResolveDnsOptions,
) => Promise<string[] | Deno.SrvRecord[]>;

/** The longest a lookup may take before it counts as failed, as resolv.conf's default. */
const LOOKUP_TIMEOUT_MS = 5000;

/**
 * One discovery pool's lookups so far, for the metrics.
 *
 * @example
 * ```ts
 * const stats: LookupStats = { pool: "api", dns: "api.service.consul", successes: 3, failures: 1, backends: 2 };
 * ```
 */
export interface LookupStats {
  pool: string;
  dns: string;
  successes: number;
  failures: number;
  /** Backends of the last good answer. */
  backends: number;
}

/** One pool's watch: its settings, its timer, the last good set and the last outcome logged. */
interface Watch {
  settings: string;
  discovery: DiscoveryConfig;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Undefined until a lookup succeeded. */
  found: BackendConfig[] | undefined;
  /** The set last logged, or `failed`: a line is written when it changes. */
  state: string;
  successes: number;
  failures: number;
}

/**
 * The discovery of every pool of the config in force.
 *
 * @example
 * ```ts
 * const discovery = new DnsDiscovery(console.error, (merged) => reloader.apply(merged));
 * const first = discovery.configure(config); // as loaded; backends join as lookups answer
 * discovery.close();
 * ```
 */
export class DnsDiscovery {
  readonly #watches = new Map<string, Watch>();
  #configured: Config | undefined;
  #closed = false;

  constructor(
    readonly log: (line: string) => void,
    /** Called with the config to put in force whenever a pool's set changed. */
    readonly onChange: (config: Config) => void,
    readonly resolveDns: ResolveDns = Deno.resolveDns as ResolveDns,
  ) {}

  /**
   * Takes a config as loaded: starts watching its discovery pools (a pool
   * whose discovery settings stayed keeps its set and timer), stops the
   * others, and returns the config with the sets found so far.
   */
  configure(config: Config): Config {
    this.#configured = config;
    const wanted = new Map(
      Object.values(config.pools ?? {}).flatMap((pool) =>
        pool.discovery === undefined ? [] : [[pool.name, pool.discovery] as const]
      ),
    );
    /** Sets found under settings a reload changed: kept until the new lookup answers. */
    const previous = new Map<string, BackendConfig[] | undefined>();
    for (const [name, watch] of this.#watches) {
      const discovery = wanted.get(name);
      if (discovery === undefined || JSON.stringify(discovery) !== watch.settings) {
        clearTimeout(watch.timer);
        this.#watches.delete(name);
        if (discovery !== undefined) previous.set(name, watch.found);
      }
    }
    for (const [name, discovery] of wanted) {
      if (this.#watches.has(name)) continue;
      const watch: Watch = {
        settings: JSON.stringify(discovery),
        discovery,
        timer: undefined,
        found: previous.get(name),
        state: "",
        successes: 0,
        failures: 0,
      };
      this.#watches.set(name, watch);
      void this.#lookUp(name, watch);
    }
    return this.merged();
  }

  /** The config as loaded, each discovery pool's backends joined by those it found. */
  merged(): Config {
    const config = this.#configured!;
    if (config.pools === undefined || this.#watches.size === 0) return config;
    const pools: Record<string, PoolConfig> = {};
    for (const [name, pool] of Object.entries(config.pools)) {
      const found = this.#watches.get(name)?.found ?? [];
      const configured = new Set(pool.backends.map((backend) => backend.url));
      pools[name] = {
        ...pool,
        backends: [...pool.backends, ...found.filter((backend) => !configured.has(backend.url))],
      };
    }
    return { ...config, pools };
  }

  /** Every discovery pool's lookups so far. */
  stats(): LookupStats[] {
    return [...this.#watches].map(([pool, watch]) => ({
      pool,
      dns: watch.discovery.dns,
      successes: watch.successes,
      failures: watch.failures,
      backends: watch.found?.length ?? 0,
    }));
  }

  /** Stops every lookup. */
  close(): void {
    this.#closed = true;
    for (const watch of this.#watches.values()) clearTimeout(watch.timer);
    this.#watches.clear();
  }

  async #lookUp(pool: string, watch: Watch): Promise<void> {
    const { discovery } = watch;
    /** What is logged, and what says whether it is news: the set found, or a failure. */
    let outcome: string;
    let state: string;
    let changed = false;
    try {
      const found = await this.#resolve(discovery, pool);
      if (found.length === 0) throw new Error("the answer has no addresses");
      watch.successes++;
      const urls = found.map((backend) => backend.url).join(" ");
      changed = urls !== watch.found?.map((backend) => backend.url).join(" ") ||
        found.some((backend, i) => backend.weight !== watch.found![i].weight);
      watch.found = found;
      outcome = `dns ${discovery.dns} (pool ${pool}): ${found.length} backends ${urls}`;
      state = outcome;
    } catch (error) {
      watch.failures++;
      const reason = error instanceof Error ? error.message : String(error);
      const kept = watch.found === undefined
        ? "no backends until it answers"
        : `keeping the last ${watch.found.length} backends`;
      outcome = `dns ${discovery.dns} (pool ${pool}) failed: ${reason}; ${kept}`;
      state = "failed";
    }
    if (this.#closed || this.#watches.get(pool) !== watch) return;
    if (state !== watch.state) this.log(outcome);
    watch.state = state;
    if (changed) this.onChange(this.merged());
    watch.timer = setTimeout(() => void this.#lookUp(pool, watch), discovery.interval);
  }

  /** The backends `discovery` names now, sorted by URL (answers come in any order). */
  async #resolve(discovery: DiscoveryConfig, pool: string): Promise<BackendConfig[]> {
    const pools = this.#configured?.pools;
    const settings = pools?.[pool];
    const options: Deno.ResolveDnsOptions = {
      // The next lookup is timed from this one's end, so a slow one never overlaps it.
      signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
    };
    if (discovery.nameserver !== undefined) options.nameServer = discovery.nameserver;
    const targets: { address: string; port: number; weight: number }[] = [];
    if (discovery.type === "SRV") {
      const records = await this.resolveDns(discovery.dns, "SRV", options) as Deno.SrvRecord[];
      for (const record of records) {
        const host = record.target.replace(/\.$/, "");
        const addresses = isIpAddress(host)
          ? [host]
          : await this.resolveDns(host, "A", options) as string[];
        for (const address of addresses) {
          targets.push({ address, port: record.port, weight: Math.max(1, record.weight) });
        }
      }
    } else {
      const addresses = await this.resolveDns(discovery.dns, discovery.type, options) as string[];
      for (const address of addresses) targets.push({ address, port: discovery.port!, weight: 1 });
    }
    const byUrl = new Map<string, BackendConfig>();
    for (const { address, port, weight } of targets) {
      const host = address.includes(":") ? `[${address}]` : address;
      const url = new URL(`${discovery.scheme}://${host}:${port}`).origin;
      if (byUrl.has(url)) continue;
      byUrl.set(url, {
        url,
        weight,
        transport: settings?.transport ?? "http1",
        slow_start: settings?.slow_start ?? 0,
        dns: discovery.dns,
      });
    }
    return [...byUrl.values()].sort((a, b) => a.url < b.url ? -1 : 1);
  }
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}
