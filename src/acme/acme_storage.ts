/**
 * What ACME keeps on disk under a listener's `tls.acme.storage`, as PEM and
 * JSON files written by write-then-rename (a crash never leaves half a
 * file), private keys with mode 0600:
 *
 * ```
 * STORAGE/<CA>/account.key              the account key
 * STORAGE/<CA>/account.json             the account's URL at that CA
 * STORAGE/<CA>/certificates/<NAME>.crt  a certificate chain, leaf first
 * STORAGE/<CA>/certificates/<NAME>.key  its key
 * STORAGE/challenges/<TOKEN>            a pending http-01 key authorization
 * ```
 *
 * `<CA>` is the directory URL's host, port and path; `<NAME>` the first of
 * the sorted domains and a hash of them all, so that one set of names is
 * one certificate whatever their order.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { AcmeConfig } from "../config/types.ts";
import { type CertificatePair, readCertificatePair } from "../config/tls_files.ts";

/** What an http-01 token may be: base64url (RFC 8555 §8.3), so never a path. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * The files of one `tls.acme` section.
 *
 * @example
 * ```ts
 * const storage = new AcmeStorage(listener.acme);
 * const pair = storage.readCertificate(listener.acme.domains);
 * ```
 */
export class AcmeStorage {
  /** The folder of this CA's account and certificates. */
  readonly caFolder: string;
  /** The folder whose files are this CA's certificates; listeners watch it. */
  readonly certificatesFolder: string;
  readonly challengesFolder: string;

  constructor(acme: Pick<AcmeConfig, "storage" | "directory">) {
    const url = new URL(acme.directory);
    const ca = `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, "-").replace(/-+$/, "");
    this.caFolder = `${acme.storage}/${ca}`;
    this.certificatesFolder = `${this.caFolder}/certificates`;
    this.challengesFolder = challengesFolderOf(acme.storage);
  }

  /** The files of the certificate for `domains`. */
  certificateFiles(domains: readonly string[]): { cert: string; key: string } {
    const sorted = [...domains].sort();
    const hash = createHash("sha256").update(sorted.join(",")).digest("hex").slice(0, 8);
    const base = `${this.certificatesFolder}/${sorted[0].replace("*", "_")}-${hash}`;
    return { cert: `${base}.crt`, key: `${base}.key` };
  }

  /** The stored certificate for `domains`, or why there is none that can be served. */
  readCertificate(domains: readonly string[]): CertificatePair {
    const pair = readCertificatePair(this.certificateFiles(domains));
    if ("problem" in pair) return pair;
    const missing = domains.find((domain) => !pair.names.includes(domain));
    return missing === undefined
      ? pair
      : { problem: `the stored certificate does not name ${missing}`, file: "cert" };
  }

  /**
   * What a listener for `domains` serves: the stored certificate for them,
   * else (while that one is ordered) the stored one that names most of them.
   */
  readServableCertificate(domains: readonly string[]): CertificatePair {
    const exact = this.readCertificate(domains);
    if (!("problem" in exact)) return exact;
    let best: Extract<CertificatePair, { cert: string }> | undefined;
    let bestShared = 0;
    try {
      for (const entry of Deno.readDirSync(this.certificatesFolder)) {
        if (!entry.name.endsWith(".crt")) continue;
        const base = `${this.certificatesFolder}/${entry.name.slice(0, -4)}`;
        const pair = readCertificatePair({ cert: `${base}.crt`, key: `${base}.key` });
        if ("problem" in pair) continue;
        const shared = domains.filter((domain) => pair.names.includes(domain)).length;
        if (
          shared > bestShared ||
          (shared === bestShared && shared > 0 && pair.notAfter > best!.notAfter)
        ) {
          best = pair;
          bestShared = shared;
        }
      }
    } catch {
      // No folder yet: nothing stored.
    }
    return best ?? exact;
  }

  /** Stores a new certificate for `domains`: the key first, so a listener never sees a chain without it. */
  async writeCertificate(domains: readonly string[], chain: string, key: string): Promise<void> {
    const files = this.certificateFiles(domains);
    await Deno.mkdir(this.certificatesFolder, { recursive: true });
    await writeFileAtomic(files.key, key, 0o600);
    await writeFileAtomic(files.cert, chain, 0o644);
  }

  /** The stored account: its key's PEM and, once registered, its URL. */
  async readAccount(): Promise<{ keyPem: string; url?: string } | undefined> {
    let keyPem: string;
    try {
      keyPem = await Deno.readTextFile(`${this.caFolder}/account.key`);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    try {
      const { url } = JSON.parse(await Deno.readTextFile(`${this.caFolder}/account.json`));
      return typeof url === "string" ? { keyPem, url } : { keyPem };
    } catch {
      return { keyPem };
    }
  }

  /** Stores the account key (before it is first used) and, once known, its URL. */
  async writeAccount(keyPem: string, url?: string): Promise<void> {
    await Deno.mkdir(this.caFolder, { recursive: true });
    await writeFileAtomic(`${this.caFolder}/account.key`, keyPem, 0o600);
    if (url !== undefined) {
      await writeFileAtomic(`${this.caFolder}/account.json`, `${JSON.stringify({ url })}\n`, 0o644);
    }
  }

  /** Publishes the key authorization for `token`, for every isolate's plain listeners to answer. */
  async writeChallenge(token: string, keyAuthorization: string): Promise<void> {
    if (!TOKEN_PATTERN.test(token)) throw new Error(`the CA sent a malformed token: ${token}`);
    await Deno.mkdir(this.challengesFolder, { recursive: true });
    await writeFileAtomic(`${this.challengesFolder}/${token}`, keyAuthorization, 0o644);
  }

  async removeChallenge(token: string): Promise<void> {
    await Deno.remove(`${this.challengesFolder}/${token}`).catch(() => {});
  }
}

/** The folder of the pending http-01 answers under `storage`. */
export function challengesFolderOf(storage: string): string {
  return `${storage}/challenges`;
}

/**
 * The key authorization published for `token` in one of `folders`, or
 * undefined: for a token that is not base64url, or that none has.
 *
 * @example
 * ```ts
 * const answer = await readChallenge([challengesFolderOf("/etc/lb/acme")], token);
 * ```
 */
export async function readChallenge(
  folders: readonly string[],
  token: string,
): Promise<string | undefined> {
  if (!TOKEN_PATTERN.test(token)) return undefined;
  for (const folder of folders) {
    try {
      return await Deno.readTextFile(`${folder}/${token}`);
    } catch {
      // Not published in this folder.
    }
  }
  return undefined;
}

/**
 * Writes `text` to a temp file beside `path` with `mode`, flushes it to disk,
 * then renames it over `path`.
 */
async function writeFileAtomic(path: string, text: string, mode: number): Promise<void> {
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    {
      using file = await Deno.open(temp, { write: true, createNew: true, mode });
      const bytes = new TextEncoder().encode(text);
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
      await file.syncData();
    }
    // The umask may have taken bits the file needs.
    await Deno.chmod(temp, mode);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
