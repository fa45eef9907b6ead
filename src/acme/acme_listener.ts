/**
 * The two sides of ACME every isolate has: a TLS listener's certificate read
 * from the storage (the primary's manager writes it there; a new one lands
 * in the watched folder and the listener rotates to it), and the plain
 * listeners' answers to the CA's http-01 challenges, read from the files the
 * manager published, ahead of all routes.
 *
 * @module
 */

import { type AcmeConfig, type Config, listenersOf } from "../config/types.ts";
import type { CertificateSource } from "../internal/rotating_tls_server.ts";
import { AcmeStorage, challengesFolderOf, readChallenge } from "./acme_storage.ts";

const CHALLENGE_PATH = "/.well-known/acme-challenge/";

/**
 * The certificate for the domains `acme()` names now, from its storage (or,
 * while it is ordered, the stored one naming most of them); without any the
 * listener waits for it. `log` hears when the storage
 * folder cannot be made (the manager reports why it cannot store there).
 *
 * @example
 * ```ts
 * const source = acmeCertificateSource(() => listenersOf(proxy.config)[1].acme!, console.error);
 * ```
 */
export function acmeCertificateSource(
  acme: () => AcmeConfig,
  log: (line: string) => void,
): CertificateSource {
  return {
    files: [],
    folders: () => {
      const { certificatesFolder } = new AcmeStorage(acme());
      try {
        Deno.mkdirSync(certificatesFolder, { recursive: true });
        return [certificatesFolder];
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        log(
          `acme: cannot make ${certificatesFolder} (${reason}): no certificate is watched for there`,
        );
        return [];
      }
    },
    mayWait: true,
    read: () => {
      const current = acme();
      return new AcmeStorage(current).readServableCertificate(current.domains);
    },
  };
}

/**
 * `handler` behind the answers to a CA's `GET /.well-known/acme-challenge/TOKEN`:
 * the key authorization published for TOKEN under a storage `config()`
 * names. Every other request, and a token not published (a backend may run
 * its own ACME client for other names), goes to `handler`.
 *
 * @example
 * ```ts
 * Deno.serve(answeringAcmeChallenges((request, info) => handleRequest(request, info, proxy), () => proxy.config));
 * ```
 */
export function answeringAcmeChallenges(
  handler: (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response>,
  config: () => Config,
): (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  return (request, info) => {
    const token = challengeToken(request);
    if (token === undefined) return handler(request, info);
    const folders = listenersOf(config()).flatMap(({ acme }) =>
      acme === undefined ? [] : [challengesFolderOf(acme.storage)]
    );
    return readChallenge(folders, token).then((answer) =>
      answer === undefined ? handler(request, info) : new Response(
        request.method === "HEAD" ? null : answer,
        { headers: { "content-type": "text/plain" } },
      )
    );
  };
}

/** The TOKEN of a `GET` or `HEAD` of `/.well-known/acme-challenge/TOKEN`, else undefined. */
function challengeToken(request: Request): string | undefined {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const url = request.url;
  if (!url.includes(CHALLENGE_PATH)) return undefined;
  const { pathname } = new URL(url);
  return pathname.startsWith(CHALLENGE_PATH) ? pathname.slice(CHALLENGE_PATH.length) : undefined;
}
