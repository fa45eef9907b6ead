/**
 * Explainable routing: why a request goes (or would go) to a backend. The
 * same decision answers `POST /explain` on the admin API and, as the
 * `X-LB-Decision` response header, a client that sent `X-LB-Explain: 1`.
 *
 * @module
 */

import { backendState, type LoadBalancer } from "../load_balancer.ts";
import type { FailedAttempt } from "../request_context.ts";
import { readCookie } from "../strategies/sticky.ts";
import type { Backend, BackendState, Selection, StrategyName } from "../types.ts";

/**
 * One backend as the selection saw it.
 *
 * @example
 * ```ts
 * const candidate: Candidate = { id: "1a2b3c4d", url: "http://127.0.0.1:9001", eligible: false, reason: "draining" };
 * ```
 */
export interface Candidate {
  id: string;
  url: string;
  /** Whether the strategy could pick it. */
  eligible: boolean;
  /** Its state: `up` when eligible, else why not. */
  reason: BackendState;
}

/**
 * How the sticky cookie weighed in: a hit keeps the client on its backend.
 *
 * @example
 * ```ts
 * const sticky: StickyOutcome = { hit: false, reason: "no lb_backend cookie" };
 * ```
 */
export interface StickyOutcome {
  hit: boolean;
  reason: string;
}

/**
 * Why a backend was (or would be) chosen.
 *
 * @example
 * ```ts
 * const decision: Decision = explain(balancer, new Request("http://lb/cart"));
 * decision.backend; // "1a2b3c4d", or null when no backend is in rotation
 * ```
 */
export interface Decision {
  /** The chosen backend's id, null when none is in rotation. */
  backend: string | null;
  strategy: StrategyName;
  candidates: Candidate[];
  /** Null unless the strategy is `sticky`. */
  sticky: StickyOutcome | null;
}

/**
 * Which backend `request` would go to now and why, without sending anything
 * and without moving the strategy on (random draws a backend like a real
 * request would).
 *
 * @example
 * ```ts
 * explain(balancer, new Request("http://lb/", { headers: { cookie: "lb_backend=1a2b3c4d" } }));
 * ```
 */
export function explain(balancer: LoadBalancer, request: Request): Decision {
  return explainSelection(balancer, request, balancer.previewBackend(request));
}

/**
 * The decision behind `selection`, made for `request` just now.
 *
 * @example
 * ```ts
 * const selection = balancer.selectBackend(request);
 * explainSelection(balancer, request, selection).candidates; // [{ id, url, eligible, reason }, ...]
 * ```
 */
export function explainSelection(
  balancer: LoadBalancer,
  request: Request,
  selection: Selection | undefined,
): Decision {
  return {
    backend: selection?.backend.id ?? null,
    strategy: balancer.strategyName,
    candidates: balancer.backends.map((backend) => {
      const state = backendState(backend);
      return { id: backend.id, url: backend.url.origin, eligible: state === "up", reason: state };
    }),
    sticky: balancer.strategyName === "sticky" ? stickyOutcome(balancer, request) : null,
  };
}

function stickyOutcome(balancer: LoadBalancer, request: Request): StickyOutcome {
  const cookie = balancer.stickyCookie;
  const id = readCookie(request.headers.get("cookie"), cookie);
  if (id === undefined) return { hit: false, reason: `no ${cookie} cookie` };
  const pinned = balancer.backendById(id);
  if (pinned === undefined) return { hit: false, reason: `${cookie} names no backend` };
  const state = backendState(pinned);
  if (state !== "up") return { hit: false, reason: `${cookie} names ${pinned.id}, ${state}` };
  return { hit: true, reason: `${cookie} names ${pinned.id}` };
}

/**
 * The `X-LB-Decision` header value: strategy, the backend that served, the
 * sticky outcome, every candidate with its state, and the attempts that
 * failed over to another backend.
 *
 * @example
 * ```ts
 * decisionHeader(decision, ctx.backend, ctx.failures);
 * // "strategy=round_robin; backend=5e6f7a8b; candidates=1a2b3c4d up, 5e6f7a8b up; retries=1a2b3c4d connect_refused"
 * ```
 */
export function decisionHeader(
  decision: Decision,
  served: Backend | undefined,
  failures: readonly FailedAttempt[],
): string {
  const parts = [`strategy=${decision.strategy}`, `backend=${served?.id ?? "none"}`];
  if (decision.sticky !== null) {
    parts.push(`sticky=${decision.sticky.hit ? "hit" : "miss"} (${decision.sticky.reason})`);
  }
  const candidates = decision.candidates.map((candidate) => `${candidate.id} ${candidate.reason}`);
  parts.push(`candidates=${candidates.join(", ")}`);
  const retries = failures.filter((failure) => failure.retried);
  if (retries.length > 0) {
    const reasons = retries.map((retry) => `${retry.backend.id} ${retry.error.kind}`);
    parts.push(`retries=${reasons.join(", ")}`);
  }
  return parts.join("; ");
}
