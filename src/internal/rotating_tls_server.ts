/**
 * A TLS listener whose certificate can change without a restart. Deno.serve
 * takes its certificate once, so when the certificate's source changes (its
 * files are written, or a new one lands in a watched folder) a second server
 * starts on the same port (`reusePort`) with the new pair and the first one
 * drains: new handshakes get the new certificate, connections and requests
 * in flight finish undisturbed. A new pair that cannot be used (unreadable,
 * not PEM, not each other's, expired) is logged and the old one stays. A
 * listener may also start before its first certificate exists (ACME): it
 * holds its port and begins serving once the source has a usable pair.
 *
 * @module
 */

import type { TlsConfig } from "../config/types.ts";
import { type CertificatePair, readCertificatePair } from "../config/tls_files.ts";

/** Changes closer together than this are one: certbot writes the cert, then the key. */
const SETTLE_MS = 200;

/** A listener that can be stopped: Deno.serve's server, or one that replaces its own. */
export interface Listening {
  /** Where it listens; the port the OS chose for port 0. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting and resolves once the requests in flight finished. */
  shutdown(): Promise<void>;
}

/** Where a listener's certificate comes from, and what to watch for a new one. */
export interface CertificateSource {
  /** Files whose change may bring a new pair. */
  readonly files: string[];
  /** Folders in which any change may bring a new pair, as the config in force names them. */
  folders(): string[];
  /** The pair to serve now, or why there is none. */
  read(): CertificatePair;
  /** Without a first pair: throw (false), or wait for one (true). */
  readonly mayWait: boolean;
}

/** The source of a listener's `tls` files. */
export function certificateFiles(tls: TlsConfig): CertificateSource {
  return {
    files: [tls.cert, tls.key],
    folders: () => [],
    read: () => readCertificatePair(tls),
    mayWait: false,
  };
}

/** A TLS listener that can also be told to look at its source again. */
export interface RotatingListening extends Listening {
  /**
   * Reads the source now and rotates when it has a different pair, watching
   * its folders anew when they changed (a reload changed what it names).
   */
  refresh(): void;
}

/** What a rotating server is started with. */
export interface RotatingTlsOptions {
  hostname: string;
  port: number;
  source: CertificateSource;
  /** Starts Deno.serve with these options and a certificate pair. */
  serve(options: { hostname: string; port: number; cert: string; key: string }): Listening;
  log: (line: string) => void;
}

/**
 * Serves with the source's pair, and with each new pair it gets. Throws
 * when there is no first pair and the source may not wait for one.
 *
 * @example
 * ```ts
 * const server = serveRotatingTls({
 *   hostname: "0.0.0.0", port: 443,
 *   source: certificateFiles({ cert: "/etc/lb/site.pem", key: "/etc/lb/site.key" }),
 *   serve: (options) => Deno.serve({ ...options, reusePort: true }, handler),
 *   log: console.error,
 * });
 * await server.shutdown();
 * ```
 */
export function serveRotatingTls(options: RotatingTlsOptions): RotatingListening {
  const { source, log } = options;
  const first = source.read();
  if ("problem" in first && !source.mayWait) throw new Error(first.problem);
  let current: Listening | undefined;
  let currentCert: string | undefined;
  const addr: Deno.NetAddr = "problem" in first
    ? { transport: "tcp", hostname: options.hostname, port: holdPort(options) }
    : (current = options.serve({ hostname: options.hostname, port: options.port, ...first }))
      .addr;
  if (!("problem" in first)) currentCert = first.cert;
  const draining = new Set<Promise<void>>();
  const where = `https://${addr.hostname}:${addr.port}`;
  if ("problem" in first) log(`tls ${where}: waiting for its certificate (${first.problem})`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const rotate = () => {
    const pair = source.read();
    if ("problem" in pair) {
      if (current !== undefined && !source.mayWait) {
        log(`tls ${where}: new certificate refused, keeping the one in force: ${pair.problem}`);
      }
      return;
    }
    if (pair.cert === currentCert) return;
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
    currentCert = pair.cert;
    if (previous === undefined) {
      log(
        `tls ${where}: listening with its certificate, valid until ${pair.notAfter.toISOString()}`,
      );
      return;
    }
    const drained = previous.shutdown().finally(() => draining.delete(drained));
    draining.add(drained);
    log(`tls ${where}: certificate rotated, valid until ${pair.notAfter.toISOString()}`);
  };
  const onChange = () => {
    clearTimeout(timer);
    timer = setTimeout(rotate, SETTLE_MS);
  };
  let folders = source.folders();
  let watcher = watchPaths(source.files, folders, onChange);
  const closing = new Set<Promise<void>>();
  let stopped: Promise<void> | undefined;
  return {
    addr,
    refresh: () => {
      const now = source.folders();
      if (now.join("\n") !== folders.join("\n") && stopped === undefined) {
        const closed = watcher.close().finally(() => closing.delete(closed));
        closing.add(closed);
        folders = now;
        watcher = watchPaths(source.files, folders, onChange);
      }
      rotate();
    },
    shutdown: () =>
      stopped ??= (async () => {
        clearTimeout(timer);
        await Promise.all([watcher.close(), ...closing]);
        await Promise.all([current?.shutdown(), ...draining]);
      })(),
  };
}

/**
 * The port a listener without its certificate yet will take: the given one,
 * or for port 0 one the OS picks now (held only until it is known).
 */
function holdPort(options: { hostname: string; port: number }): number {
  if (options.port !== 0) return options.port;
  const probe = Deno.listen({ hostname: options.hostname, port: 0 });
  const { port } = probe.addr as Deno.NetAddr;
  probe.close();
  return port;
}

/**
 * Calls `onChange` when one of `files` is written, replaced or renamed over,
 * or the `..data` link beside it swapped (a Kubernetes secret volume), or
 * anything in one of `folderPaths` changes.
 */
function watchPaths(
  files: string[],
  folderPaths: string[],
  onChange: () => void,
): { close(): Promise<void> } {
  // Events name real paths: a folder reached through a link is watched at its target.
  const real = files.map((path) => {
    const slash = path.lastIndexOf("/");
    const folder = Deno.realPathSync(path.slice(0, slash) || "/");
    return { folder, file: `${folder === "/" ? "" : folder}${path.slice(slash)}` };
  });
  const watchedFolders = folderPaths.map((folder) => Deno.realPathSync(folder));
  const folders = [...new Set([...real.map(({ folder }) => folder), ...watchedFolders])];
  const watched = new Set([
    ...real.map(({ file }) => file),
    ...folders.map((folder) => `${folder === "/" ? "" : folder}/..data`),
  ]);
  const inWatchedFolder = (path: string) =>
    watchedFolders.some((folder) => path.slice(0, path.lastIndexOf("/")) === folder);
  const watcher = Deno.watchFs(folders, { recursive: false });
  const watching = (async () => {
    for await (const event of watcher) {
      if (event.paths.some((path) => watched.has(path) || inWatchedFolder(path))) onChange();
    }
  })();
  return {
    async close() {
      watcher.close();
      await watching.catch(() => {});
    },
  };
}
