/**
 * Where each problem of a config sits in its file: zod's issues and the
 * checks made on the raw YAML, turned into `file:line key: detail` lines.
 *
 * @module
 */

import type { z } from "zod";
import { type Document, isMap, isScalar, type LineCounter, visit } from "yaml";
import { normalizeBackendUrl } from "./schema.ts";

export function expectedText(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return `a value of type ${issue.expected}`;
    case "invalid_value":
      return `one of ${issue.values.map((value) => JSON.stringify(value)).join(" | ")}`;
    case "unrecognized_keys":
      return "unknown key";
    default:
      return "a valid value";
  }
}

export type Path = readonly PropertyKey[];

/** One problem and where it sits in the file, for sorting into file order. */
export interface Problem {
  offset: number;
  /** The dotted key path, empty for the whole document. */
  keyPath: string;
  detail: string;
}

/** The YAML node at `path`, or the nearest ancestor that exists. */
function nearestNode(doc: Document, path: Path): unknown {
  for (let length = path.length; length >= 0; length--) {
    const node = doc.getIn(path.slice(0, length), true);
    if (nodeOffset(node) !== undefined) return node;
  }
  return doc.contents;
}

function nodeOffset(node: unknown): number | undefined {
  const range = (node as { range?: unknown } | null | undefined)?.range;
  return Array.isArray(range) && typeof range[0] === "number" ? range[0] : undefined;
}

/** The key node of `key` in the mapping at `path`, so unknown keys point at themselves. */
function keyNode(doc: Document, path: Path, key: string): unknown {
  const map = doc.getIn(path, true);
  if (!isMap(map)) return undefined;
  const pair = map.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
  return pair?.key;
}

function lookup(data: unknown, path: Path): { found: false } | { found: true; value: unknown } {
  let value = data;
  for (const key of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) {
      return { found: false };
    }
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return { found: true, value };
}

/** The value JSON-style (strings quoted), shortened to stay on one readable line. */
function show(value: unknown): string {
  const text = typeof value === "number" || value === undefined
    ? String(value)
    : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function keyPath(path: Path): string {
  return path.map(String).join(".");
}

export function issueProblems(
  issue: z.core.$ZodIssue,
  doc: Document,
  data: unknown,
): Problem[] {
  // A single listener is checked as a list of one: its problems name it, not `listen.0`.
  const single = issue.path[0] === "listen" && issue.path[1] === 0 &&
    !Array.isArray((data as { listen?: unknown } | null)?.listen);
  if (single) issue = { ...issue, path: ["listen", ...issue.path.slice(2)] };
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      offset: nodeOffset(keyNode(doc, issue.path, key)) ??
        nodeOffset(nearestNode(doc, issue.path)) ?? 0,
      keyPath: keyPath([...issue.path, key]),
      detail: issue.message,
    }));
  }
  const offset = nodeOffset(nearestNode(doc, issue.path)) ?? 0;
  // Cross-key checks word their whole problem themselves.
  const detail = issue.code === "custom" ? issue.params?.detail : undefined;
  if (typeof detail === "string") return [{ offset, keyPath: keyPath(issue.path), detail }];
  const got = lookup(data, issue.path);
  return [{
    offset,
    keyPath: keyPath(issue.path),
    detail: `expected ${issue.message}, got ${
      got.found ? show(got.value) : "nothing (the key is missing)"
    }`,
  }];
}

/**
 * Within a pool (the top-level `backends` are the `default` pool) backends
 * are identified by URL, so two with the same origin in one list are an error.
 */
export function duplicateUrlProblems(doc: Document, data: unknown): Problem[] {
  const root = isRecord(data) ? data : {};
  const lists: [Path, unknown][] = [[["backends"], root.backends]];
  if (isRecord(root.pools)) {
    for (const [name, pool] of Object.entries(root.pools)) {
      lists.push([["pools", name, "backends"], isRecord(pool) ? pool.backends : undefined]);
    }
  }
  return lists.flatMap(([path, list]) => duplicatesIn(doc, path, list));
}

function duplicatesIn(doc: Document, listPath: Path, backends: unknown): Problem[] {
  if (!Array.isArray(backends)) return [];
  const firstIndex = new Map<string, number>();
  const problems: Problem[] = [];
  backends.forEach((backend, index) => {
    const raw = isRecord(backend) ? backend.url : undefined;
    if (typeof raw !== "string") return;
    const result = normalizeBackendUrl(raw);
    if (!("origin" in result)) return;
    const first = firstIndex.get(result.origin);
    if (first === undefined) {
      firstIndex.set(result.origin, index);
      return;
    }
    const path = [...listPath, index, "url"];
    problems.push({
      offset: nodeOffset(nearestNode(doc, path)) ?? 0,
      keyPath: keyPath(path),
      detail: `expected a URL no other backend has, got ${show(raw)} (same as ${
        keyPath([...listPath, first, "url"])
      })`,
    });
  });
  return problems;
}

/** A config needs backends somewhere: the top-level list or `pools`. */
export function missingBackendsProblems(doc: Document, data: unknown): Problem[] {
  if (!isRecord(data) || "backends" in data || "pools" in data) return [];
  return [{
    offset: nodeOffset(doc.contents) ?? 0,
    keyPath: "backends",
    detail: "expected a list of backends, got nothing (the key is missing)",
  }];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function unresolvedAliasOffset(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, alias) {
      if (alias.resolve(doc) !== undefined) return;
      offset = nodeOffset(alias);
      return visit.BREAK;
    },
  });
  return offset;
}

export function lineOf(lineCounter: LineCounter, offset: number): number {
  return Math.max(1, lineCounter.linePos(offset).line);
}
