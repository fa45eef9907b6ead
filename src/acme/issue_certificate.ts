/**
 * One ACME order from start to stored certificate (RFC 8555 §7): the account
 * (registered, or found by its stored key), the order for all the domains,
 * each pending authorization's http-01 challenge published under the
 * storage for the plain listeners to answer and then validated by the CA,
 * the CSR for a new key, and the issued chain written beside that key.
 *
 * @module
 */

import type { AcmeConfig } from "../config/types.ts";
import type { CertificatePair } from "../config/tls_files.ts";
import { type AccountKey, generateAccountKey, importAccountKey } from "./account_key.ts";
import { AcmeClient, AcmeError, type Authorization, describeProblem } from "./acme_client.ts";
import type { AcmeStorage } from "./acme_storage.ts";

/** How long the CA may take to validate the challenges, or to issue, before the order is given up. */
const POLL_LIMIT_MS = 120_000;
const FIRST_POLL_MS = 250;
const MAX_POLL_MS = 5_000;

/** An issued certificate as it was stored. */
export type IssuedCertificate = Extract<CertificatePair, { cert: string }>;

/**
 * Orders a certificate for `acme.domains` and stores it; resolves to it as
 * stored. Throws an {@linkcode AcmeError} saying what the CA or the storage
 * refused; `signal` abandons the order.
 *
 * @example
 * ```ts
 * const issued = await issueCertificate(listener.acme, new AcmeStorage(listener.acme), signal);
 * console.log(issued.notAfter);
 * ```
 */
export async function issueCertificate(
  acme: AcmeConfig,
  storage: AcmeStorage,
  signal: AbortSignal,
): Promise<IssuedCertificate> {
  const stored = await inStorage("read the account", acme, () => storage.readAccount());
  let key: AccountKey;
  let keyPem: string;
  if (stored === undefined) {
    ({ key, pem: keyPem } = await generateAccountKey());
    // Kept before first use, so that a crash cannot orphan an account at the CA.
    await inStorage("write the account key", acme, () => storage.writeAccount(keyPem));
  } else {
    keyPem = stored.keyPem;
    try {
      key = await importAccountKey(keyPem);
    } catch {
      throw new AcmeError(`${storage.caFolder}/account.key holds no P-256 private key`);
    }
  }
  const ca = acme.ca === undefined ? undefined : await Deno.readTextFile(acme.ca);
  using client = new AcmeClient({ directory: acme.directory, key, ca, signal });
  const accountUrl = await client.account(acme.email);
  if (stored?.url !== accountUrl) {
    await inStorage("write the account", acme, () => storage.writeAccount(keyPem, accountUrl));
  }
  let order = await client.newOrder(acme.domains);
  await authorize(client, storage, acme, order.authorizations, signal);
  order = await poll(() => client.order(order.url), (o) => o.status !== "pending", signal);
  if (order.status !== "ready" && order.status !== "valid") {
    throw new AcmeError(`the order is ${order.status}: ${describeProblem(order.error ?? {})}`);
  }
  // Loaded here: the X.509 library is only needed by a balancer that orders certificates.
  const { certificateRequest } = await import("./certificate_request.ts");
  const request = await certificateRequest(acme.domains);
  if (order.status === "ready") order = await client.finalize(order, request.csr);
  order = await poll(
    () => client.order(order.url),
    (o) => o.status !== "processing" && o.status !== "ready",
    signal,
  );
  if (order.status !== "valid" || order.certificate === undefined) {
    throw new AcmeError(
      `the CA did not issue: the order is ${order.status}: ${describeProblem(order.error ?? {})}`,
    );
  }
  const chain = await client.certificate(order.certificate);
  await inStorage(
    "write the certificate",
    acme,
    () => storage.writeCertificate(acme.domains, chain, request.keyPem),
  );
  const issued = storage.readCertificate(acme.domains);
  if ("problem" in issued) throw new AcmeError(`the issued certificate: ${issued.problem}`);
  return issued;
}

/**
 * Answers every pending authorization's http-01 challenge and waits until
 * the CA validated them all; the published answers are removed either way.
 */
async function authorize(
  client: AcmeClient,
  storage: AcmeStorage,
  acme: AcmeConfig,
  urls: string[],
  signal: AbortSignal,
): Promise<void> {
  const published: string[] = [];
  try {
    const pending: string[] = [];
    for (const url of urls) {
      const authorization = await client.authorization(url);
      // A CA may reuse a recent validation of the same name.
      if (authorization.status === "valid") continue;
      const name = authorization.identifier.value;
      if (authorization.status !== "pending") {
        throw new AcmeError(`the authorization for ${name} is ${authorization.status}`);
      }
      const challenge = authorization.challenges.find((c) => c.type === "http-01");
      if (challenge === undefined) {
        throw new AcmeError(`the CA offers no http-01 challenge for ${name}`);
      }
      await inStorage(
        "publish the challenge",
        acme,
        () => storage.writeChallenge(challenge.token, client.keyAuthorization(challenge)),
      );
      published.push(challenge.token);
      await client.accept(challenge);
      pending.push(url);
    }
    for (const url of pending) {
      const done = await poll(
        () => client.authorization(url),
        (a) => a.status !== "pending",
        signal,
      );
      if (done.status !== "valid") throw new AcmeError(validationFailure(done));
    }
  } finally {
    for (const token of published) await storage.removeChallenge(token);
  }
}

/** Why the CA did not validate `authorization`, in its own words. */
function validationFailure(authorization: Authorization): string {
  const name = authorization.identifier.value;
  const failed = authorization.challenges.find((c) => c.error !== undefined);
  const detail = failed?.error === undefined ? "no detail given" : describeProblem(failed.error);
  return `the CA could not validate ${name} (http-01 on port 80): ${detail}`;
}

/** Reads `read` until `settled` says so, backing off, for at most {@linkcode POLL_LIMIT_MS}. */
async function poll<T>(
  read: () => Promise<T>,
  settled: (value: T) => boolean,
  signal: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + POLL_LIMIT_MS;
  for (let delay = FIRST_POLL_MS;; delay = Math.min(delay * 2, MAX_POLL_MS)) {
    const value = await read();
    if (settled(value)) return value;
    if (Date.now() + delay > deadline) {
      throw new AcmeError(`the CA did not finish within ${POLL_LIMIT_MS / 1000} s`);
    }
    await sleep(delay, signal);
  }
}

/** Resolves after `ms`, or rejects at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal.addEventListener("abort", abort, { once: true });
  });
}

/** Runs a storage step, turning its failure into "cannot WHAT under STORAGE: reason". */
async function inStorage<T>(what: string, acme: AcmeConfig, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof AcmeError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new AcmeError(`cannot ${what} under ${acme.storage}: ${reason}`);
  }
}
