/**
 * Certificate files, checked when the config is read: a listener's pair
 * (readable, PEM, the key the certificate's, the certificate not expired;
 * the same check guards a rotation, which refuses a bad new pair) and a
 * pool's CA and client certificate for its `https://` backends.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readErrorReason } from "./read_error.ts";
import type { BackendTlsConfig, BackendTlsFiles } from "./types.ts";

/**
 * A certificate pair read from its files, or why it cannot be used.
 *
 * @example
 * ```ts
 * const pair = readCertificatePair({ cert: "/etc/lb/site.pem", key: "/etc/lb/site.key" });
 * if ("problem" in pair) console.error(pair.problem);
 * ```
 */
export type CertificatePair =
  | { cert: string; key: string; notBefore: Date; notAfter: Date; names: string[] }
  | { problem: string; file: "cert" | "key" };

/** Reads and checks the pair at `paths`; `problem` says what is wrong, naming the file. */
export function readCertificatePair(paths: { cert: string; key: string }): CertificatePair {
  const cert = readFile(paths.cert);
  if (typeof cert !== "string") return { problem: cert.problem, file: "cert" };
  const key = readFile(paths.key);
  if (typeof key !== "string") return { problem: key.problem, file: "key" };
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    return { problem: `${paths.cert} holds no PEM certificate`, file: "cert" };
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return { problem: `${paths.key} holds no PEM private key`, file: "key" };
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    return {
      problem: `${paths.key} is not the key of the certificate in ${paths.cert}`,
      file: "key",
    };
  }
  const notAfter = new Date(certificate.validTo);
  if (notAfter.getTime() <= Date.now()) {
    return { problem: `${paths.cert} expired on ${notAfter.toISOString()}`, file: "cert" };
  }
  const names = (certificate.subjectAltName ?? "").split(", ").flatMap((entry) =>
    entry.startsWith("DNS:") ? [entry.slice(4).toLowerCase()] : []
  );
  return { cert, key, notBefore: new Date(certificate.validFrom), notAfter, names };
}

/**
 * The PEM text of a CA certificate file, or why it cannot be used, naming the file.
 *
 * @example
 * ```ts
 * const ca = readCaCertificate("/etc/lb/internal-ca.pem");
 * if ("problem" in ca) console.error(ca.problem);
 * ```
 */
export function readCaCertificate(path: string): { pem: string } | { problem: string } {
  const pem = readFile(path);
  if (typeof pem !== "string") return pem;
  try {
    new X509Certificate(pem);
  } catch {
    return { problem: `${path} holds no PEM certificate` };
  }
  return { pem };
}

/**
 * A pool's TLS files read for its clients, or the first problem with them
 * and the key that names the file.
 *
 * @example
 * ```ts
 * const tls = readBackendTls({ ca: "/etc/lb/internal-ca.pem" });
 * if (!("problem" in tls)) createTransports(config.timeouts, tls);
 * ```
 */
export function readBackendTls(
  files: BackendTlsFiles,
): BackendTlsConfig | { problem: string; file: "ca" | "cert" | "key" } {
  const tls: BackendTlsConfig = {};
  if (files.server_name !== undefined) tls.server_name = files.server_name;
  if (files.ca !== undefined) {
    const ca = readCaCertificate(files.ca);
    if ("problem" in ca) return { problem: ca.problem, file: "ca" };
    tls.ca = ca.pem;
  }
  if (files.cert !== undefined && files.key !== undefined) {
    const pair = readCertificatePair({ cert: files.cert, key: files.key });
    if ("problem" in pair) return pair;
    tls.cert = pair.cert;
    tls.key = pair.key;
  }
  return tls;
}

function readFile(path: string): string | { problem: string } {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    return { problem: `cannot read ${path}: ${readErrorReason(error)}` };
  }
}
