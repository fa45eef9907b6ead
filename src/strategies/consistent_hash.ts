/**
 * Consistent hashing: requests with the same key (a header, a cookie, a query
 * parameter, the client's address or the path) reach the same backend, by
 * Maglev hashing (Google's Maglev paper; Envoy's `MAGLEV`).
 *
 * Each backend walks its own permutation of a lookup table of prime size,
 * from an offset and a skip hashed from its id, and the backends take turns
 * claiming the next free slot of their permutation until the table is full;
 * a key's backend is the one in slot `hash(key) % size`. The table depends
 * only on the set of backends and their weights, never on their order in the
 * config or on the process, so a restart or another isolate maps every key
 * alike; when one of N backends leaves, mostly its own keys move, and they
 * come back when it returns.
 *
 * Keyed requests keep their affinity and do not ramp: a backend in slow start
 * gets its full share of keys at once, since scaling its share would move
 * keys each time its ramp factor rises. Requests without a key go by round
 * robin, which does ramp.
 *
 * @module
 */

import { normalizePath } from "../routing/request_target.ts";
import type { Backend, ClientInfo, Strategy, StrategyFactory } from "../types.ts";
import { roundRobin } from "./round_robin.ts";
import { readCookie } from "./sticky.ts";

/** A prime, so every skip in 1..size-1 makes a permutation of the slots. */
const TABLE_SIZE = 65537;
/**
 * Tables kept besides the current one, so that a retry (which excludes a
 * backend) or a flapping backend does not rebuild the table each time.
 */
const CACHED_TABLES = 4;
const OFFSET_SEED = 0x2f0a_8b61;
const SKIP_SEED = 0x5c3e_9d17;
const KEY_SEED = 0x0b7e_1a43;
/** Longest key value an explanation shows whole. */
const SHOWN_VALUE = 64;

/**
 * Sends each key to its backend in a Maglev table of the candidates, where a
 * backend of weight w holds w times the slots of one of weight 1. The table
 * is built once per set of candidates (ids and weights) and cached; a lookup
 * is one hash and one array read.
 *
 * With `balance_factor` (percent, at least 100), no backend takes a request
 * while its in-flight count is at the bound, `ceil(factor / 100 × (total in
 * flight + 1) / candidates)`: the key moves along the table from its slot
 * to the first other backend under the bound, and stays where it is if none
 * is. A request without the key goes by round robin.
 *
 * @example
 * ```ts
 * const strategy = consistentHash({
 *   cookie: "lb_backend",
 *   turn: new Uint32Array(new SharedArrayBuffer(4)),
 *   hash: { key: "header:x-user-id", balance_factor: 125 },
 *   ewmaDecayMs: 10_000,
 * });
 * const request = new Request("http://lb.test/", { headers: { "x-user-id": "alice" } });
 * const { backend } = strategy.select(healthyBackends, request); // alice's backend, each time
 * ```
 */
export const consistentHash: StrategyFactory = (options): Strategy => {
  const { key, balance_factor: balanceFactor } = options.hash;
  const readKey = keyReader(key);
  const fallback = roundRobin(options);
  const tables = new TableCache();

  const place = (candidates: readonly Backend[], value: string): Placement => {
    const table = tables.for(candidates);
    const slot = hash32(value, KEY_SEED) % TABLE_SIZE;
    const home = table.slots[slot];
    const backend = table.backends[home];
    if (balanceFactor === 0) return { backend, slot };
    let total = 0;
    for (const candidate of candidates) total += candidate.inFlight;
    const bound = Math.ceil(balanceFactor * (total + 1) / (100 * candidates.length));
    if (backend.inFlight < bound) return { backend, slot };
    const { slots, backends, tried } = table;
    const stamp = ++table.stamp;
    tried[home] = stamp;
    let seen = 1;
    for (let step = 1, at = slot + 1; step < TABLE_SIZE && seen < backends.length; step++, at++) {
      if (at === TABLE_SIZE) at = 0;
      const index = slots[at];
      if (tried[index] === stamp) continue;
      tried[index] = stamp;
      seen++;
      if (backends[index].inFlight < bound) {
        return { backend: backends[index], slot, movedFrom: backend, bound };
      }
    }
    return { backend, slot };
  };

  const choose =
    (pick: Strategy["select"]): Strategy["select"] => (candidates, request, ramps, client) => {
      const value = readKey(request, client);
      if (value === undefined) return pick(candidates, request, ramps, client);
      return { backend: place(candidates, value).backend };
    };

  return {
    select: choose(fallback.select),
    preview: choose(fallback.preview),
    explain: (candidates, request, _ramps, client) => {
      const value = readKey(request, client);
      if (value === undefined) return `no key ${key}: round robin`;
      const { backend, slot, movedFrom, bound } = place(candidates, value);
      const shown = value.length > SHOWN_VALUE ? `${value.slice(0, SHOWN_VALUE)}…` : value;
      const text = `key ${key}=${shown}, slot ${slot}, backend ${backend.id}`;
      return movedFrom === undefined
        ? text
        : `${text}, moved from ${movedFrom.id}: over the bound ${bound}`;
    },
  };
};

/** Where a key went: its slot, and the backend the bound moved it from, if it did. */
interface Placement {
  backend: Backend;
  slot: number;
  movedFrom?: Backend;
  bound?: number;
}

/** The key of a request: undefined when it has none (an empty value counts as none). */
type KeyReader = (request: Request, client?: ClientInfo) => string | undefined;

function keyReader(spec: string): KeyReader {
  if (spec === "client_ip") return (_request, client) => client?.clientAddress || undefined;
  // The path as routes read it: `/a/../b` and `/b` are one key.
  if (spec === "path") return (request) => normalizePath(pathOf(request.url));
  const separator = spec.indexOf(":");
  const source = spec.slice(0, separator);
  const name = spec.slice(separator + 1);
  if (separator > 0 && name !== "") {
    if (source === "header") return (request) => request.headers.get(name) || undefined;
    if (source === "cookie") {
      return (request) => readCookie(request.headers.get("cookie"), name) || undefined;
    }
    if (source === "query") {
      return (request) => new URL(request.url).searchParams.get(name) || undefined;
    }
  }
  throw new Error(`consistent_hash: unknown key ${JSON.stringify(spec)}`);
}

/** The path of an absolute URL as `Request.url` serialises it, without query or fragment. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  let end = start;
  while (end < url.length && url[end] !== "?" && url[end] !== "#") end++;
  return url.slice(start, end);
}

/** A Maglev table over `backends` (sorted by id); slots hold indexes into it. */
interface Table {
  backends: readonly Backend[];
  readonly slots: Uint16Array | Uint32Array;
  /** The candidates as last matched, and their weights then, for the cheap check. */
  seen: readonly Backend[];
  seenWeights: readonly number[];
  /** Per member, the stamp of the last bound walk that tried it. */
  readonly tried: Float64Array;
  stamp: number;
}

/** The current table and a few recent ones, by the ids and weights they were built from. */
class TableCache {
  #current: Table | undefined;
  readonly #recent = new Map<string, Table>();

  for(candidates: readonly Backend[]): Table {
    const current = this.#current;
    if (current !== undefined && matches(current, candidates)) return current;
    const backends = [...candidates].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const key = backends.map((backend) => `${backend.id}*${backend.weight}`).join(" ");
    let table = this.#recent.get(key);
    if (table === undefined) {
      table = {
        backends,
        slots: populate(backends),
        seen: [],
        seenWeights: [],
        tried: new Float64Array(backends.length),
        stamp: 0,
      };
    } else {
      this.#recent.delete(key);
      table.backends = backends;
    }
    table.seen = [...candidates];
    table.seenWeights = candidates.map((backend) => backend.weight);
    this.#recent.set(key, table);
    if (this.#recent.size > CACHED_TABLES + 1) {
      this.#recent.delete(this.#recent.keys().next().value!);
    }
    this.#current = table;
    return table;
  }
}

function matches(table: Table, candidates: readonly Backend[]): boolean {
  const { seen, seenWeights } = table;
  if (seen.length !== candidates.length) return false;
  for (let i = 0; i < seen.length; i++) {
    if (seen[i] !== candidates[i] || seenWeights[i] !== candidates[i].weight) return false;
  }
  return true;
}

/**
 * Fills the table. Backends take turns, each claiming the first free slot
 * along its permutation (offset, offset + skip, ... mod size). A backend of
 * weight w takes its k-th turn at time k / w, so it takes w turns for each
 * one of a weight-1 backend; backends of one weight share those times and go
 * together in id order, heavier ones first when times tie.
 */
function populate(backends: readonly Backend[]): Uint16Array | Uint32Array {
  const count = backends.length;
  const slots = count < 0xffff ? new Uint16Array(TABLE_SIZE) : new Uint32Array(TABLE_SIZE);
  const free = count;
  slots.fill(free);
  const next = new Uint32Array(count);
  const skip = new Uint32Array(count);
  const byWeight = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const { id, weight } = backends[i];
    next[i] = hash32(id, OFFSET_SEED) % TABLE_SIZE;
    skip[i] = hash32(id, SKIP_SEED) % (TABLE_SIZE - 1) + 1;
    const members = byWeight.get(weight);
    if (members === undefined) byWeight.set(weight, [i]);
    else members.push(i);
  }
  const groups = [...byWeight].sort(([a], [b]) => b - a);
  const rounds = new Float64Array(groups.length);
  const due = new Float64Array(groups.length);
  // A min-heap of group indexes by (due, index); all due at 0, so index order is a heap.
  const heap = Uint32Array.from(groups, (_, i) => i);
  let filled = 0;
  while (filled < TABLE_SIZE) {
    const group = heap[0];
    const [weight, members] = groups[group];
    for (let m = 0; m < members.length && filled < TABLE_SIZE; m++, filled++) {
      const member = members[m];
      const step = skip[member];
      let slot = next[member];
      while (slots[slot] !== free) {
        slot += step;
        if (slot >= TABLE_SIZE) slot -= TABLE_SIZE;
      }
      slots[slot] = member;
      next[member] = slot + step < TABLE_SIZE ? slot + step : slot + step - TABLE_SIZE;
    }
    const time = ++rounds[group] / weight;
    due[group] = time;
    let at = 0;
    for (let child = 1; child < heap.length; child = 2 * at + 1) {
      let first = heap[child];
      if (child + 1 < heap.length) {
        const right = heap[child + 1];
        if (due[right] < due[first] || (due[right] === due[first] && right < first)) {
          first = right;
          child++;
        }
      }
      if (time < due[first] || (time === due[first] && group < first)) break;
      heap[at] = first;
      at = child;
    }
    heap[at] = group;
  }
  return slots;
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** MurmurHash3 (x86, 32-bit) of `text`'s UTF-8 bytes. */
function hash32(text: string, seed: number): number {
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  const bytes = scratch;
  const length = encoder.encodeInto(text, bytes).written;
  const blocks = length & ~3;
  let h = seed;
  for (let i = 0; i < blocks; i += 4) {
    h ^= scramble(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe654_6b64) | 0;
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = bytes[blocks];
    if (tail > 1) k |= bytes[blocks + 1] << 8;
    if (tail > 2) k |= bytes[blocks + 2] << 16;
    h ^= scramble(k);
  }
  h ^= length;
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function scramble(k: number): number {
  k = Math.imul(k, 0xcc9e_2d51);
  return Math.imul((k << 15) | (k >>> 17), 0x1b87_3593);
}
