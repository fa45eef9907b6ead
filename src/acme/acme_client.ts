/**
 * An ACME client (RFC 8555) over fetch: the directory, nonces (a `badNonce`
 * answer is retried with the fresh nonce it carries), the account, orders,
 * authorizations and their challenges, finalisation and the certificate
 * download. Every request has a deadline; every failure is an
 * {@linkcode AcmeError} carrying the CA's own problem text.
 *
 * @module
 */

import { type AccountKey, base64url, signJws } from "./account_key.ts";

/** How long one request to the CA may take. */
const REQUEST_TIMEOUT_MS = 15_000;
/** `badNonce` answers retried in a row before giving up (RFC 8555 §6.5). */
const NONCE_RETRIES = 5;
const JOSE = "application/jose+json";

/**
 * A failure talking to the CA: the CA's problem document (`type`, `detail`)
 * when it sent one, else what went wrong on the way.
 */
export class AcmeError extends Error {
  constructor(
    message: string,
    /** The problem type without `urn:ietf:params:acme:error:`, when the CA gave one. */
    readonly type?: string,
  ) {
    super(message);
    this.name = "AcmeError";
  }
}

/** The URLs a directory lists (RFC 8555 §7.1.1). */
interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
}

/** An order (RFC 8555 §7.1.3) and the URL it lives at. */
export interface Order {
  url: string;
  status: "pending" | "ready" | "processing" | "valid" | "invalid";
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: Problem;
}

/** One identifier's authorization (RFC 8555 §7.1.4). */
export interface Authorization {
  status: "pending" | "valid" | "invalid" | "deactivated" | "expired" | "revoked";
  identifier: { type: string; value: string };
  challenges: Challenge[];
}

/** A challenge of an authorization (RFC 8555 §8). */
export interface Challenge {
  type: string;
  url: string;
  token: string;
  status: "pending" | "processing" | "valid" | "invalid";
  error?: Problem;
}

/** An RFC 7807 problem document as ACME sends it. */
export interface Problem {
  type?: string;
  detail?: string;
  subproblems?: Problem[];
}

/** What a client is made with. */
export interface AcmeClientOptions {
  /** The directory URL. */
  directory: string;
  key: AccountKey;
  /** PEM CA certificate to trust for the CA's HTTPS besides the system's roots. */
  ca?: string;
  /** Abandons every request. */
  signal?: AbortSignal;
}

/**
 * Talks to one ACME CA with one account key.
 *
 * @example
 * ```ts
 * using client = new AcmeClient({ directory: "https://127.0.0.1:14000/dir", key });
 * await client.account("ops@example.com");
 * const order = await client.newOrder(["example.com"]);
 * ```
 */
export class AcmeClient implements Disposable {
  readonly #options: AcmeClientOptions;
  readonly #http: Deno.HttpClient | undefined;
  #directory: Directory | undefined;
  #nonce: string | undefined;
  #kid: string | undefined;

  constructor(options: AcmeClientOptions) {
    this.#options = options;
    this.#http = options.ca === undefined
      ? undefined
      : Deno.createHttpClient({ caCerts: [options.ca] });
  }

  /**
   * Registers the account, or finds it when the CA knows the key already
   * (RFC 8555 §7.3), agreeing to the CA's terms; resolves to its URL.
   */
  async account(email?: string): Promise<string> {
    const directory = await this.#getDirectory();
    const payload: Record<string, unknown> = { termsOfServiceAgreed: true };
    if (email !== undefined) payload.contact = [`mailto:${email}`];
    const response = await this.#post(directory.newAccount, payload, "newAccount", true);
    const url = response.headers.get("location");
    if (url === null) throw new AcmeError("the CA's newAccount answer has no Location");
    await response.body?.cancel();
    this.#kid = url;
    return url;
  }

  /** Orders one certificate for `domains` (RFC 8555 §7.4). */
  async newOrder(domains: readonly string[]): Promise<Order> {
    const directory = await this.#getDirectory();
    const identifiers = domains.map((value) => ({ type: "dns", value }));
    const response = await this.#post(directory.newOrder, { identifiers }, "newOrder");
    const url = response.headers.get("location");
    if (url === null) throw new AcmeError("the CA's newOrder answer has no Location");
    return { ...await json<Order>(response, "newOrder"), url };
  }

  /** The order at `url` as it is now. */
  async order(url: string): Promise<Order> {
    return { ...await json<Order>(await this.#post(url, undefined, "order"), "order"), url };
  }

  /** The authorization at `url` as it is now. */
  async authorization(url: string): Promise<Authorization> {
    return await json(await this.#post(url, undefined, "authorization"), "authorization");
  }

  /** Tells the CA that `challenge` is ready to be validated (RFC 8555 §7.5.1). */
  async accept(challenge: Challenge): Promise<void> {
    await json(await this.#post(challenge.url, {}, "challenge"), "challenge");
  }

  /** Sends the CSR (DER) that finalises `order` (RFC 8555 §7.4). */
  async finalize(order: Order, csr: Uint8Array): Promise<Order> {
    const response = await this.#post(order.finalize, { csr: base64url(csr) }, "finalize");
    return { ...await json<Order>(response, "finalize"), url: order.url };
  }

  /** The issued chain, PEM, leaf first (RFC 8555 §7.4.2). */
  async certificate(url: string): Promise<string> {
    const response = await this.#post(url, undefined, "certificate");
    const pem = await response.text();
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new AcmeError("the CA's certificate download holds no PEM certificate");
    }
    return pem;
  }

  /** The key authorization that answers `challenge` (RFC 8555 §8.1). */
  keyAuthorization(challenge: Challenge): string {
    return `${challenge.token}.${this.#options.key.thumbprint}`;
  }

  [Symbol.dispose](): void {
    this.#http?.close();
  }

  async #getDirectory(): Promise<Directory> {
    if (this.#directory !== undefined) return this.#directory;
    const response = await this.#fetch(this.#options.directory, { method: "GET" }, "directory");
    const directory = await json<Directory>(response, "directory");
    for (const key of ["newNonce", "newAccount", "newOrder"] as const) {
      if (typeof directory[key] !== "string") {
        throw new AcmeError(`the CA's directory has no ${key} URL: is it an ACME directory?`);
      }
    }
    return this.#directory = directory;
  }

  /**
   * POSTs `payload` signed (`undefined`: POST-as-GET), under the account's
   * URL or, for `newAccount`, its JWK; retries a `badNonce` answer.
   */
  async #post(url: string, payload: unknown, what: string, withJwk = false): Promise<Response> {
    const key = this.#options.key;
    for (let attempt = 0;; attempt++) {
      const nonce = this.#nonce ?? await this.#newNonce();
      this.#nonce = undefined;
      const header: Record<string, unknown> = { alg: "ES256", nonce, url };
      if (withJwk) header.jwk = key.jwk;
      else header.kid = this.#kid;
      const body = await signJws(key, header, payload);
      const response = await this.#fetch(url, {
        method: "POST",
        headers: { "content-type": JOSE },
        body,
      }, what);
      this.#nonce = response.headers.get("replay-nonce") ?? undefined;
      if (response.ok) return response;
      const problem = await problemOf(response);
      if (problem.type?.endsWith(":badNonce") && attempt < NONCE_RETRIES) continue;
      throw new AcmeError(
        `the CA refused ${what} (${response.status}): ${describeProblem(problem)}`,
        problem.type?.replace("urn:ietf:params:acme:error:", ""),
      );
    }
  }

  async #newNonce(): Promise<string> {
    const { newNonce } = await this.#getDirectory();
    const response = await this.#fetch(newNonce, { method: "HEAD" }, "newNonce");
    await response.body?.cancel();
    const nonce = response.headers.get("replay-nonce");
    if (nonce === null) throw new AcmeError("the CA's newNonce answer has no Replay-Nonce");
    return nonce;
  }

  async #fetch(url: string, init: RequestInit, what: string): Promise<Response> {
    try {
      return await fetch(url, {
        ...init,
        client: this.#http,
        signal: AbortSignal.any([
          AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          ...(this.#options.signal === undefined ? [] : [this.#options.signal]),
        ]),
      } as RequestInit);
    } catch (error) {
      if (this.#options.signal?.aborted) throw error;
      const reason = error instanceof DOMException && error.name === "TimeoutError"
        ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
        : error instanceof Error
        ? error.message
        : String(error);
      throw new AcmeError(`cannot reach the CA for ${what} at ${url}: ${reason}`);
    }
  }
}

/** The JSON body of a successful answer, or an AcmeError saying it was not JSON. */
async function json<T>(response: Response, what: string): Promise<T> {
  const text = await response.text();
  const value = objectOf(text);
  if (value !== undefined) return value as T;
  throw new AcmeError(`the CA's answer to ${what} is not a JSON object: ${text.slice(0, 80)}`);
}

/** The problem document of a refusal; a body that is none stands for its detail. */
async function problemOf(response: Response): Promise<Problem> {
  const text = await response.text();
  return objectOf(text) as Problem | undefined ??
    { detail: text.slice(0, 200) || response.statusText };
}

/** `text` parsed when it is a JSON object, else undefined. */
function objectOf(text: string): object | undefined {
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A problem's detail with its subproblems' (one per identifier), e.g.
 * "Error creating new order :: example.com: rejectedIdentifier".
 */
export function describeProblem(problem: Problem): string {
  const own = problem.detail ?? problem.type ?? "no detail given";
  const parts = (problem.subproblems ?? []).map((sub) => describeProblem(sub));
  return parts.length === 0 ? own : `${own} (${parts.join("; ")})`;
}
