/**
 * A new certificate key and the PKCS #10 certificate signing request (CSR)
 * for it that finalises an ACME order (RFC 8555 §7.4), made with
 * @peculiar/x509 over WebCrypto: ECDSA P-256, every domain a DNS name in
 * the subjectAltName extension.
 *
 * @module
 */

// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import { Pkcs10CertificateRequestGenerator, SubjectAlternativeNameExtension } from "@peculiar/x509";
import { toPem } from "./pem.ts";

const ES256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/**
 * A private key (PKCS #8 PEM) and the DER CSR for `domains`, the first one
 * also the subject's common name.
 *
 * @example
 * ```ts
 * const { keyPem, csr } = await certificateRequest(["example.com", "www.example.com"]);
 * ```
 */
export async function certificateRequest(
  domains: readonly string[],
): Promise<{ keyPem: string; csr: Uint8Array }> {
  const keys = await crypto.subtle.generateKey(ES256, true, ["sign", "verify"]);
  const request = await Pkcs10CertificateRequestGenerator.create({
    name: `CN=${domains[0]}`,
    keys,
    signingAlgorithm: ES256,
    extensions: [
      new SubjectAlternativeNameExtension(
        domains.map((value) => ({ type: "dns" as const, value })),
      ),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { keyPem: toPem("PRIVATE KEY", pkcs8), csr: new Uint8Array(request.rawData) };
}
