/**
 * A TLS listener whose certificate can change without a restart. Deno.serve
 * takes its certificate once, so when the certificate or key file changes a
 * second server starts on the same port (`reusePort`) with the new pair and
 * the first one drains: new handshakes get the new certificate, connections
 * and requests in flight finish undisturbed. A new pair that cannot be used
 * (unreadable, not PEM, not each other's, expired) is logged and the old one
 * stays.
 *
 * @module
 */

import type { TlsConfig } from "../config/types.ts";
import { readCertificatePair } from "../config/tls_files.ts";

/** Changes closer together than this are one: certbot writes the cert, then the key. */
const SETTLE_MS = 200;

/** A listener that can be stopped: Deno.serve's server, or one that replaces its own. */
export interface Listening {
  /** Where it listens; the port the OS chose for port 0. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting and resolves once the requests in flight finished. */
  shutdown(): Promise<void>;
}

/** What a rotating server is started with. */
export interface RotatingTlsOptions {
  hostname: string;
  port: number;
  tls: TlsConfig;
  /** Starts Deno.serve with these options and a certificate pair. */
  serve(options: { hostname: string; port: number; cert: string; key: string }): Listening;
  log: (line: string) => void;
}

/**
 * Serves with the pair in `tls`'s files, and with each new pair they get.
 * Throws when the first pair cannot be used.
 *
 * @example
 * ```ts
 * const server = serveRotatingTls({
 *   hostname: "0.0.0.0", port: 443, tls: { cert: "/etc/lb/site.pem", key: "/etc/lb/site.key" },
 *   serve: (options) => Deno.serve({ ...options, reusePort: true }, handler),
 *   log: console.error,
 * });
 * await server.shutdown();
 * ```
 */
export function serveRotatingTls(options: RotatingTlsOptions): Listening {
  const { tls, log } = options;
  const first = readCertificatePair(tls);
  if ("problem" in first) throw new Error(first.problem);
  let current = options.serve({ hostname: options.hostname, port: options.port, ...first });
  const addr = current.addr;
  const draining = new Set<Promise<void>>();
  const where = `https://${addr.hostname}:${addr.port}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const rotate = () => {
    const pair = readCertificatePair(tls);
    if ("problem" in pair) {
      log(`tls ${where}: new certificate refused, keeping the one in force: ${pair.problem}`);
      return;
    }
    let next: Listening;
    try {
      next = options.serve({ hostname: addr.hostname, port: addr.port, ...pair });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log(`tls ${where}: new certificate refused, keeping the one in force: ${reason}`);
      return;
    }
    const previous = current;
    current = next;
    const drained = previous.shutdown().finally(() => draining.delete(drained));
    draining.add(drained);
    log(`tls ${where}: certificate rotated, valid until ${pair.notAfter.toISOString()}`);
  };
  const watcher = watchFiles([tls.cert, tls.key], () => {
    clearTimeout(timer);
    timer = setTimeout(rotate, SETTLE_MS);
  });
  let stopped: Promise<void> | undefined;
  return {
    addr,
    shutdown: () =>
      stopped ??= (async () => {
        clearTimeout(timer);
        await watcher.close();
        await Promise.all([current.shutdown(), ...draining]);
      })(),
  };
}

/**
 * Calls `onChange` when one of `paths` is written, replaced or renamed over,
 * or the `..data` link beside it swapped (a Kubernetes secret volume).
 */
function watchFiles(paths: string[], onChange: () => void): { close(): Promise<void> } {
  // Events name real paths: a folder reached through a link is watched at its target.
  const real = paths.map((path) => {
    const slash = path.lastIndexOf("/");
    const folder = Deno.realPathSync(path.slice(0, slash) || "/");
    return { folder, file: `${folder === "/" ? "" : folder}${path.slice(slash)}` };
  });
  const folders = [...new Set(real.map(({ folder }) => folder))];
  const watched = new Set([
    ...real.map(({ file }) => file),
    ...folders.map((folder) => `${folder === "/" ? "" : folder}/..data`),
  ]);
  const watcher = Deno.watchFs(folders, { recursive: false });
  const watching = (async () => {
    for await (const event of watcher) {
      if (event.paths.some((path) => watched.has(path))) onChange();
    }
  })();
  return {
    async close() {
      watcher.close();
      await watching.catch(() => {});
    },
  };
}
