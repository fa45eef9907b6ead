/**
 * Addresses to listen on, and how log lines and errors write them. Kept apart
 * from the config's parser so that worker isolates, which never read a
 * config file, do not load it.
 *
 * @module
 */

/**
 * An address to listen on.
 *
 * @example
 * ```ts
 * const listen: ListenConfig = { host: "127.0.0.1", port: 9090 };
 * ```
 */
export interface ListenConfig {
  host: string;
  /** 0 lets the OS choose. */
  port: number;
}

/**
 * `host:port`, with an IPv6 host in brackets.
 *
 * @example
 * ```ts
 * formatAddress({ host: "::1", port: 9090 }); // "[::1]:9090"
 * ```
 */
export function formatAddress({ host, port }: ListenConfig): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
