/**
 * `deno task schema`: writes `config.schema.json` from the config's zod
 * schema, so editors complete and check `config.yaml`. A test fails when the
 * committed file is out of date.
 *
 * @module
 */

import { configJsonSchema } from "../src/config/config.ts";

/**
 * The file's exact text: two-space JSON and a final newline, as `deno fmt` keeps it.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("config.schema.json", schemaText());
 * ```
 */
export function schemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

if (import.meta.main) {
  const path = new URL("../config.schema.json", import.meta.url);
  await Deno.writeTextFile(path, schemaText());
  console.error(`wrote ${path.pathname}`);
}
