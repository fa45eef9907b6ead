/**
 * PEM text (RFC 7468) to DER bytes and back: the base64 between one
 * `-----BEGIN LABEL-----` line and its `-----END LABEL-----`.
 *
 * @module
 */

/**
 * `der` as PEM text with `label`, 64 characters per line.
 *
 * @example
 * ```ts
 * toPem("CERTIFICATE REQUEST", csrDer); // "-----BEGIN CERTIFICATE REQUEST-----\n..."
 * ```
 */
export function toPem(label: string, der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The DER bytes of the first PEM block of `pem`; throws when it holds none. */
export function fromPem(pem: string): Uint8Array<ArrayBuffer> {
  const match = /-----BEGIN [A-Z0-9 ]+-----([A-Za-z0-9+/=\s]+)-----END [A-Z0-9 ]+-----/.exec(pem);
  if (match === null) throw new Error("no PEM block");
  return Uint8Array.fromBase64(match[1].replace(/\s+/g, "")) as Uint8Array<ArrayBuffer>;
}
