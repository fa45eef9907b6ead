/**
 * The balancer's lifecycle: Deno.serve ingress, health checking, transports,
 * graceful shutdown and the signals that trigger it.
 *
 * @module
 */

import { AccessLog, BatchedWriter } from "./observability/access_log.ts";
import { acmeCertificateSource, answeringAcmeChallenges } from "./acme/acme_listener.ts";
import { AcmeManager } from "./acme/certificate_manager.ts";
import { type AdminOptions, type AdminServer, startAdminServer } from "./admin/admin_server.ts";
import { BackendLimiter } from "./resilience/backend_limiter.ts";
import {
  type Config,
  describeBackends,
  isTls,
  type ListenerConfig,
  listenersOf,
  namesPools,
  poolConfigs,
  routeConfigs,
} from "./config/types.ts";
import {
  certificateFiles,
  type Listening,
  serveRotatingTls,
} from "./internal/rotating_tls_server.ts";
import { ConfigReloader } from "./config/reload.ts";
import { errorResponse } from "./internal/error_response.ts";
import { formatAddress } from "./config/listen_address.ts";
import { DnsDiscovery } from "./pools/dns_discovery.ts";
import { PoolSet, type SharedPoolsState } from "./pools/pool_set.ts";
import { handleRequest, type Proxy } from "./proxy.ts";
import { Router } from "./routing/router.ts";
import { RetryBudget } from "./resilience/retry_budget.ts";
import { Telemetry } from "./observability/telemetry.ts";
import { withDeadline } from "./internal/with_deadline.ts";
import { closeTunnels } from "./websocket/websocket_proxy.ts";
import { WorkerPool } from "./workers/worker_pool.ts";

/** A running balancer. */
export interface Balancer extends AsyncDisposable {
  /** The (first) address it listens on, with the port the OS chose for port 0. */
  readonly addr: Deno.NetAddr;
  /** Every listener's address, in config order. */
  readonly addrs: readonly Deno.NetAddr[];
  /** The admin API's address; null when the config has no `admin` section. */
  readonly adminAddr: Deno.NetAddr | null;
  /** The primary isolate's proxy; workers have their own over the same shared backend state. */
  readonly proxy: Proxy;
  /** Applies new configs: `reloader.watch(path)` reloads on changes to the file and SIGHUP. */
  readonly reloader: ConfigReloader;
  /** Resolves once the first health-check round ended, the banner is complete and every worker listens. */
  readonly ready: Promise<void>;
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
 * Starts serving `config`: the proxy, health checks, the worker isolates
 * (`workers` above 1) and, when configured, the admin API. Banner, errors and
 * health transitions go to `log` (stderr), access-log lines to `accessLog`
 * (by default stdout, batched; workers always write theirs to stdout).
 * Throws "cannot listen on ADDRESS: reason" when a listener cannot start.
 *
 * @example
 * ```ts
 * const config = await loadConfig("config.yaml");
 * await using balancer = startBalancer(config);
 * console.log(balancer.addr.port);
 * ```
 */
export function startBalancer(
  config: Config,
  log: Log = console.error,
  accessLog?: Log,
): Balancer {
  const stdout = accessLog === undefined ? BatchedWriter.stdout() : undefined;
  const serving = serveProxy(config, log, accessLog ?? stdout!.line, {
    reusePort: config.workers > 1,
  });
  const { proxy } = serving;
  const listeners = listenersOf(config);
  const { pools, telemetry } = proxy;
  let admin: AdminServer | null = null;
  let stopping = false;
  const adminOptions: AdminOptions = {
    routing: proxy,
    telemetry,
    ready: () => !stopping,
    token: config.admin.token,
    log,
  };
  if (config.admin.listen !== null) {
    const options = adminOptions;
    try {
      admin = listen(config.admin.listen, () => startAdminServer(config.admin.listen!, options));
    } catch (error) {
      void serving.stop();
      throw error;
    }
  }
  log(
    `listening on ${
      serving.addrs.map((addr, i) => urlOf(addr, isTls(listeners[i]))).join(" ")
    }, admin ${admin ? urlOf(admin.addr) : "off"}, ` +
      `workers ${config.workers}, ${describePools(config, proxy)}`,
  );
  const reloader = new ConfigReloader(proxy, adminOptions, log);
  // Only the primary isolate resolves; what it finds reaches workers like a reload.
  const discovery = new DnsDiscovery(log, (merged) => reloader.apply(merged, undefined, true));
  reloader.prepare = (loaded) => discovery.configure(loaded);
  telemetry.lookups = () => discovery.stats();
  discovery.configure(config);
  const workers = config.workers > 1
    ? new WorkerPool(
      config.workers - 1,
      withPorts(config, serving.addrs),
      pools.shared(),
      log,
    )
    : undefined;
  // Only the primary isolate talks to the CA; every isolate's listeners read what it stores.
  const acme = new AcmeManager(log);
  acme.configure(config);
  telemetry.certificates = () => acme.stats();
  reloader.onApply = (next) => {
    acme.configure(next);
    workers?.configure(next, pools.shared());
  };
  if (workers !== undefined) telemetry.peers = () => workers.snapshots();
  const firstRound = pools.startProbing().then(() => {
    if (stopping) return;
    for (const backend of pools.backends) {
      const check = pools.get(backend.pool)?.health.lastCheck(backend);
      const result = check === undefined || check.ok ? "passed" : `failed: ${check.detail}`;
      log(`first health check: ${backend.url.origin} (id ${backend.id}) ${result}`);
    }
  });

  const workersListening = workers?.ready.then(() => {
    if (!stopping) log(`all ${config.workers} isolates listening`);
  });

  let stopped: Promise<boolean> | undefined;
  const shutdown = () =>
    stopped ??= (async () => {
      stopping = true;
      discovery.close();
      await acme.close();
      await reloader[Symbol.asyncDispose]();
      const [drained, workersDrained] = await Promise.all([
        serving.stop(),
        workers?.stop() ?? true,
      ]);
      // The admin API answers through the drain: /ready says 503 meanwhile.
      await admin?.shutdown();
      stdout?.close();
      return drained && workersDrained;
    })();
  return {
    addr: serving.addr,
    addrs: serving.addrs,
    adminAddr: admin?.addr ?? null,
    proxy,
    reloader,
    ready: Promise.all([firstRound, workersListening]).then(() => {}),
    shutdown,
    [Symbol.asyncDispose]: async () => void await shutdown(),
  };
}

/** One isolate's share of the balancer: its proxy on the listeners. */
export interface ProxyServer {
  readonly proxy: Proxy;
  /** The first listener's address. */
  readonly addr: Deno.NetAddr;
  /** Every listener's address, in config order. */
  readonly addrs: readonly Deno.NetAddr[];
  /**
   * Stops accepting, lets in-flight requests finish for up to
   * `timeouts.drain`, then stops health checking and closes the connection
   * pools. Resolves to true when every request finished in time.
   */
  stop(): Promise<boolean>;
}

/**
 * Builds a proxy for `config` and serves it: in the primary isolate over new
 * backend state, in a worker over the primary's `shared` state, with
 * `reusePort` so that several isolates listen on one port. Health checking
 * is created but not started: the primary starts it.
 *
 * @example
 * ```ts
 * const server = serveProxy(config, console.error, console.log, { reusePort: false });
 * await server.stop();
 * ```
 */
export function serveProxy(
  config: Config,
  log: Log,
  accessLog: Log,
  options: { reusePort: boolean; shared?: SharedPoolsState },
): ProxyServer {
  const pools = new PoolSet(config, log, options.shared);
  const telemetry = new Telemetry({
    config,
    pools,
    accessLog: new AccessLog(config.logging.access, accessLog),
  });
  const proxy: Proxy = {
    config,
    router: new Router(routeConfigs(config)),
    pools,
    telemetry,
    limiter: new BackendLimiter({
      maxInFlight: config.limits.max_in_flight,
      queue: config.limits.queue,
      queueTimeoutMs: config.timeouts.queue,
    }),
    retryBudget: new RetryBudget(config.retries),
    listenPort: config.listen.port,
    tunnels: new Set(),
    acmeListeners: [],
  };
  const servers: Listening[] = [];
  try {
    listenersOf(config).forEach((listener, index) => {
      servers.push(
        listen(listener, () => serveListener(listener, index, proxy, log, options.reusePort)),
      );
    });
  } catch (error) {
    for (const server of servers) void server.shutdown();
    throw error;
  }
  proxy.listenPort = servers[0].addr.port;
  let stopped: Promise<boolean> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      const deadline = performance.now() + proxy.config.timeouts.drain;
      // Deno.serve's shutdown closes WebSockets at once: open tunnels get the drain time first,
      // while the listener still accepts.
      await closeTunnels(proxy.tunnels, proxy.config.timeouts.drain);
      const drained = await withDeadline(
        Promise.all(servers.map((server) => server.shutdown())).then(() => {}),
        Math.max(0, deadline - performance.now()),
      );
      await pools.close();
      return drained;
    })();
  const addrs = servers.map((server) => server.addr);
  return { proxy, addr: addrs[0], addrs, stop };
}

/**
 * Deno.serve on one listener: TLS (HTTP/2 for clients that offer it, by
 * ALPN) when it has a certificate, which a change of its files (or a new one
 * from ACME) replaces. A plain listener of a config with ACME answers the
 * CA's http-01 challenges first. A redirect without scheme or port keeps
 * this listener's port.
 */
function serveListener(
  listener: ListenerConfig,
  index: number,
  proxy: Proxy,
  log: Log,
  reusePort: boolean,
): Listening {
  let port = listener.port;
  const proxied = (request: Request, info: Deno.ServeHandlerInfo) =>
    handleRequest(request, info, proxy, port);
  const handler = !isTls(listener) && listenersOf(proxy.config).some((l) => l.acme !== undefined)
    ? answeringAcmeChallenges(proxied, () => proxy.config)
    : proxied;
  const serve = (
    options: Deno.ServeTcpOptions | (Deno.ServeTcpOptions & Deno.TlsCertifiedKeyPem),
  ) =>
    Deno.serve({
      ...options,
      onListen: () => {},
      onError(error) {
        log(`internal error: ${error instanceof Error ? error.message : String(error)}`);
        return errorResponse(500, "the balancer failed to handle the request");
      },
    }, handler);
  if (!isTls(listener)) {
    const server = serve({ hostname: listener.host, port: listener.port, reusePort });
    port = server.addr.port;
    return server;
  }
  const server = serveRotatingTls({
    hostname: listener.host,
    port: listener.port,
    source: listener.acme === undefined
      ? certificateFiles(listener.tls!)
      : acmeCertificateSource(() => listenersOf(proxy.config)[index].acme!, log),
    // Always reusePort: a rotation starts the next server on the same port.
    serve: (options) => serve({ ...options, reusePort: true }),
    log,
  });
  if (listener.acme !== undefined) proxy.acmeListeners.push(server);
  port = server.addr.port;
  return server;
}

/** Runs `start`, turning a failure to listen into "cannot listen on ADDRESS: reason". */
function listen<T>(address: { host: string; port: number }, start: () => T): T {
  try {
    return start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot listen on ${formatAddress(address)}: ${reason}`);
  }
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

/** The banner's account of where requests go: as before pools for a config without them. */
function describePools(config: Config, proxy: Proxy): string {
  if (!namesPools(config)) {
    const origins = proxy.pools.backends.map((backend) => backend.url.origin).join(" ");
    return `strategy ${config.strategy}, backends ${origins}`;
  }
  const pools = poolConfigs(config).map((pool) =>
    `${pool.name} (${pool.strategy}: ${describeBackends(pool)})`
  );
  return `pools ${pools.join(", ")}, routes ${proxy.router.routes.map((r) => r.name).join(" ")}`;
}

function urlOf(addr: Deno.NetAddr, tls = false): string {
  return `${tls ? "https" : "http"}://${formatAddress({ host: addr.hostname, port: addr.port })}`;
}

/** `config` with the ports the OS chose for its listeners: what workers must listen on. */
function withPorts(config: Config, addrs: readonly Deno.NetAddr[]): Config {
  const listeners = listenersOf(config).map((listener, i) => ({
    ...listener,
    port: addrs[i].port,
  }));
  const listen = { host: config.listen.host, port: addrs[0].port };
  return config.listeners === undefined ? { ...config, listen } : { ...config, listen, listeners };
}
