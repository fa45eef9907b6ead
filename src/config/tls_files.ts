/**
 * A listener's certificate files, checked when the config is read: readable,
 * PEM, the key the certificate's, the certificate not expired. The same
 * check guards a rotation: a bad new pair is refused and the old one stays.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";

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
  | { cert: string; key: string; notAfter: Date }
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
  return { cert, key, notAfter };
}

function readFile(path: string): string | { problem: string } {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "not found"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Error
      ? error.message
      : String(error);
    return { problem: `cannot read ${path}: ${reason}` };
  }
}
