/**
 * The balancer's lifecycle: Deno.serve ingress, health checking, transports,
 * graceful shutdown and the signals that trigger it.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { HealthChecker } from "./health_check.ts";
import { errorResponse } from "./internal/error_response.ts";
import { FetchTransport } from "./internal/fetch_transport.ts";
import { Http1Transport } from "./internal/http1_transport.ts";
import { LoadBalancer } from "./load_balancer.ts";
import { handleRequest, type Proxy } from "./proxy.ts";

/** A running balancer. */
export interface Balancer extends AsyncDisposable {
  /** The address it listens on, with the port the OS chose for port 0. */
  readonly addr: Deno.NetAddr;
  readonly proxy: Proxy;
  /**
   * Stops accepting, lets in-flight requests finish for up to
   * `timeouts.drain`, then closes health checking and the connection pools.
   * Resolves to true when every request finished in time.
   */
  shutdown(): Promise<boolean>;
}

/** Where the balancer writes its startup and error lines. */
export type Log = (line: string) => void;

/**
 * Starts serving `config`.
 *
 * @example
 * ```ts
 * const config = await loadConfig("config.yaml");
 * await using balancer = startBalancer(config);
 * console.log(balancer.addr.port);
 * ```
 */
export function startBalancer(config: Config, log: Log = console.error): Balancer {
  const balancer = new LoadBalancer(config);
  const health = new HealthChecker(balancer.backends, config.health_check, log);
  const timeouts = {
    connectTimeoutMs: config.timeouts.connect,
    responseTimeoutMs: config.timeouts.response,
  };
  const proxy: Proxy = {
    balancer,
    health,
    transports: { http1: new Http1Transport(timeouts), fetch: new FetchTransport(timeouts) },
  };
  const server = Deno.serve({
    hostname: config.listen.host,
    port: config.listen.port,
    onListen: () => {},
    onError(error) {
      log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
      return errorResponse(500, "the balancer failed to handle the request");
    },
  }, (request, info) => handleRequest(request, info, proxy));
  health.start();
  log(
    `listening on http://${formatHost(server.addr.hostname)}:${server.addr.port}, ` +
      `strategy ${config.strategy}, backends ${
        balancer.backends.map((b) => b.url.origin).join(" ")
      }`,
  );

  let stopped: Promise<boolean> | undefined;
  const shutdown = () =>
    stopped ??= (async () => {
      const drained = await withDeadline(server.shutdown(), config.timeouts.drain);
      await health.stop();
      proxy.transports.http1.close();
      proxy.transports.fetch.close();
      return drained;
    })();
  return {
    addr: server.addr,
    proxy,
    shutdown,
    [Symbol.asyncDispose]: async () => void await shutdown(),
  };
}

/**
 * Shuts the balancer down on SIGINT or SIGTERM and exits with status 0, as
 * nginx does, once in-flight requests finished or the drain deadline passed.
 */
export function exitOnSignals(balancer: Balancer, log: Log = console.error): void {
  const stop = async (signal: Deno.Signal) => {
    log(`${signal}: draining in-flight requests`);
    const drained = await balancer.shutdown();
    log(drained ? "stopped" : "stopped at the drain deadline with requests still in flight");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}

async function withDeadline(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([work.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function formatHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
