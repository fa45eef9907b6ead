/**
 * The ACME account key and what is signed with it (RFC 8555 §6.2): an ECDSA
 * P-256 key used through WebCrypto, its public JWK, its RFC 7638 thumbprint
 * (the second half of every key authorization) and ES256 JSON Web
 * Signatures in the flattened form ACME posts.
 *
 * @module
 */

import { fromPem, toPem } from "./pem.ts";

const ES256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** The public half of a P-256 key as a JWK, with exactly the members its thumbprint hashes. */
export interface PublicJwk {
  crv: "P-256";
  kty: "EC";
  x: string;
  y: string;
}

/**
 * An account key ready to sign.
 *
 * @example
 * ```ts
 * const { key, pem } = await generateAccountKey();
 * const again = await importAccountKey(pem);
 * again.thumbprint === key.thumbprint; // true
 * ```
 */
export interface AccountKey {
  readonly privateKey: CryptoKey;
  readonly jwk: PublicJwk;
  /** base64url(SHA-256 of the JWK's members in lexical order): RFC 7638. */
  readonly thumbprint: string;
}

/** A new P-256 account key and its PKCS #8 PEM, for storage. */
export async function generateAccountKey(): Promise<{ key: AccountKey; pem: string }> {
  const { privateKey } = await crypto.subtle.generateKey(ES256, true, ["sign", "verify"]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey));
  return { key: await accountKeyOf(privateKey), pem: toPem("PRIVATE KEY", pkcs8) };
}

/** The account key in a PKCS #8 PEM text; throws when it holds no P-256 key. */
export async function importAccountKey(pem: string): Promise<AccountKey> {
  const privateKey = await crypto.subtle.importKey("pkcs8", fromPem(pem), ES256, true, ["sign"]);
  return await accountKeyOf(privateKey);
}

async function accountKeyOf(privateKey: CryptoKey): Promise<AccountKey> {
  const { crv, kty, x, y } = await crypto.subtle.exportKey("jwk", privateKey);
  const jwk: PublicJwk = { crv: crv as "P-256", kty: kty as "EC", x: x!, y: y! };
  // Members in lexical order, no whitespace: the form RFC 7638 hashes.
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
  return { privateKey, jwk, thumbprint: base64url(new Uint8Array(digest)) };
}

/**
 * The flattened JWS (RFC 7515 §7.2.2) of `payload` under `header`, as the
 * JSON text an ACME request carries; `payload` undefined signs the empty
 * string of a POST-as-GET.
 *
 * @example
 * ```ts
 * const body = await signJws(key, { alg: "ES256", nonce, url, kid }, { status: "deactivated" });
 * ```
 */
export async function signJws(
  key: AccountKey,
  header: Record<string, unknown>,
  payload: unknown,
): Promise<string> {
  const encoder = new TextEncoder();
  const protectedPart = base64url(encoder.encode(JSON.stringify(header)));
  const payloadPart = payload === undefined
    ? ""
    : base64url(encoder.encode(JSON.stringify(payload)));
  // WebCrypto's ECDSA signature is r and s side by side: the form JWS wants.
  const signature = await crypto.subtle.sign(
    ES256,
    key.privateKey,
    encoder.encode(`${protectedPart}.${payloadPart}`),
  );
  return JSON.stringify({
    protected: protectedPart,
    payload: payloadPart,
    signature: base64url(new Uint8Array(signature)),
  });
}

/** Base64 with the URL alphabet and no padding (RFC 7515 §2). */
export function base64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}
