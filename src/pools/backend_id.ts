/**
 * Backend ids: stable, opaque and unique in the config, so that the sticky
 * cookie and the admin API can name a backend whatever its place in the file.
 *
 * @module
 */

import { DEFAULT_POOL } from "../config/types.ts";

/**
 * The id of the backend at `url` (a normalised origin) in `pool`: a hash of
 * the URL in the `default` pool, as before pools existed, and of the pool's
 * name and the URL elsewhere, so one URL in two pools is two backends.
 *
 * @example
 * ```ts
 * backendId("default", "http://127.0.0.1:9001"); // always the same 8 hex digits
 * backendId("api", "http://127.0.0.1:9001"); // another 8
 * ```
 */
export function backendId(pool: string, url: string): string {
  const key = pool === DEFAULT_POOL ? url : `${pool} ${url}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, "0");
}
