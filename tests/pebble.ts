/**
 * A real Pebble (Let's Encrypt's ACME test server, Debian's `pebble`) for
 * the tests, on 127.0.0.1: its own HTTPS with a certificate from the test
 * CA, its challenge connections sent to the balancer's plain listener
 * (`httpPort`) and its DNS lookups to a dnsmasq the test runs. The
 * validation is real (no `PEBBLE_VA_ALWAYS_VALID`); `PEBBLE_VA_NOSLEEP`
 * keeps it fast. `PEBBLE` is undefined where it is not installed, and says
 * so once.
 *
 * @module
 */

import { installedAt, spawnGathering, waitFor } from "./helpers.ts";
import type { TestCertificates } from "./test_certificates.ts";

/** The pebble binary, or undefined where it is not installed. */
export const PEBBLE = installedAt("/usr/bin/pebble", "/usr/local/bin/pebble");
if (PEBBLE === undefined) {
  console.warn("acme tests: skipped, pebble is not installed (apt-get install pebble)");
}

/** A running Pebble. */
export interface Pebble extends AsyncDisposable {
  /** The ACME directory URL. */
  readonly directory: string;
  /** The root that signs what it issues (from its management API), PEM. */
  root(): Promise<string>;
  /** Everything Pebble logged so far. */
  log(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1, as the OS chose it. */
export function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Starts Pebble with HTTPS from `certs` (its CA is what the balancer's
 * `tls.acme.ca` trusts), validating http-01 on `httpPort` of the addresses
 * `dnsPort`'s server gives, refusing orders that name a `blocked` domain.
 */
export async function startPebble(
  certs: TestCertificates,
  options: { httpPort: number; dnsPort: number; blocked?: string[] },
): Promise<Pebble> {
  const own = await certs.server("pebble");
  const port = freeTcpPort();
  const management = freeTcpPort();
  const configPath = `${certs.dir}/pebble-${port}.json`;
  await Deno.writeTextFile(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${management}`,
        certificate: own.cert,
        privateKey: own.key,
        httpPort: options.httpPort,
        tlsPort: freeTcpPort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
        domainBlocklist: options.blocked ?? [],
      },
    }),
  );
  const process = spawnGathering(
    PEBBLE!,
    [
      "-config",
      configPath,
      "-dnsserver",
      `127.0.0.1:${options.dnsPort}`,
    ],
    "piped",
    { PEBBLE_VA_NOSLEEP: "1" },
  );
  const directory = `https://127.0.0.1:${port}/dir`;
  const client = Deno.createHttpClient({ caCerts: [certs.ca] });
  const get = async (url: string) => {
    const response = await fetch(url, { client });
    const text = await response.text();
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return text;
  };
  await waitFor(() => process.stdout().includes("Listening on"), "pebble listening");
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      client.close();
      await process.finish();
    })();
  return {
    directory,
    root: () => get(`https://127.0.0.1:${management}/roots/0`),
    log: () => process.stdout() + process.stderr(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
