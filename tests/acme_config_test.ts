/**
 * `tls.acme` in the config file: what it becomes (defaults, paths from the
 * config file's folder), and each mistake as a `file:line key:` problem.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConfigError, parseConfig, summarizeConfig } from "../src/config/config.ts";
import { makeTestCertificates } from "./test_certificates.ts";

const DIRECTORY = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** A config with a plain listener and an ACME one whose `acme` mapping has `lines` (6 spaces in). */
function acmeConfig(lines: string, plain = "  - { port: 80 }\n"): string {
  return `listen:\n${plain}  - port: 443\n    tls:\n      acme:\n${lines}` +
    "backends: [{ url: http://127.0.0.1:9001 }]\n";
}

function problems(text: string, file = "/etc/lb/config.yaml"): string[] {
  try {
    parseConfig(text, file);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return [...error.problems];
  }
  assert.fail("expected the config to be rejected");
}

Deno.test("acme config: defaults, lowercase domains, storage and ca from the config's folder", async () => {
  await using certs = await makeTestCertificates();
  const folder = certs.dir;
  await Deno.copyFile(certs.caPath, `${folder}/pebble-ca.pem`);
  const config = parseConfig(
    acmeConfig(
      `        directory: ${DIRECTORY}\n        domains: [Example.COM, www.example.com]\n` +
        "        ca: pebble-ca.pem\n        renew_before: 30d\n",
    ),
    `${folder}/config.yaml`,
  );
  assert.deepEqual(config.listeners![1], {
    host: "0.0.0.0",
    port: 443,
    acme: {
      directory: DIRECTORY,
      domains: ["example.com", "www.example.com"],
      storage: `${folder}/acme`,
      renew_before: 30 * 86_400_000,
      ca: `${folder}/pebble-ca.pem`,
      challenge: "http-01",
    },
  });
  assert.equal(
    summarizeConfig(config),
    "config ok: listen 0.0.0.0:80 0.0.0.0:443 (tls from acme: example.com www.example.com), " +
      "strategy round_robin, 1 backend",
  );
  const minimal = parseConfig(
    acmeConfig(
      `        directory: ${DIRECTORY}\n        domains: [example.com]\n` +
        "        email: ops@example.com\n        storage: /var/lib/lb/acme\n",
    ),
    "/etc/lb/config.yaml",
  );
  assert.equal(minimal.listeners![1].acme!.storage, "/var/lib/lb/acme");
  assert.equal(minimal.listeners![1].acme!.email, "ops@example.com");
  assert.equal(minimal.listeners![1].acme!.renew_before, undefined);
});

Deno.test("acme config: each mistake names its file, line and key", async () => {
  await using certs = await makeTestCertificates();
  const notPem = `${certs.dir}/not.pem`;
  await Deno.writeTextFile(notPem, "hello\n");
  const cases: [string, string][] = [
    [
      "        directory: http://127.0.0.1:14000/dir\n        domains: [example.com]\n",
      "/etc/lb/config.yaml:6 listen.1.tls.acme.directory: expected an https:// URL like " +
      '"https://acme-v02.api.letsencrypt.org/directory", got "http://127.0.0.1:14000/dir"',
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: []\n`,
      "/etc/lb/config.yaml:7 listen.1.tls.acme.domains: expected at least one domain, got []",
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: ["*.example.com"]\n`,
      "/etc/lb/config.yaml:7 listen.1.tls.acme.domains: *.example.com: a wildcard certificate " +
      "needs the dns-01 challenge; http-01 cannot prove it (the CA would refuse the order)",
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: [example.com, example.com]\n`,
      "/etc/lb/config.yaml:7 listen.1.tls.acme.domains: example.com is listed twice",
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: ["exa mple.com"]\n`,
      "/etc/lb/config.yaml:7 listen.1.tls.acme.domains.0: expected a DNS name like " +
      '"example.com" or "*.example.com", got "exa mple.com"',
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: [example.com]\n        dommains: [x]\n`,
      "/etc/lb/config.yaml:8 listen.1.tls.acme.dommains: unknown key (expected one of " +
      "directory, email, domains, storage, renew_before, ca, challenge)",
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: [example.com]\n` +
      "        challenge: tls-alpn-01\n",
      "/etc/lb/config.yaml:8 listen.1.tls.acme.challenge: tls-alpn-01 needs a certificate " +
      "chosen per handshake (by ALPN and SNI), which Deno's server cannot do: use http-01 with " +
      "a plain listener on port 80",
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: [example.com]\n        challenge: dns-01\n`,
      "/etc/lb/config.yaml:8 listen.1.tls.acme.challenge: expected one of http-01 | " +
      'tls-alpn-01, got "dns-01"',
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: [example.com]\n` +
      `        ca: ${certs.dir}/missing.pem\n`,
      `/etc/lb/config.yaml:8 listen.1.tls.acme.ca: cannot read ${certs.dir}/missing.pem: not found`,
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: [example.com]\n        ca: ${notPem}\n`,
      `/etc/lb/config.yaml:8 listen.1.tls.acme.ca: ${notPem} holds no PEM certificate`,
    ],
    [
      `        directory: ${DIRECTORY}\n        domains: [example.com]\n        renew_before: 1y\n`,
      "/etc/lb/config.yaml:8 listen.1.tls.acme.renew_before: expected a duration like " +
      '"250ms", "5s", "1m" or a number of milliseconds, got "1y"',
    ],
  ];
  for (const [lines, expected] of cases) {
    assert.deepEqual(problems(acmeConfig(lines)), [expected], lines);
  }
  assert.deepEqual(
    problems(acmeConfig(`        directory: ${DIRECTORY}\n        domains: [example.com]\n`, "")),
    [
      "/etc/lb/config.yaml:5 listen.0.tls.acme: tls.acme answers the CA's http-01 challenges " +
      "on a plain listener: add one (the CA connects to port 80)",
    ],
  );
  const { cert, key } = await certs.server("site");
  assert.deepEqual(
    problems(
      `listen:\n  - { port: 80 }\n  - port: 443\n    tls:\n      cert: ${cert}\n      key: ${key}\n` +
        `      acme: { directory: ${DIRECTORY}, domains: [example.com] }\n` +
        "backends: [{ url: http://127.0.0.1:9001 }]\n",
    ),
    ["/etc/lb/config.yaml:5 listen.1.tls: give acme, or certificate files, not both"],
  );
});
