/**
 * A real dnsmasq for the tests, on 127.0.0.1 and a UDP port the OS picks,
 * answering from a hosts file the test rewrites; `DNSMASQ` is undefined where
 * it is not installed (`.ci/run` installs dnsmasq-base), and says so once.
 *
 * @module
 */

import { installedAt, waitFor } from "./helpers.ts";

/** The dnsmasq binary, or undefined where it is not installed. */
export const DNSMASQ = installedAt("/usr/sbin/dnsmasq", "/usr/bin/dnsmasq");
if (DNSMASQ === undefined) {
  console.warn(
    "tests that need DNS: skipped, dnsmasq is not installed (apt-get install dnsmasq-base)",
  );
}

/** A running dnsmasq. */
export interface Dnsmasq extends AsyncDisposable {
  readonly port: number;
  /** Replaces the hosts file and makes dnsmasq read it again. */
  setHosts(text: string): Promise<void>;
  stop(): Promise<void>;
}

/** A free UDP port on 127.0.0.1, as the OS chose it. */
function freeUdpPort(): number {
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  socket.close();
  return port;
}

/** dnsmasq answering from a hosts file and `extra` options only, on 127.0.0.1. */
export async function startDnsmasq(hosts: string, extra: string[] = []): Promise<Dnsmasq> {
  const dir = await Deno.makeTempDir({ prefix: "dnsmasq_" });
  const hostsFile = `${dir}/hosts`;
  await Deno.writeTextFile(hostsFile, hosts);
  const port = freeUdpPort();
  const child = new Deno.Command(DNSMASQ!, {
    args: [
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${hostsFile}`,
      "--cache-size=0",
      "--pid-file=",
      "--user=root",
      ...extra,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const nameServer = { ipAddr: "127.0.0.1", port };
  await waitFor(async () => {
    try {
      await Deno.resolveDns("ready.invalid", "A", { nameServer });
      return true;
    } catch (error) {
      // NXDOMAIN is an answer: dnsmasq is up.
      return error instanceof Deno.errors.NotFound;
    }
  }, "dnsmasq answering");
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* it has exited */ }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    })();
  return {
    port,
    async setHosts(text) {
      await Deno.writeTextFile(hostsFile, text);
      child.kill("SIGHUP");
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
