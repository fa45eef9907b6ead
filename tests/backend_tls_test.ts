/**
 * TLS to backends, against real servers on loopback with certificates of a
 * throwaway CA: a private CA in `tls.ca`, `tls.server_name`, client
 * certificates (an `openssl s_server` that requires one), health probes with
 * the pool's TLS, and the config problems of `tls`.
 *
 * @module
 */

import type { BackendTlsConfig } from "../src/config/types.ts";
import { readBackendTls } from "../src/config/tls_files.ts";
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../src/config/config.ts";
import { HealthChecker } from "../src/health_check.ts";
import { newBackend } from "../src/load_balancer.ts";
import { Pool } from "../src/pools/pool.ts";
import type { TransportName } from "../src/types.ts";
import { startTestBalancer } from "./helpers.ts";
import {
  makeClientCertificate,
  makeTestCertificates,
  type TestCertificates,
} from "./test_certificates.ts";

const TRANSPORTS: TransportName[] = ["http1", "fetch"];

/** An HTTPS backend on 127.0.0.1, its certificate (for localhost and 127.0.0.1) of the test CA. */
async function startTlsBackend(certs: TestCertificates) {
  const files = await certs.server("backend");
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(files.cert),
    key: await Deno.readTextFile(files.key),
    onListen() {},
  }, (request) => new Response(`tls ok ${new URL(request.url).pathname}`));
  return {
    url: `https://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A balancer in front of one pool `web`; lines of its log and of console.error go to `lines`. */
function startPoolBalancer(pool: string, lines: string[]) {
  return startTestBalancer(
    `logging: { access: off }
health_check: { interval: 60s }
pools:
  web:
${pool.replace(/^/gm, "    ")}
routes:
  - pool: web
`,
    (line) => lines.push(line),
  );
}

/** Sends console.error's lines to `lines` (the proxy logs failed attempts there) until disposed. */
function captureConsoleError(lines: string[]): Disposable {
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  return { [Symbol.dispose]: () => console.error = original };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** The console.error line of the failed attempt. */
function upstreamLine(lines: string[]): string {
  const line = lines.find((line) => line.startsWith("upstream "));
  assert.ok(line !== undefined, `no upstream line in ${JSON.stringify(lines)}`);
  return line;
}

for (const transport of TRANSPORTS) {
  Deno.test(`backend tls (${transport}): a backend whose CA is in tls.ca is proxied to`, async () => {
    await using certs = await makeTestCertificates();
    await using backend = await startTlsBackend(certs);
    const lines: string[] = [];
    await using lb = startPoolBalancer(
      `transport: ${transport}
backends: [{ url: ${backend.url} }]
tls: { ca: ${certs.caPath} }`,
      lines,
    );
    const answer = await get(`http://127.0.0.1:${lb.addr.port}/hello`);
    assert.deepEqual(answer, { status: 200, body: "tls ok /hello" });
  });

  Deno.test(`backend tls (${transport}): an untrusted certificate is a 502 that says so`, async () => {
    await using certs = await makeTestCertificates();
    await using backend = await startTlsBackend(certs);
    const lines: string[] = [];
    await using lb = startPoolBalancer(
      `transport: ${transport}
backends: [{ url: ${backend.url} }]`,
      lines,
    );
    {
      using _ = captureConsoleError(lines);
      const answer = await get(`http://127.0.0.1:${lb.addr.port}/`);
      assert.equal(answer.status, 502);
    }
    assert.match(upstreamLine(lines), /: tls: certificate not trusted \(.*UnknownIssuer\)/);
    const [web] = lb.proxy.pools.get("web")!.backends;
    assert.equal(web.healthy, false, "a failed handshake counts as a refused connection");
  });
}

Deno.test("backend tls: server_name is the name the certificate must carry", async () => {
  await using certs = await makeTestCertificates();
  await using backend = await startTlsBackend(certs);
  const lines: string[] = [];
  const pool = (name: string) =>
    `backends: [{ url: ${backend.url} }]
tls: { ca: ${certs.caPath}, server_name: ${name} }`;
  {
    await using lb = startPoolBalancer(pool("localhost"), lines);
    const answer = await get(`http://127.0.0.1:${lb.addr.port}/named`);
    assert.deepEqual(answer, { status: 200, body: "tls ok /named" });
  }
  await using lb = startPoolBalancer(pool("wrong.name"), lines);
  {
    using _ = captureConsoleError(lines);
    const answer = await get(`http://127.0.0.1:${lb.addr.port}/`);
    assert.equal(answer.status, 502);
  }
  assert.match(upstreamLine(lines), /: tls: invalid peer certificate: .*"wrong\.name"/);
});

Deno.test("backend tls: each pool verifies with its own tls", async () => {
  await using certs = await makeTestCertificates();
  await using backend = await startTlsBackend(certs);
  using _ = captureConsoleError([]);
  await using lb = startTestBalancer(`logging: { access: off }
health_check: { interval: 60s }
pools:
  trusting: { backends: [{ url: ${backend.url} }], tls: { ca: ${certs.caPath} } }
  wary: { backends: [{ url: ${backend.url} }] }
routes:
  - { match: { path_prefix: /wary }, pool: wary }
  - pool: trusting
`);
  const base = `http://127.0.0.1:${lb.addr.port}`;
  assert.equal((await get(`${base}/trusting`)).status, 200);
  assert.equal((await get(`${base}/wary`)).status, 502);
  assert.equal((await get(`${base}/trusting`)).status, 200);
});

/** A port nothing listens on now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * `openssl s_server` on a free loopback port, requiring a client
 * certificate signed by the test CA and answering every GET with a status
 * page; undefined when it cannot run.
 */
async function startClientCertServer(certs: TestCertificates) {
  const files = await certs.server("mtls");
  const port = freePort();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("openssl", {
      args: [
        "s_server",
        "-accept",
        `127.0.0.1:${port}`,
        "-cert",
        files.cert,
        "-key",
        files.key,
        "-CAfile",
        certs.caPath,
        "-Verify",
        "1",
        "-www",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (error) {
    console.log(`skipped: openssl s_server cannot start: ${error}`);
    return undefined;
  }
  // It prints ACCEPT once it listens; the rest of its output is drained.
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("ACCEPT")) {
    const { done, value } = await lines.read();
    if (done) break;
    output += value;
  }
  if (!output.includes("ACCEPT")) {
    console.log(`skipped: openssl s_server did not listen: ${output.trim() || "no output"}`);
    await child.status;
    return undefined;
  }
  const drained = (async () => {
    while (!(await lines.read()).done);
  })();
  return {
    url: `https://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await Promise.all([child.status, drained]);
    },
  };
}

Deno.test("backend tls: tls.cert and tls.key give the backend a client certificate", async (t) => {
  await using certs = await makeTestCertificates();
  await using server = await startClientCertServer(certs);
  if (server === undefined) return;
  const client = await makeClientCertificate(certs, "client");
  const withCert = `tls: { ca: ${certs.caPath}, cert: ${client.cert}, key: ${client.key} }`;
  for (const transport of TRANSPORTS) {
    await t.step(`${transport} with a client certificate: 200`, async () => {
      await using lb = startPoolBalancer(
        `transport: ${transport}
backends: [{ url: ${server.url} }]
${withCert}`,
        [],
      );
      const answer = await get(`http://127.0.0.1:${lb.addr.port}/`);
      assert.equal(answer.status, 200);
      assert.match(answer.body, /Ciphers supported in s_server binary/);
    });
    await t.step(`${transport} without one: 502`, async () => {
      const lines: string[] = [];
      await using lb = startPoolBalancer(
        `transport: ${transport}
backends: [{ url: ${server.url} }]
tls: { ca: ${certs.caPath} }`,
        lines,
      );
      {
        using _ = captureConsoleError(lines);
        assert.equal((await get(`http://127.0.0.1:${lb.addr.port}/`)).status, 502);
      }
      // TLS 1.3 clients finish their handshake first: the refusal may come with the answer.
      assert.match(upstreamLine(lines), /: received fatal alert: CertificateRequired$/);
    });
  }
  await t.step("health probes send the client certificate", async () => {
    const config = parseConfig(
      `pools:
  web:
    backends: [{ url: ${server.url} }]
    ${withCert}
routes: [{ pool: web }]
`,
      "mtls.yaml",
    );
    const backend = newBackend({ url: server.url, weight: 1, transport: "http1" }, 0);
    const health = new HealthChecker(
      [backend],
      config.health_check,
      () => {},
      readBackendTls(config.pools!.web.tls!) as BackendTlsConfig,
    );
    await health.probeAll();
    assert.equal(health.lastCheck(backend)?.detail, "health check passed");
    health.useTls({ ca: certs.ca });
    await health.probeAll();
    assert.match(health.lastCheck(backend)!.detail, /CertificateRequired/);
    await health.stop();
  });
});

Deno.test("backend tls: health probes verify with the pool's tls", async (t) => {
  await using certs = await makeTestCertificates();
  await using server = await startTlsBackend(certs);
  const options = {
    ...parseConfig("backends: [{ url: http://127.0.0.1:1 }]", "c.yaml").health_check,
    path: "/health",
    unhealthy_threshold: 1,
  };
  const probe = async (tls: Parameters<HealthChecker["useTls"]>[0]) => {
    const backend = newBackend({ url: server.url, weight: 1, transport: "http1" }, 0);
    const health = new HealthChecker([backend], options, () => {}, tls);
    await health.probeAll();
    await health.stop();
    return { healthy: backend.healthy, detail: health.lastCheck(backend)!.detail };
  };
  await t.step("with tls.ca the backend stays up", async () => {
    assert.deepEqual(await probe({ ca: certs.ca }), {
      healthy: true,
      detail: "health check passed",
    });
  });
  await t.step("without it the probe fails: the certificate is not trusted", async () => {
    const { healthy, detail } = await probe({});
    assert.equal(healthy, false);
    assert.match(detail, /^health check failed: tls: certificate not trusted/);
  });
  await t.step("with server_name the probe checks that name", async () => {
    assert.equal((await probe({ ca: certs.ca, server_name: "localhost" })).healthy, true);
    const { healthy, detail } = await probe({ ca: certs.ca, server_name: "wrong.name" });
    assert.equal(healthy, false);
    assert.match(detail, /^health check failed: tls: invalid peer certificate: .*"wrong\.name"/);
  });
});

Deno.test("backend tls: a reload that changes tls replaces the pool's transports", async () => {
  await using certs = await makeTestCertificates();
  const config = (tls: string) =>
    parseConfig(
      `pools:\n  web:\n    backends: [{ url: https://127.0.0.1:1 }]\n${tls}routes: [{ pool: web }]\n`,
      "reload.yaml",
    );
  const before = config("");
  const pool = new Pool(before.pools!.web, before.timeouts, () => {});
  try {
    const same = pool.apply(config("").pools!.web, before.timeouts);
    assert.equal(same.replaced.length, 0);
    const trusting = pool.apply(
      config(`    tls: { ca: ${certs.caPath} }\n`).pools!.web,
      before.timeouts,
    );
    assert.equal(trusting.replaced.length, 2);
    for (const transport of trusting.replaced) transport.close();
  } finally {
    await pool.close();
  }
});

Deno.test("backend tls: config problems name the key and the file", async () => {
  await using certs = await makeTestCertificates();
  const client = await makeClientCertificate(certs, "client");
  const problems = (tls: string, extra = "") => {
    try {
      parseConfig(
        `pools:
  web:
    backends: [{ url: https://127.0.0.1:8443 }]${extra}
    tls:
${tls.replace(/^/gm, "      ")}
routes: [{ pool: web }]
`,
        "lb.yaml",
      );
    } catch (error) {
      if (error instanceof ConfigError) return error.message;
      throw error;
    }
    assert.fail("the config was accepted");
  };
  assert.equal(
    problems(`ca: ${certs.dir}/missing.pem`),
    `lb.yaml:5 pools.web.tls.ca: cannot read ${certs.dir}/missing.pem: not found`,
  );
  assert.equal(
    problems(`ca: ${client.key}`),
    `lb.yaml:5 pools.web.tls.ca: ${client.key} holds no PEM certificate`,
  );
  assert.equal(
    problems(`cert: ${client.cert}`),
    "lb.yaml:5 pools.web.tls.cert: a client certificate needs both cert and key",
  );
  assert.equal(
    problems(`cert: ${client.cert}\nkey: ${certs.dir}/missing.key`),
    `lb.yaml:6 pools.web.tls.key: cannot read ${certs.dir}/missing.key: not found`,
  );
  assert.equal(
    problems(`cert: ${client.cert}\nkey: ${await certs.strayKey()}`),
    `lb.yaml:6 pools.web.tls.key: ${certs.dir}/stray.key is not the key of the certificate in ${client.cert}`,
  );
  assert.match(
    problems(`server_name: web.internal\ncert: ${client.cert}\nkey: ${client.key}`),
    /^lb\.yaml:5 pools\.web\.tls\.server_name: a client certificate cannot go with server_name/,
  );
  assert.match(
    problems("server_name: web.internal", "\n    transport: fetch"),
    /^lb\.yaml:6 pools\.web\.tls\.server_name: server_name works with the http1 transport only/,
  );
  assert.equal(
    problems("server_name: not a name"),
    'lb.yaml:5 pools.web.tls.server_name: expected a DNS name like "web.internal", got "not a name"',
  );
  const config = parseConfig(
    `pools:
  web:
    backends: [{ url: https://127.0.0.1:8443 }]
    tls: { ca: ${certs.caPath}, cert: ${client.cert}, key: ${client.key} }
routes: [{ pool: web }]
`,
    "lb.yaml",
  );
  assert.deepEqual(config.pools!.web.tls, {
    ca: certs.caPath,
    cert: client.cert,
    key: client.key,
  }, "the config keeps the paths: /status shows them, never a key");
  assert.deepEqual(readBackendTls(config.pools!.web.tls!), {
    ca: certs.ca,
    cert: await Deno.readTextFile(client.cert),
    key: await Deno.readTextFile(client.key),
  });
});
