/**
 * The building blocks of the config schema: durations, sizes, percents,
 * integers, strict sections and choices, each with the "expected ..." text
 * its errors show.
 *
 * @module
 */

import { z } from "zod";

/** Large enough for any real traffic split, small enough that weight sums stay exact. */
export const MAX_WEIGHT = 1_000_000;

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};
const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s?(B|KiB|MiB|GiB)$/;

/**
 * Converts a duration to milliseconds: a string with a unit (`"250ms"`,
 * `"5s"`, `"1.5m"`, `"1h"`, `"30d"`) or a plain number of milliseconds. The
 * result is rounded to whole milliseconds; `undefined` means the value is not
 * a duration. Bounds are not checked here: the schema wants 1ms to 24h (days
 * only where a key says so).
 *
 * @example
 * ```ts
 * parseDuration("250ms"); // 250
 * parseDuration("5s"); // 5000
 * parseDuration("1m"); // 60000
 * parseDuration(1500); // 1500
 * parseDuration("5 seconds"); // undefined
 * ```
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isNaN(value) ? undefined : Math.round(value);
  const match = DURATION_PATTERN.exec(value);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]]);
}

/**
 * Converts a size to bytes: a string with a unit (`"512B"`, `"64KiB"`,
 * `"100MiB"`, `"1.5GiB"`) or a plain number of bytes, rounded down to whole
 * bytes; `undefined` means the value is not a size.
 *
 * @example
 * ```ts
 * parseSize("64KiB"); // 65536
 * parseSize(1000); // 1000
 * parseSize("64KB"); // undefined
 * ```
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? Math.floor(value) : undefined;
  const match = SIZE_PATTERN.exec(value);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * SIZE_UNITS[match[2]]);
}

// Each schema below carries its own "expected ..." text (zod's `error` param),
// so a problem reads `KEYPATH: expected <text>, got <value>`.

export const DURATION_TEXT = 'a duration like "250ms", "5s", "1m" or a number of milliseconds';

/**
 * A duration from `minMs` (1 unless 0 means "off") to `maxDays` days (24 h
 * unless a key says more), in milliseconds, without a default: `description`
 * goes into the JSON schema.
 */
export function durationValue(minMs: number, description: string, maxDays = 1) {
  const maxMs = maxDays * DURATION_UNITS_MS.d;
  const rangeText = `a duration from ${minMs === 0 ? "0s" : "1ms"} to ${
    maxDays === 1 ? "24h" : `${maxDays}d`
  }`;
  return z.union([z.string().regex(DURATION_PATTERN, { error: DURATION_TEXT }), z.number()], {
    error: DURATION_TEXT,
  })
    .meta({ description })
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: "custom", message: DURATION_TEXT, input: value });
        return z.NEVER;
      }
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: "custom", message: rangeText, input: value });
        return z.NEVER;
      }
      return ms;
    });
}

export function duration(defaultMs: number, minMs = 1) {
  return durationValue(minMs, `${DURATION_TEXT}; default ${defaultMs} ms`)
    .meta({ default: defaultMs })
    .default(defaultMs);
}

const SIZE_TEXT = 'a size like "64KiB", "100MiB" (B, KiB, MiB, GiB) or a number of bytes';
/** Sizes up to 1 TiB; larger is surely a typo. */
const MAX_SIZE = 1024 ** 4;
const SIZE_RANGE_TEXT = "a size from 0 to 1TiB";

export function size(defaultBytes: number) {
  return z.union([z.string().regex(SIZE_PATTERN, { error: SIZE_TEXT }), z.number()], {
    error: SIZE_TEXT,
  })
    .meta({ description: `${SIZE_TEXT}; default ${defaultBytes} bytes`, default: defaultBytes })
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === undefined || bytes < 0 || bytes > MAX_SIZE) {
        ctx.addIssue({ code: "custom", message: SIZE_RANGE_TEXT, input: value });
        return z.NEVER;
      }
      return bytes;
    })
    .default(defaultBytes);
}

const PERCENT_TEXT = "a percent from 0 to 100";

export function percent(defaultPercent: number) {
  return z.number({ error: PERCENT_TEXT }).min(0, { error: PERCENT_TEXT })
    .max(100, { error: PERCENT_TEXT }).default(defaultPercent);
}

export function intAtLeast(min: number, max = Number.MAX_SAFE_INTEGER) {
  const text = `an integer >= ${min}`;
  return z.int({ error: text }).min(min, { error: text })
    .max(max, { error: `an integer <= ${max}` });
}

/** A strict mapping: unknown keys are typos, reported with the keys allowed here. */
export function section<Shape extends z.ZodRawShape>(shape: Shape) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown key (expected one of ${keys})`
        : `a mapping with keys ${keys}`,
  });
}

/** An optional section: missing or empty (`key:` with nothing under it) means all defaults. */
export function optionalSection<Schema extends z.ZodType>(schema: Schema) {
  // prefault (rather than a preprocess step) keeps the section optional in the JSON schema.
  return z.preprocess((value) => value ?? undefined, schema.prefault({} as z.input<Schema>));
}

/** One of `values`, e.g. `one of http1 | fetch` in errors. */
export function choice<Values extends Readonly<Record<string, string>>>(values: Values) {
  const text = `one of ${Object.values(values).join(" | ")}`;
  return z.enum(values, { error: text });
}
