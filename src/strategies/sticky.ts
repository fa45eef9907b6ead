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
 * const strategy = sticky({ cookie: "lb_backend" });
 * const { backend, setCookie } = strategy.select(healthyBackends, request);
 * ```
 */
export const sticky: StrategyFactory = ({ cookie }): Strategy => {
  const fallback = roundRobin({ cookie });
  return {
    select(candidates, request) {
      const id = readCookie(request.headers.get("cookie"), cookie);
      const pinned = id === undefined ? undefined : findById(candidates, id);
      if (pinned) return { backend: pinned };
      const { backend } = fallback.select(candidates, request);
      return { backend, setCookie: `${cookie}=${backend.id}; Path=/; HttpOnly; SameSite=Lax` };
    },
  };
};

function findById(candidates: readonly Backend[], id: string): Backend | undefined {
  for (const backend of candidates) if (backend.id === id) return backend;
  return undefined;
}

function readCookie(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const pair of header.split(";")) {
    const separator = pair.indexOf("=");
    if (separator !== -1 && pair.slice(0, separator).trim() === name) {
      return pair.slice(separator + 1).trim();
    }
  }
  return undefined;
}
