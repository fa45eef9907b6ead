/**
 * Sticky sessions: a cookie names the backend that served the client before.
 *
 * @module
 */

import type { Backend, Strategy, StrategyFactory } from "../types.ts";
import { roundRobin } from "./round_robin.ts";

/**
 * Sends a client back to the backend whose id its cookie holds. A missing,
 * unknown or unhealthy id falls back to round robin and sets the cookie anew.
 * The id is derived from the backend's URL, so it survives a reordering of the
 * config.
 *
 * @example
 * ```ts
 * const strategy = sticky({ cookie: "lb_backend", turn: new Uint32Array(new SharedArrayBuffer(4)) });
 * const { backend, setCookie } = strategy.select(healthyBackends, request);
 * ```
 */
export const sticky: StrategyFactory = (options): Strategy => {
  const { cookie } = options;
  const fallback = roundRobin(options);
  const choose = (pick: Strategy["select"]): Strategy["select"] => (candidates, request, ramps) => {
    const id = readCookie(request.headers.get("cookie"), cookie);
    const pinned = id === undefined ? undefined : findById(candidates, id);
    if (pinned) return { backend: pinned };
    const { backend } = pick(candidates, request, ramps);
    return { backend, setCookie: `${cookie}=${backend.id}; Path=/; HttpOnly; SameSite=Lax` };
  };
  return { select: choose(fallback.select), preview: choose(fallback.preview) };
};

function findById(candidates: readonly Backend[], id: string): Backend | undefined {
  for (const backend of candidates) if (backend.id === id) return backend;
  return undefined;
}

/**
 * The value of cookie `name` in a `Cookie` header, or undefined.
 *
 * @example
 * ```ts
 * readCookie("theme=dark; lb_backend=1a2b3c4d", "lb_backend"); // "1a2b3c4d"
 * ```
 */
export function readCookie(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const pair of header.split(";")) {
    const separator = pair.indexOf("=");
    if (separator !== -1 && pair.slice(0, separator).trim() === name) {
      return pair.slice(separator + 1).trim();
    }
  }
  return undefined;
}
