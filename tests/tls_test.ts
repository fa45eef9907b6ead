/**
 * TLS termination with certificates the tests make: HTTPS listeners beside
 * plain ones, HTTP/2 to clients that offer it (curl and Deno's fetch), Host
 * from `:authority`, concurrent streams, routes on the scheme, and the
 * certificate problems that stop a config.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConfigError, loadConfig, parseConfig, summarizeConfig } from "../src/config/config.ts";
import { startBalancer } from "../src/server.ts";
import {
  adminUrl,
  parsePrometheus,
  sampleValue,
  startBackend,
  startHoldingBackend,
  type TestBackend,
  waitFor,
} from "./helpers.ts";
import { makeTestCertificates, type TestCertificates } from "./test_certificates.ts";

/** A backend that answers with the Host, X-Forwarded-Host and X-Forwarded-Proto it got. */
function startEchoBackend(): TestBackend {
  return startBackend((request) =>
    Response.json({
      host: request.headers.get("host"),
      forwardedHost: request.headers.get("x-forwarded-host"),
      proto: request.headers.get("x-forwarded-proto"),
      path: new URL(request.url).pathname,
    }, { headers: { connection: "keep-alive", "keep-alive": "timeout=5" } })
  );
}

/** A plain and a TLS listener on ports the OS picks, in front of `backend`. */
async function startTlsBalancer(certs: TestCertificates, backend: TestBackend, extra = "") {
  const { cert, key } = await certs.server("site");
  const config = parseConfig(
    `listen:
  - { host: 127.0.0.1, port: 0 }
  - { host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key} } }
logging: { access: off }
backends: [{ url: ${backend.url} }]
${extra}`,
    "tls.yaml",
  );
  const lb = startBalancer(config, () => {}, () => {});
  const [plain, secure] = lb.addrs;
  return {
    lb,
    plain: `http://127.0.0.1:${plain.port}`,
    secure: `https://localhost:${secure.port}`,
  };
}

/** Runs curl with `args`; resolves to its stdout. */
async function curl(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("curl", {
    args,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decoder = new TextDecoder();
  if (code !== 0) throw new Error(`curl ${args.join(" ")}: ${decoder.decode(stderr)}`);
  return decoder.decode(stdout);
}

Deno.test("tls: HTTPS beside HTTP, X-Forwarded-Proto https, the CA's certificate checked by clients", async () => {
  await using certs = await makeTestCertificates();
  await using backend = startEchoBackend();
  const { lb, plain, secure } = await startTlsBalancer(certs, backend);
  await using _ = lb;
  using trusting = Deno.createHttpClient({ caCerts: [certs.ca] });
  const overTls = await (await fetch(`${secure}/a`, { client: trusting })).json();
  assert.equal(overTls.proto, "https");
  assert.equal(overTls.path, "/a");
  const overPlain = await (await fetch(`${plain}/b`)).json();
  assert.equal(overPlain.proto, "http");
  await assert.rejects(fetch(`${secure}/c`), "a client that does not trust the test CA refuses it");
});

Deno.test("tls: HTTP/2 to clients that offer it, Host from :authority, no hop-by-hop header back", async () => {
  await using certs = await makeTestCertificates();
  await using backend = startEchoBackend();
  const { lb, secure } = await startTlsBalancer(certs, backend);
  await using _ = lb;
  const output = await curl([
    "-s",
    "--http2",
    "--cacert",
    certs.caPath,
    "-D",
    "-",
    "-w",
    "\n%{http_version}",
    `${secure}/h2`,
  ]);
  const [head, rest] = output.split("\r\n\r\n");
  const [body, version] = rest.split("\n");
  assert.equal(version, "2");
  assert.match(head, /^HTTP\/2 200/);
  assert.doesNotMatch(head, /^(connection|keep-alive|transfer-encoding):/im);
  const seen = JSON.parse(body);
  assert.equal(seen.host, `localhost:${lb.addrs[1].port}`, "Host from :authority");
  assert.equal(seen.forwardedHost, `localhost:${lb.addrs[1].port}`);
  const oneOne = await curl([
    "-s",
    "--http1.1",
    "--cacert",
    certs.caPath,
    "-w",
    "\n%{http_version}",
    `${secure}/h1`,
  ]);
  assert.equal(oneOne.split("\n").at(-1), "1.1", "HTTP/1.1 for a client that offers only that");
});

Deno.test("tls: concurrent streams on one HTTP/2 connection do not wait for a slow one", async () => {
  await using certs = await makeTestCertificates();
  await using backend = startHoldingBackend("/slow", "done");
  const { lb, secure } = await startTlsBalancer(certs, backend);
  await using _ = lb;
  using h2 = Deno.createHttpClient({ caCerts: [certs.ca], http1: false, http2: true });
  const slow = fetch(`${secure}/slow`, { client: h2 });
  await backend.arrived;
  const fast = await Promise.all(
    Array.from(
      { length: 5 },
      async (_, i) => await (await fetch(`${secure}/f${i}`, { client: h2 })).text(),
    ),
  );
  assert.deepEqual(fast, ["done", "done", "done", "done", "done"]);
  backend.release();
  assert.equal(await (await slow).text(), "done");
});

Deno.test("tls: routes match the scheme; http is redirected to https through a route", async () => {
  await using certs = await makeTestCertificates();
  await using backend = startEchoBackend();
  const { lb, plain, secure } = await startTlsBalancer(
    certs,
    backend,
    "routes:\n  - { match: { scheme: http }, redirect: { scheme: https, status: 308 } }\n  - pool: default\n",
  );
  await using _ = lb;
  const redirected = await fetch(`${plain}/x?y=1`, { redirect: "manual" });
  await redirected.body?.cancel();
  assert.equal(redirected.status, 308);
  assert.equal(redirected.headers.get("location"), "https://127.0.0.1/x?y=1");
  using trusting = Deno.createHttpClient({ caCerts: [certs.ca] });
  assert.equal((await (await fetch(`${secure}/x`, { client: trusting })).json()).proto, "https");
});

Deno.test("tls: a missing, mismatched or expired certificate is a config error naming the file", async () => {
  await using certs = await makeTestCertificates();
  const good = await certs.server("good");
  const expired = await certs.server("old", { expired: true });
  const stray = await certs.strayKey();
  const problems = (tls: string) => {
    try {
      parseConfig(
        `listen:\n  - { port: 0 }\n  - { port: 0, tls: ${tls} }\nbackends: [{ url: http://127.0.0.1:9 }]\n`,
        "tls.yaml",
      );
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.message;
    }
    assert.fail("expected a config error");
  };
  assert.equal(
    problems(`{ cert: ${certs.dir}/none.pem, key: ${good.key} }`),
    `tls.yaml:3 listen.1.tls.cert: cannot read ${certs.dir}/none.pem: not found`,
  );
  assert.equal(
    problems(`{ cert: ${good.cert}, key: ${stray} }`),
    `tls.yaml:3 listen.1.tls.key: ${stray} is not the key of the certificate in ${good.cert}`,
  );
  assert.match(
    problems(`{ cert: ${expired.cert}, key: ${expired.key} }`),
    /listen\.1\.tls\.cert: .*old\.pem expired on /,
  );
  assert.equal(
    problems(`{ cert: ${good.key}, key: ${good.key} }`),
    `tls.yaml:3 listen.1.tls.cert: ${good.key} holds no PEM certificate`,
  );
  assert.match(
    problems(
      `{ certificates: [{ cert: ${good.cert}, key: ${good.key} }, { cert: ${good.cert}, key: ${good.key} }] }`,
    ),
    /listen\.1\.tls: several certificates would be chosen by SNI, which Deno's server cannot do/,
  );
  assert.equal(
    problems(`{ cert: ${good.cert} }`),
    "tls.yaml:3 listen.1.tls: tls needs both cert and key",
  );
});

Deno.test("tls: relative certificate paths are taken from the config file's folder", async () => {
  await using certs = await makeTestCertificates();
  await certs.server("site");
  const path = `${certs.dir}/lb.yaml`;
  await Deno.writeTextFile(
    path,
    "listen: { host: 127.0.0.1, port: 0, tls: { cert: site.pem, key: site.key } }\n" +
      "backends: [{ url: http://127.0.0.1:9 }]\n",
  );
  const config = await loadConfig(path);
  assert.deepEqual(config.listeners, [{
    host: "127.0.0.1",
    port: 0,
    tls: { cert: `${certs.dir}/site.pem`, key: `${certs.dir}/site.key` },
  }]);
});

Deno.test("tls: a rotated certificate reaches new handshakes within 2 s, under load, no request failing; a bad pair is refused", async () => {
  await using first = await makeTestCertificates();
  await using second = await makeTestCertificates();
  await using backend = startEchoBackend();
  const lines: string[] = [];
  const files = await first.server("site");
  const config = parseConfig(
    `listen: { host: 127.0.0.1, port: 0, tls: { cert: ${files.cert}, key: ${files.key} } }
logging: { access: off }
backends: [{ url: ${backend.url} }]
`,
    "tls.yaml",
  );
  await using lb = startBalancer(config, (line) => lines.push(line), () => {});
  const url = `https://localhost:${lb.addr.port}/`;
  /** Whether a new connection trusting only `certs`' CA gets an answer. */
  const trusts = async (certs: TestCertificates) => {
    using client = Deno.createHttpClient({ caCerts: [certs.ca], poolMaxIdlePerHost: 0 });
    try {
      await (await fetch(url, { client })).body?.cancel();
      return true;
    } catch {
      return false;
    }
  };
  assert.equal(await trusts(first), true);
  assert.equal(await trusts(second), false);
  let stop = false;
  const failures: string[] = [];
  using both = Deno.createHttpClient({ caCerts: [first.ca, second.ca] });
  const load = (async () => {
    for (let i = 0; i < 100_000 && !stop; i++) {
      try {
        const response = await fetch(url, { client: both });
        if (response.status !== 200) failures.push(String(response.status));
        await response.body?.cancel();
      } catch (error) {
        failures.push(String(error));
      }
    }
  })();
  try {
    const next = await second.server("site");
    const started = performance.now();
    await Deno.writeTextFile(`${files.cert}.tmp`, await Deno.readTextFile(next.cert));
    await Deno.writeTextFile(`${files.key}.tmp`, await Deno.readTextFile(next.key));
    await Deno.rename(`${files.key}.tmp`, files.key);
    await Deno.rename(`${files.cert}.tmp`, files.cert);
    await waitFor(() => trusts(second), "the new certificate", 2000);
    assert.ok(performance.now() - started < 2000, "the new certificate within 2 s");
    assert.equal(await trusts(first), false, "new handshakes get only the new certificate");
    assert.ok(
      lines.some((line) => /certificate rotated, valid until /.test(line)),
      lines.join("\n"),
    );

    await Deno.writeTextFile(files.key, await Deno.readTextFile(await second.strayKey()));
    const refused = /new certificate refused, keeping the one in force: .* is not the key/;
    await waitFor(() => lines.some((line) => refused.test(line)), "the refusal logged", 3000);
    assert.equal(await trusts(second), true, "the old pair stays in force");
  } finally {
    stop = true;
    await load;
  }
  assert.deepEqual(failures, [], "no request failed while the certificate changed");
});

Deno.test("tls: with 2 workers both isolates serve the TLS listener", async () => {
  await using certs = await makeTestCertificates();
  await using backend = startEchoBackend();
  const { lb, secure } = await startTlsBalancer(
    certs,
    backend,
    "workers: 2\nadmin: { listen: { host: 127.0.0.1, port: 0 } }\n",
  );
  await using _ = lb;
  await lb.ready;
  const answers = await Promise.all(Array.from({ length: 30 }, async () => {
    using client = Deno.createHttpClient({ caCerts: [certs.ca], poolMaxIdlePerHost: 0 });
    return (await (await fetch(`${secure}/w`, { client })).json()).proto;
  }));
  assert.ok(answers.every((proto) => proto === "https"));
  const metrics = parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text());
  const served = ["0", "1"].map((worker) =>
    sampleValue(metrics, "lb_worker_requests_total", { worker })
  );
  assert.ok(served.every((count) => count > 0), `both isolates answered: ${served}`);
});

Deno.test("tls: two listeners on one address are refused; --check lists every listener", async () => {
  await using certs = await makeTestCertificates();
  const { cert, key } = await certs.server("site");
  assert.throws(
    () =>
      parseConfig(
        `listen:\n  - { port: 8443 }\n  - { port: 8443, tls: { cert: ${cert}, key: ${key} } }\n` +
          "backends: [{ url: http://127.0.0.1:9 }]\n",
        "tls.yaml",
      ),
    (error) =>
      error instanceof ConfigError &&
      error.message ===
        "tls.yaml:3 listen.1: 0.0.0.0:8443 is listen.0's address already: give each listener its own",
  );
  const config = parseConfig(
    `listen:\n  - { port: 80 }\n  - { port: 443, tls: { cert: ${cert}, key: ${key} } }\n` +
      "backends: [{ url: http://127.0.0.1:9 }]\n",
    "tls.yaml",
  );
  assert.equal(
    summarizeConfig(config),
    "config ok: listen 0.0.0.0:80 0.0.0.0:443 (tls), strategy round_robin, 1 backend",
  );
});

Deno.test("tls: WebSockets work over a TLS listener (HTTP/1.1)", async () => {
  await using certs = await makeTestCertificates();
  await using backend = startBackend((request) => {
    if (request.headers.get("upgrade") !== "websocket") return new Response("probe");
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(`echo ${event.data}`);
    return response;
  });
  const { lb, secure } = await startTlsBalancer(certs, backend);
  await using _ = lb;
  using client = Deno.createHttpClient({ caCerts: [certs.ca] });
  const socket = new WebSocket(secure.replace("https:", "wss:") + "/ws", { client });
  await new Promise((resolve) => socket.onopen = resolve);
  const answer = new Promise((resolve) => socket.onmessage = (event) => resolve(event.data));
  socket.send("over tls");
  assert.equal(await answer, "echo over tls");
  const closed = new Promise((resolve) => socket.onclose = resolve);
  socket.close();
  await closed;
});
