/**
 * Automatic HTTPS against a real Pebble on loopback: Pebble's HTTPS uses a
 * certificate from the test CA (which `tls.acme.ca` trusts), its DNS lookups
 * go to a dnsmasq that maps the test domains to 127.0.0.1, and its http-01
 * validations really connect to the balancer's plain listener. A TLS client
 * that verifies against Pebble's root checks what the TLS listener serves.
 * Skipped, saying why, where pebble or dnsmasq is not installed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { AcmeManager } from "../src/acme/certificate_manager.ts";
import { startBalancer } from "../src/server.ts";
import { loadConfig } from "../src/config/config.ts";
import type { Balancer } from "../src/server.ts";
import type { Status } from "../src/observability/telemetry.ts";
import { DNSMASQ, type Dnsmasq, startDnsmasq } from "./dnsmasq.ts";
import { freeTcpPort, PEBBLE, type Pebble, startPebble } from "./pebble.ts";
import { makeTestCertificates, type TestCertificates } from "./test_certificates.ts";
import {
  adminUrl,
  getJson,
  type MetricFamily,
  parsePrometheus,
  sampleValue,
  startBackend,
  type TestBackend,
  waitFor,
  writeConfig,
} from "./helpers.ts";

const DOMAINS = ["a.test", "b.test"];
const ignore = PEBBLE === undefined || DNSMASQ === undefined;

/** Everything one ACME test runs: the CA side, a backend, and a balancer config on disk. */
interface AcmeSetup extends AsyncDisposable {
  certs: TestCertificates;
  dns: Dnsmasq;
  pebble: Pebble;
  backend: TestBackend;
  /** The balancer's plain listener, where Pebble sends its challenge requests. */
  httpPort: number;
  /** The TLS listener's port. */
  httpsPort: number;
  storage: string;
  configPath: string;
  /** Pebble's root, PEM, and its file. */
  root: string;
  rootPath: string;
  /** Writes the config with `acme` lines added to the defaults. */
  writeConfig(options?: { domains?: string[]; extra?: string; workers?: number }): Promise<void>;
  /** Starts the balancer on the config file; its log lines gather in `lines`. */
  start(lines: string[]): Promise<Balancer>;
}

async function setUp(hosts = "127.0.0.1 a.test b.test c.test localhost\n"): Promise<AcmeSetup> {
  const certs = await makeTestCertificates();
  const dns = await startDnsmasq(hosts);
  const httpPort = freeTcpPort();
  const httpsPort = freeTcpPort();
  const pebble = await startPebble(certs, {
    httpPort,
    dnsPort: dns.port,
    blocked: ["blocked.test"],
  });
  const backend = startBackend((request) =>
    new Response(`backend saw ${new URL(request.url).host}`)
  );
  const storage = `${certs.dir}/acme`;
  const configPath = `${certs.dir}/config.yaml`;
  const root = await pebble.root();
  const rootPath = `${certs.dir}/pebble-root.pem`;
  await Deno.writeTextFile(rootPath, root);
  const setup: AcmeSetup = {
    certs,
    dns,
    pebble,
    backend,
    httpPort,
    httpsPort,
    storage,
    configPath,
    root,
    rootPath,
    async writeConfig(options = {}) {
      await writeConfig(
        configPath,
        `workers: ${options.workers ?? 1}
listen:
  - { host: 127.0.0.1, port: ${httpPort} }
  - host: 127.0.0.1
    port: ${httpsPort}
    tls:
      acme:
        directory: ${pebble.directory}
        email: ops@example.com
        domains: [${(options.domains ?? DOMAINS).join(", ")}]
        storage: ./acme
        ca: ${certs.caPath}
${options.extra ?? ""}
backends: [{ url: ${backend.url} }]
health_check: { interval: 60s }
admin: { listen: { host: 127.0.0.1, port: 0 } }
`,
      );
    },
    async start(lines) {
      const config = await loadConfig(configPath);
      const balancer = startBalancer(config, (line) => lines.push(line), () => {});
      await balancer.ready;
      return balancer;
    },
    async [Symbol.asyncDispose]() {
      await pebble.stop();
      await dns.stop();
      await backend[Symbol.asyncDispose]();
      await certs[Symbol.asyncDispose]();
    },
  };
  await setup.writeConfig();
  return setup;
}

/**
 * GET / over TLS to the TLS listener with SNI `name`, verifying the chain
 * against `root` and the certificate against `name`; resolves to the answer's body.
 */
async function httpsGet(port: number, name: string, root: string): Promise<string> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  using conn = await Deno.startTls(tcp, { hostname: name, caCerts: [root] });
  await conn.write(
    new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`),
  );
  const text = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
  if (!text.startsWith("HTTP/1.1 200")) throw new Error(`unexpected answer: ${text.slice(0, 80)}`);
  return text.slice(text.indexOf("\r\n\r\n") + 4);
}

/**
 * Waits until a fresh verified connection for `name` is answered. A rotation
 * closes the old server's socket: a connection the kernel queued there in
 * that instant is reset (docs/tls.md, Certificate rotation), so the checks
 * after a rotation start once the new server alone accepts.
 */
async function rotated(port: number, name: string, root: string): Promise<void> {
  await waitFor(
    () => httpsGet(port, name, root).then(() => true, () => false),
    `a fresh connection for ${name} after the rotation`,
  );
}

/** The leaf certificate the TLS listener serves for `name`, PEM, as openssl sees it verified. */
async function servedCertificate(port: number, name: string, rootPath: string): Promise<string> {
  const { code, stdout } = await new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      name,
      "-verify_hostname",
      name,
      "-CAfile",
      rootPath,
      "-verify_return_error",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `openssl s_client for ${name} failed verification`);
  return firstPem(text);
}

function firstPem(text: string): string {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  if (match === null) throw new Error("no certificate");
  return match[0];
}

/** The stored certificate files of the storage (one set of domains per test here). */
async function storedFiles(storage: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      const path = `${folder}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else found.push(path);
    }
  };
  await walk(storage);
  return found.sort();
}

/** Waits until a line that starts with (or holds) `text` is logged; resolves to it. */
async function logged(lines: string[], text: string, what: string): Promise<string> {
  const find = () => lines.find((line) => line.startsWith(text) || line.includes(text));
  await waitFor(() => find() !== undefined, what, 30_000).catch((error) => {
    throw new Error(`${error.message}; the balancer logged:\n${lines.join("\n")}`);
  });
  return find()!;
}

/** `lb_acme_orders_total` with `result`. */
function orders(families: Map<string, MetricFamily>, result: "success" | "failure"): number {
  return sampleValue(families, "lb_acme_orders_total", { result });
}

async function metrics(balancer: Balancer) {
  return parsePrometheus(await (await fetch(`${adminUrl(balancer)}/metrics`)).text());
}

Deno.test({
  name: "acme: a fresh start orders, Pebble validates http-01 for real, every domain is served",
  ignore,
  async fn() {
    await using setup = await setUp();
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    // The plain listener serves from the start.
    const plain = await fetch(`http://127.0.0.1:${setup.httpPort}/`);
    assert.equal(await plain.text(), `backend saw 127.0.0.1:${setup.httpPort}`);
    await logged(lines, "listening with its certificate", "the TLS listener's certificate");
    for (const domain of DOMAINS) {
      assert.equal(await httpsGet(setup.httpsPort, domain, setup.root), `backend saw ${domain}`);
    }
    assert.ok(lines.some((line) => /waiting for its certificate/.test(line)), lines.join("\n"));
    assert.ok(
      lines.some((line) => line.startsWith("acme: certificate for a.test, b.test issued by")),
      lines.join("\n"),
    );
    const families = await metrics(balancer);
    assert.equal(orders(families, "success"), 1);
    assert.equal(orders(families, "failure"), 0);
    const expiry = sampleValue(families, "lb_certificate_expiry_seconds", { domain: "b.test" });
    const status = await getJson<Status>(`${adminUrl(balancer)}/status`);
    assert.equal(status.certificates.length, 1);
    assert.deepEqual(status.certificates[0].domains, DOMAINS);
    assert.equal(Date.parse(status.certificates[0].not_after!) / 1000, expiry);
    assert.equal(status.certificates[0].last_error, null);
    // Keys are the owner's alone; no temp file or challenge is left behind.
    const files = await storedFiles(setup.storage);
    const keys = files.filter((file) => file.endsWith(".key"));
    assert.equal(keys.length, 2, files.join("\n"));
    for (const key of keys) assert.equal(Deno.statSync(key).mode! & 0o777, 0o600, key);
    assert.ok(!files.some((file) => file.endsWith(".tmp") || file.includes("/challenges/")));
  },
});

/** Issues the domains' certificate once, then stops the balancer: the storage holds it. */
async function issueOnce(setup: AcmeSetup): Promise<string> {
  const lines: string[] = [];
  await using _ = await setup.start(lines);
  await logged(lines, "listening with its certificate", "the first certificate");
  return await servedCertificate(setup.httpsPort, DOMAINS[0], setup.rootPath);
}

Deno.test({
  name: "acme: a restart serves the stored certificate at once and orders nothing",
  ignore,
  async fn() {
    await using setup = await setUp();
    const first = await issueOnce(setup);
    const files = await storedFiles(setup.storage);
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    // Served from the first handshake: no waiting line, no order.
    assert.equal(await servedCertificate(setup.httpsPort, "b.test", setup.rootPath), first);
    assert.ok(
      !lines.some((line) => line.includes("waiting for its certificate")),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((line) => line.startsWith("acme: using the stored certificate for a.test")),
    );
    const families = await metrics(balancer);
    assert.equal(orders(families, "success"), 0);
    assert.equal(orders(families, "failure"), 0);
    assert.deepEqual(await storedFiles(setup.storage), files);
    // Renewal is due when a third of the lifetime is left (no renew_before given).
    const [certificate] = (await getJson<Status>(`${adminUrl(balancer)}/status`)).certificates;
    const notAfter = Date.parse(certificate.not_after!);
    const lifetime = notAfter - Date.parse(new X509Certificate(first).validFrom);
    assert.equal(Date.parse(certificate.renew_at!), Math.floor(notAfter - lifetime / 3));
  },
});

Deno.test({
  name: "acme: renew_before longer than the lifetime renews; new connections get the new " +
    "certificate and no request fails under load",
  ignore,
  async fn() {
    await using setup = await setUp();
    await setup.writeConfig({ domains: [...DOMAINS, "localhost"] });
    const first = await issueOnce(setup);
    const account = await Deno.readTextFile(
      (await storedFiles(setup.storage)).find((file) => file.endsWith("account.json"))!,
    );
    await setup.writeConfig({
      domains: [...DOMAINS, "localhost"],
      extra: "        renew_before: 3650d",
    });
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    // Keep-alive clients, as browsers and fetch are: each fetch below reuses one connection.
    using client = Deno.createHttpClient({ caCerts: [setup.root] });
    let requests = 0;
    const failures: string[] = [];
    let loading = true;
    const load = (async () => {
      while (loading) {
        try {
          const response = await fetch(`https://localhost:${setup.httpsPort}/`, { client });
          if (response.status !== 200) failures.push(String(response.status));
          await response.body?.cancel();
        } catch (error) {
          failures.push(String(error));
        }
        requests++;
      }
    })();
    await logged(lines, "certificate rotated", "the renewed certificate in force");
    const after = requests;
    await waitFor(() => requests > after + 20, "requests after the rotation");
    loading = false;
    await load;
    assert.deepEqual(failures, []);
    assert.ok(lines.some((line) => line.includes("valid until") && line.endsWith("renewing now")));
    const renewed = await servedCertificate(setup.httpsPort, DOMAINS[1], setup.rootPath);
    assert.notEqual(renewed, first);
    const stored = await Deno.readTextFile(
      (await storedFiles(setup.storage)).find((file) => file.endsWith(".crt"))!,
    );
    assert.equal(firstPem(stored), renewed);
    // The renewal used the stored account.
    assert.equal(
      await Deno.readTextFile(
        (await storedFiles(setup.storage)).find((file) => file.endsWith("account.json"))!,
      ),
      account,
    );
    // A just-issued certificate that is due already is not renewed again at once.
    assert.ok(lines.some((line) => line.includes("renewing again in 1h")), lines.join("\n"));
    // Nor does a reload that leaves renew_before as it was.
    const scheduled = (await getJson<Status>(`${adminUrl(balancer)}/status`)).certificates[0];
    await balancer.reloader.reload(setup.configPath);
    const reloaded = (await getJson<Status>(`${adminUrl(balancer)}/status`)).certificates[0];
    assert.equal(reloaded.renew_at, scheduled.renew_at);
    const families = await metrics(balancer);
    assert.equal(orders(families, "success"), 1);
  },
});

Deno.test({
  name: "acme: with Pebble stopped a renewal fails, is logged with its retry, and the " +
    "certificate in force stays",
  ignore,
  async fn() {
    await using setup = await setUp();
    const first = await issueOnce(setup);
    await setup.pebble.stop();
    await setup.writeConfig({ extra: "        renew_before: 3650d" });
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    const failed = await logged(
      lines,
      "acme: ordering a certificate for a.test",
      "the failed renewal",
    );
    assert.match(failed, /failed: cannot reach the CA for directory at https:\/\/127\.0\.0\.1:/);
    assert.match(failed, /the certificate in force \(until .+\) stays; retrying in 1m$/);
    assert.equal(await servedCertificate(setup.httpsPort, DOMAINS[0], setup.rootPath), first);
    const families = await metrics(balancer);
    assert.equal(orders(families, "failure"), 1);
    const status = await getJson<Status>(`${adminUrl(balancer)}/status`);
    assert.match(status.certificates[0].last_error!, /cannot reach the CA/);
    assert.ok(Date.parse(status.certificates[0].renew_at!) > Date.now() + 50_000);
  },
});

Deno.test({
  name: "acme: a challenge the CA cannot validate fails the order cleanly; plain traffic goes on",
  ignore,
  async fn() {
    // The names point where nothing answers: Pebble's validation connection is refused.
    await using setup = await setUp("127.0.0.2 a.test b.test\n");
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    const failed = await logged(
      lines,
      "acme: ordering a certificate for a.test",
      "the failed order",
    );
    assert.match(failed, /the CA could not validate (a|b)\.test \(http-01 on port 80\): /);
    assert.match(failed, /no certificate for all of them yet; retrying in 1m$/);
    const plain = await fetch(`http://127.0.0.1:${setup.httpPort}/`);
    assert.equal(plain.status, 200);
    await plain.body?.cancel();
    // The TLS listener has no certificate: its port is not served.
    await assert.rejects(httpsGet(setup.httpsPort, DOMAINS[0], setup.root));
    const files = await storedFiles(setup.storage);
    assert.ok(!files.some((file) => file.endsWith(".crt") || file.includes("/challenges/")));
    const families = await metrics(balancer);
    assert.equal(orders(families, "failure"), 1);
  },
});

Deno.test({
  name:
    "acme: a reload that adds or removes a domain orders anew; the old certificate serves until then",
  ignore,
  async fn() {
    await using setup = await setUp();
    await setup.writeConfig({ domains: ["a.test"] });
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    await logged(lines, "listening with its certificate", "the first certificate");
    await assert.rejects(servedCertificate(setup.httpsPort, "c.test", setup.rootPath));
    await setup.writeConfig({ domains: ["a.test", "c.test"] });
    await balancer.reloader.reload(setup.configPath);
    await logged(lines, "certificate rotated", "the certificate with the new domain");
    await rotated(setup.httpsPort, "c.test", setup.root);
    assert.equal(await httpsGet(setup.httpsPort, "c.test", setup.root), "backend saw c.test");
    assert.equal(await httpsGet(setup.httpsPort, "a.test", setup.root), "backend saw a.test");
    assert.ok(!lines.some((line) => line.includes("restart required")), lines.join("\n"));
    // Removing a name orders a certificate without it.
    await setup.writeConfig({ domains: ["c.test"] });
    await balancer.reloader.reload(setup.configPath);
    await waitFor(
      () => lines.filter((line) => line.includes("certificate rotated")).length === 2,
      "the certificate without a.test",
      30_000,
    );
    await rotated(setup.httpsPort, "c.test", setup.root);
    await assert.rejects(servedCertificate(setup.httpsPort, "a.test", setup.rootPath));
    // Another storage folder: the certificate is ordered there and the listener follows it.
    await Deno.writeTextFile(
      setup.configPath,
      (await Deno.readTextFile(setup.configPath)).replace("storage: ./acme", "storage: ./acme2"),
    );
    await balancer.reloader.reload(setup.configPath);
    await waitFor(
      () => lines.filter((line) => line.includes("certificate rotated")).length === 3,
      "the certificate from the new storage",
      30_000,
    );
    await rotated(setup.httpsPort, "c.test", setup.root);
    const moved = await Deno.readTextFile(
      (await storedFiles(`${setup.certs.dir}/acme2`)).find((file) => file.endsWith(".crt"))!,
    );
    assert.equal(
      await servedCertificate(setup.httpsPort, "c.test", setup.rootPath),
      firstPem(moved),
    );
    const families = await metrics(balancer);
    assert.equal(orders(families, "success"), 4);
    assert.ok(
      sampleValue(families, "lb_certificate_expiry_seconds", { domain: "c.test" }) >
        Date.now() / 1000,
    );
  },
});

Deno.test({
  name: "acme: with workers: 2 only the primary orders and both isolates serve the certificate",
  ignore,
  async fn() {
    await using setup = await setUp();
    await setup.writeConfig({ workers: 2 });
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    await logged(lines, "listening with its certificate", "the certificate");
    assert.equal(lines.filter((line) => line.startsWith("acme: certificate for")).length, 1);
    // A worker that starts after the order serves the stored certificate; one that started
    // before waits for it and picks it up from the storage.
    const served = new Set<string>();
    for (let i = 0; i < 40; i++) {
      served.add(await httpsGet(setup.httpsPort, DOMAINS[i % 2], setup.root));
    }
    assert.deepEqual([...served].sort(), ["backend saw a.test", "backend saw b.test"]);
    const families = await metrics(balancer);
    for (const worker of ["0", "1"]) {
      assert.ok(sampleValue(families, "lb_worker_requests_total", { worker }) > 0, worker);
    }
    // A new domain reaches the worker as a reload; its certificate through the storage.
    await setup.writeConfig({ workers: 2, domains: [...DOMAINS, "c.test"] });
    await balancer.reloader.reload(setup.configPath);
    await waitFor(
      () => lines.filter((line) => line.includes("certificate rotated")).length === 2,
      "both isolates rotating",
      30_000,
    );
    await rotated(setup.httpsPort, "c.test", setup.root);
    for (let i = 0; i < 20; i++) {
      assert.equal(await httpsGet(setup.httpsPort, "c.test", setup.root), "backend saw c.test");
    }
    const status = await getJson<Status>(`${adminUrl(balancer)}/status`);
    assert.equal(status.certificates.length, 1);
  },
});

Deno.test({
  name: "acme: a domain the CA refuses keeps the certificate in force and logs the CA's reason",
  ignore,
  async fn() {
    await using setup = await setUp();
    const first = await issueOnce(setup);
    await setup.writeConfig({ domains: [...DOMAINS, "blocked.test"] });
    const lines: string[] = [];
    await using balancer = await setup.start(lines);
    const refused = await logged(
      lines,
      "acme: ordering a certificate for a.test",
      "the refused order",
    );
    assert.match(refused, /failed: the CA refused newOrder \(400\): .*blocked\.test/);
    assert.match(refused, /no certificate for all of them yet; retrying in 1m$/);
    // The listener goes on serving the stored certificate of the names it had.
    assert.equal(await servedCertificate(setup.httpsPort, "a.test", setup.rootPath), first);
    const families = await metrics(balancer);
    assert.equal(orders(families, "failure"), 1);
  },
});

Deno.test({
  name: "acme: a CA that answers garbage, or storage that cannot be written, is a log line " +
    "and a metric; plain traffic goes on",
  ignore,
  async fn() {
    await using setup = await setUp();
    const own = await setup.certs.server("garbage");
    await using garbage = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(own.cert),
      key: await Deno.readTextFile(own.key),
      onListen() {},
    }, () => new Response("<html>not an ACME server</html>"));
    const directory = `https://127.0.0.1:${garbage.addr.port}/dir`;
    const cases = [
      {
        // The config names the garbage server as its directory.
        edit: (text: string) => text.replace(setup.pebble.directory, directory),
        expected: /failed: the CA's answer to directory is not a JSON object: <html>not an ACME/,
      },
      {
        // A folder under a regular file cannot be made, whoever runs the tests.
        edit: (text: string) => text.replace("storage: ./acme", `storage: ${own.cert}/acme`),
        expected: new RegExp(
          `failed: cannot read the account under ${own.cert}/acme: Not a directory`,
        ),
      },
    ];
    for (const { edit, expected } of cases) {
      await setup.writeConfig();
      await Deno.writeTextFile(setup.configPath, edit(await Deno.readTextFile(setup.configPath)));
      const lines: string[] = [];
      await using balancer = await setup.start(lines);
      assert.match(await logged(lines, "acme: ordering", "the failed order"), expected);
      const plain = await fetch(`http://127.0.0.1:${setup.httpPort}/`);
      assert.equal(plain.status, 200);
      await plain.body?.cancel();
      const families = await metrics(balancer);
      assert.equal(orders(families, "failure"), 1);
    }
  },
});

Deno.test({
  name: "acme: challenge paths answer only published tokens; others reach the routes",
  ignore,
  async fn() {
    await using setup = await setUp();
    const lines: string[] = [];
    await using _ = await setup.start(lines);
    const challenges = `${setup.storage}/challenges`;
    await Deno.mkdir(challenges, { recursive: true });
    await Deno.writeTextFile(`${challenges}/tok_EN-1`, "tok_EN-1.thumbprint");
    await Deno.writeTextFile(`${setup.certs.dir}/secret`, "not for clients");
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${setup.httpPort}${path}`);
      return `${response.status} ${await response.text()}`;
    };
    assert.equal(await get("/.well-known/acme-challenge/tok_EN-1"), "200 tok_EN-1.thumbprint");
    // Unknown tokens, and anything that is not a token, go to the routes like any request.
    const backend = `200 backend saw 127.0.0.1:${setup.httpPort}`;
    assert.equal(await get("/.well-known/acme-challenge/unknown"), backend);
    assert.equal(await get("/.well-known/acme-challenge/..%2f..%2fsecret"), backend);
    assert.equal(await get("/.well-known/acme-challenge/"), backend);
    // Only a GET or HEAD fetches an answer.
    const response = await fetch(
      `http://127.0.0.1:${setup.httpPort}/.well-known/acme-challenge/tok_EN-1`,
      {
        method: "POST",
      },
    );
    assert.equal(await response.text(), backend.slice(4));
  },
});

Deno.test({
  name: "acme: a failing order is retried with backoff, logged once per change of outcome",
  async fn() {
    await using certs = await makeTestCertificates();
    const port = freeTcpPort();
    await Deno.writeTextFile(
      `${certs.dir}/config.yaml`,
      `listen:
  - { port: 0 }
  - port: 0
    tls: { acme: { directory: "https://127.0.0.1:${port}/dir", domains: [a.test], ca: ${certs.caPath} } }
backends: [{ url: http://127.0.0.1:9 }]
`,
    );
    const config = await loadConfig(`${certs.dir}/config.yaml`);
    const lines: string[] = [];
    // The product waits minutes; here the same schedule runs in milliseconds.
    const manager = new AcmeManager((line) => lines.push(line), [50, 100, 200]);
    try {
      manager.configure(config);
      // Nothing listens on the directory's port: every attempt fails the same way.
      await waitFor(() => manager.orders.failure >= 3, "three failed attempts");
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.match(lines[0], /failed: cannot reach the CA .*; retrying in 0\.05s$/);
      // Then something answers there that is not an ACME CA: a new outcome, logged once more.
      const own = await certs.server("garbage");
      await using _ = Deno.serve({
        hostname: "127.0.0.1",
        port,
        cert: await Deno.readTextFile(own.cert),
        key: await Deno.readTextFile(own.key),
        onListen() {},
      }, () => new Response("<html>hello</html>"));
      await waitFor(() => lines.length === 2, "the changed outcome logged");
      assert.match(lines[1], /failed: the CA's answer to directory is not a JSON object/);
      assert.match(lines[1], /retrying in 0\.2s$/);
      const failures = manager.orders.failure;
      await waitFor(() => manager.orders.failure >= failures + 2, "two more attempts");
      assert.equal(lines.length, 2, lines.join("\n"));
    } finally {
      await manager.close();
    }
  },
});
