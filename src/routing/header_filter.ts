/**
 * A route's header changes, `request_headers` or `response_headers`: `set`
 * replaces every value of a header, `add` appends one more, `remove` deletes
 * every value. They run before the proxy's own header rules, which so still
 * win: hop-by-hop headers go, the forwarding headers are the balancer's.
 *
 * @module
 */

import type { HeaderFilterConfig } from "../config/types.ts";
import type { HeaderPairs } from "../types.ts";

/**
 * One route's header changes, compiled.
 *
 * @example
 * ```ts
 * const filter = new HeaderFilter({ set: { "x-env": "prod" }, add: { "x-tag": "a" }, remove: ["x-debug"] });
 * filter.apply([["x-debug", "1"], ["x-env", "dev"], ["accept", "*\/*"]]);
 * // [["accept", "*\/*"], ["x-env", "prod"], ["x-tag", "a"]]
 * ```
 */
export class HeaderFilter {
  readonly #dropped: ReadonlySet<string>;
  readonly #added: HeaderPairs;

  constructor(config: HeaderFilterConfig) {
    this.#dropped = new Set([...config.remove, ...Object.keys(config.set)]);
    this.#added = [...Object.entries(config.set), ...Object.entries(config.add)];
  }

  /** `fields` (lowercase names) with the changes made. */
  apply(fields: Iterable<[string, string]>): HeaderPairs {
    const result: HeaderPairs = [];
    for (const field of fields) {
      if (!this.#dropped.has(field[0])) result.push(field);
    }
    result.push(...this.#added.map(([name, value]): [string, string] => [name, value]));
    return result;
  }
}
