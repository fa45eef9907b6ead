/**
 * The `connections` scenario: many clients at once, as an edge proxy meets
 * them. 5,000 clients each open a keep-alive connection and send one
 * `GET /small` before any answer is read; the burst ends when every one is
 * answered. The connections are then held idle for a while, the proxy's
 * memory sampled, and a new client must still be answered at once.
 *
 * @module
 */

import { sleep } from "./processes.ts";
import { rssOf, RssSampler } from "./rss.ts";
import { SCENARIOS } from "./scenarios.ts";
import type { Setup } from "./setups.ts";
import type { TargetContext } from "./target.ts";

/** What one setup did with the burst and the idle connections. */
export interface ConnectionsResult {
  clients: number;
  /** From the first connect to the last answer. */
  burstS: number;
  /** Clients not answered correctly. */
  failed: number;
  idleRssKiB: number;
  /** The highest RSS during the burst. */
  burstPeakRssKiB: number;
  /** RSS at the end of the burst and at the end of the idle hold. */
  afterBurstRssKiB: number;
  afterIdleRssKiB: number;
  /** (after the burst - idle) / clients. */
  kibPerConnection: number;
  /** A new client's GET while the others are held: connect to answer. */
  newClientMs: number;
}

/** Connects opened at once while the burst starts: the kernel's accept queue takes the rest. */
const CONNECT_CONCURRENCY = 256;
const REQUEST = new TextEncoder().encode(
  `GET ${SCENARIOS.small.path} HTTP/1.1\r\nhost: bench\r\n\r\n`,
);

/** Runs the scenario on a fresh target of `setup`, holding the connections `idleS` seconds. */
export async function measureConnections(
  setup: Setup,
  context: TargetContext,
  clients: number,
  idleS: number,
): Promise<ConnectionsResult> {
  const target = await setup.start(context);
  const { hostname, port } = new URL(target.origin);
  const pid = target.process?.pid;
  const conns: Deno.TcpConn[] = [];
  try {
    await answered(await Deno.connect({ hostname, port: Number(port) }));
    const idleRssKiB = pid === undefined ? 0 : rssOf(pid);
    using sampler = pid === undefined ? undefined : new RssSampler(pid);
    const started = performance.now();
    for (let i = 0; i < clients; i += CONNECT_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONNECT_CONCURRENCY, clients - i) }, async () => {
        const conn = await Deno.connect({ hostname, port: Number(port) });
        conns.push(conn);
        await conn.write(REQUEST);
      });
      await Promise.all(batch);
    }
    const results = await Promise.all(conns.map((conn) => readAnswer(conn)));
    const burstS = (performance.now() - started) / 1000;
    const burstPeakRssKiB = sampler?.peakKiB() ?? 0;
    const afterBurstRssKiB = pid === undefined ? 0 : rssOf(pid);
    await sleep(idleS * 1000);
    const afterIdleRssKiB = pid === undefined ? 0 : rssOf(pid);
    const newClientStarted = performance.now();
    const fresh = await Deno.connect({ hostname, port: Number(port) });
    const newOk = await answered(fresh);
    const newClientMs = performance.now() - newClientStarted;
    return {
      clients,
      burstS,
      failed: results.filter((ok) => !ok).length + (newOk ? 0 : 1),
      idleRssKiB,
      burstPeakRssKiB,
      afterBurstRssKiB,
      afterIdleRssKiB,
      kibPerConnection: (afterBurstRssKiB - idleRssKiB) / clients,
      newClientMs,
    };
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // closed by the proxy already
      }
    }
    await target.process?.stop();
  }
}

/** Sends the request on `conn`, reads the answer and closes it; whether it was right. */
async function answered(conn: Deno.TcpConn): Promise<boolean> {
  try {
    await conn.write(REQUEST);
    return await readAnswer(conn);
  } finally {
    conn.close();
  }
}

/** Reads one response to `GET /small`: a 200 head and its 16-byte body. */
async function readAnswer(conn: Deno.TcpConn): Promise<boolean> {
  const buffer = new Uint8Array(4096);
  let filled = 0;
  const text = () => new TextDecoder().decode(buffer.subarray(0, filled));
  for (;;) {
    const read = await conn.read(buffer.subarray(filled)).catch(() => null);
    if (read === null) return false;
    filled += read;
    const current = text();
    const end = current.indexOf("\r\n\r\n");
    if (end === -1) continue;
    if (filled - end - 4 >= SCENARIOS.small.responseBytes) {
      return current.startsWith("HTTP/1.1 200");
    }
  }
}
