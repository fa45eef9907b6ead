/**
 * DNS discovery against a real dnsmasq on 127.0.0.1, on a port the test
 * picks, whose hosts file the test rewrites: addresses join and leave with
 * no failed request, SRV records give ports and weights, and a name server
 * that goes away leaves the last set in force. Skipped, saying why, where
 * dnsmasq is not installed (`.ci/run` installs it).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Status } from "../src/observability/telemetry.ts";
import { DNSMASQ, type Dnsmasq, startDnsmasq } from "./dnsmasq.ts";
import {
  adminUrl,
  adminYaml,
  baseUrl,
  getJson,
  parsePrometheus,
  rawRequest,
  sampleValue,
  startTestBalancer,
  type TestBackend,
  waitFor,
} from "./helpers.ts";

/** Backends on 127.0.0.2, 127.0.0.3, ... that share one port, as A records need. */
function startBackendsOnOnePort(count: number): TestBackend[] {
  const first = Deno.serve(
    { hostname: "127.0.0.2", port: 0, onListen() {} },
    () => new Response("127.0.0.2"),
  );
  const port = first.addr.port;
  const servers = [first];
  for (let i = 1; i < count; i++) {
    const host = `127.0.0.${i + 2}`;
    servers.push(Deno.serve({ hostname: host, port, onListen() {} }, () => new Response(host)));
  }
  return servers.map((server) => ({
    url: `http://${server.addr.hostname}:${port}`,
    port,
    close: () => server.shutdown(),
    [Symbol.asyncDispose]: () => server.shutdown(),
  }));
}

function poolYaml(dns: Dnsmasq, discovery: string): string {
  return `health_check: { interval: 1h }
logging: { access: off }
pools:
  api:
    discovery: { ${discovery}, interval: 1s, nameserver: "127.0.0.1:${dns.port}" }
routes:
  - pool: api
${adminYaml()}`;
}

Deno.test({
  name: "dns: an address added joins, one removed drains, not one request fails",
  ignore: DNSMASQ === undefined,
  async fn() {
    const backends = startBackendsOnOnePort(2);
    await using dns = await startDnsmasq("127.0.0.2 api.test\n");
    const lines: string[] = [];
    await using lb = startTestBalancer(
      poolYaml(dns, `dns: api.test, type: A, port: ${backends[0].port}`),
      (line) => lines.push(line),
    );
    const answers: string[] = [];
    const failures: string[] = [];
    let stop = false;
    const client = (async () => {
      for (let i = 0; i < 100_000 && !stop; i++) {
        const response = await fetch(baseUrl(lb));
        const text = await response.text();
        if (response.status === 200) answers.push(text);
        else if (answers.length > 0) failures.push(`${response.status} ${text}`);
      }
    })();
    try {
      await waitFor(() => answers.includes("127.0.0.2"), "the first address in rotation", 30_000)
        .catch((error) => {
          const seen = `answers ${answers.length}, failures ${failures.slice(-3).join(" | ")}`;
          throw new Error(`${error.message} (${seen}):\n${lines.join("\n")}`);
        });
      await dns.setHosts("127.0.0.2 api.test\n127.0.0.3 api.test\n");
      await waitFor(() => answers.includes("127.0.0.3"), "the added address joins", 5000);
      await dns.setHosts("127.0.0.3 api.test\n");
      await waitFor(
        () => answers.length > 50 && answers.slice(-50).every((answer) => answer === "127.0.0.3"),
        "the removed address leaves",
        5000,
      );
      const status = await getJson<Status>(`${adminUrl(lb)}/status`);
      assert.deepEqual(
        status.pools[0].backends.map((backend) => [backend.url, backend.dns]),
        [[backends[1].url, "api.test"]],
      );
      const metrics = parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text());
      assert.ok(
        sampleValue(metrics, "lb_dns_lookups_total", { pool: "api", result: "success" }) >= 3,
      );
      assert.equal(sampleValue(metrics, "lb_dns_backends", { pool: "api" }), 1);
    } finally {
      stop = true;
      await client;
      for (const backend of backends) await backend.close();
    }
    assert.deepEqual(failures, [], "no request failed while addresses came and went");
    assert.ok(
      lines.some((line) =>
        line === `dns api.test (pool api): 2 backends ${backends[0].url} ${backends[1].url}`
      ),
    );
  },
});

Deno.test({
  name: "dns: SRV records give each backend its port and weight",
  ignore: DNSMASQ === undefined,
  async fn() {
    const [a] = startBackendsOnOnePort(1);
    await using dns = await startDnsmasq("127.0.0.2 a.srv.test\n", [
      `--srv-host=_http._tcp.api.test,a.srv.test,${a.port},0,3`,
      "--srv-host=_http._tcp.api.test,127.0.0.2,1,0,1",
    ]);
    await using lb = startTestBalancer(poolYaml(dns, "dns: _http._tcp.api.test, type: SRV"));
    try {
      const pool = lb.proxy.pools.get("api")!;
      await waitFor(() => pool.backends.length === 2, "both SRV targets", 5000);
      assert.deepEqual(
        pool.backends.map((backend) => [backend.url.origin, backend.weight]).sort(),
        [["http://127.0.0.2:1", 1], [a.url, 3]].sort(),
      );
    } finally {
      await a.close();
    }
  },
});

Deno.test({
  name: "dns: a name server that stops answering leaves the last set in force",
  ignore: DNSMASQ === undefined,
  async fn() {
    const [backend] = startBackendsOnOnePort(1);
    const dns = await startDnsmasq("127.0.0.2 api.test\n");
    const lines: string[] = [];
    await using lb = startTestBalancer(
      poolYaml(dns, `dns: api.test, type: A, port: ${backend.port}`),
      (line) => lines.push(line),
    );
    try {
      await waitFor(
        async () => (await (await fetch(baseUrl(lb))).text()) === "127.0.0.2",
        "in rotation",
      );
      const beforeStop = lines.length;
      await dns.stop();
      await waitFor(
        () =>
          lines.slice(beforeStop).some((line) =>
            /^dns api\.test \(pool api\) failed: .*; keeping the last 1 backends$/.test(line)
          ),
        "the failure logged",
        8000,
      );
      const response = await fetch(baseUrl(lb));
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "127.0.0.2");
      const failures = lines.slice(beforeStop).filter((line) =>
        line.startsWith("dns ") && line.includes("failed")
      );
      assert.equal(failures.length, 1, `logged once per change of outcome: ${lines.join("\n")}`);
    } finally {
      await dns.stop();
      await backend.close();
    }
  },
});

Deno.test({
  name: "dns: a pool that never resolved has no backends: 503",
  ignore: DNSMASQ === undefined,
  async fn() {
    await using dns = await startDnsmasq("");
    await using lb = startTestBalancer(poolYaml(dns, "dns: missing.test, type: A, port: 1"));
    const response = await fetch(baseUrl(lb));
    await response.body?.cancel();
    assert.equal(response.status, 503);
  },
});

Deno.test({
  name: "dns: with 2 workers the primary resolves and every worker serves the set",
  ignore: DNSMASQ === undefined,
  async fn() {
    const [backend] = startBackendsOnOnePort(1);
    await using dns = await startDnsmasq("127.0.0.2 api.test\n");
    await using lb = startTestBalancer(
      "workers: 2\n" + poolYaml(dns, `dns: api.test, type: A, port: ${backend.port}`),
    );
    try {
      await lb.ready;
      const ask = async () =>
        new TextDecoder().decode(
          (await rawRequest(
            lb.addr.port,
            "GET / HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n",
          )).body,
        );
      await waitFor(async () => await ask() === "127.0.0.2", "the set in force");
      // New connections land on either isolate: each must have the discovered backend.
      await waitFor(async () => {
        const answers = await Promise.all(Array.from({ length: 20 }, ask));
        return answers.every((answer) => answer === "127.0.0.2");
      }, "every isolate serving it");
      const metrics = parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text());
      const served = ["0", "1"].map((worker) =>
        sampleValue(metrics, "lb_worker_requests_total", { worker })
      );
      assert.ok(served.every((count) => count > 0), `both isolates served: ${served}`);
    } finally {
      await backend.close();
    }
  },
});
