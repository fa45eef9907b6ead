/**
 * The tooling: the committed JSON schema matches the zod schema, config.yaml
 * points editors at it, and `deno task compile` builds a working executable
 * where `deno compile` can get its runtime.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../src/config/config.ts";
import { schemaText } from "../tools/write_schema.ts";
import { spawnGathering, waitFor } from "./helpers.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("tooling: config.schema.json is up to date (run `deno task schema`)", async () => {
  const committed = await Deno.readTextFile(new URL("config.schema.json", ROOT));
  assert.equal(committed, schemaText(), "config.schema.json is stale: run `deno task schema`");
});

Deno.test("tooling: config.yaml names the schema on its first line and is valid", async () => {
  const text = await Deno.readTextFile(new URL("config.yaml", ROOT));
  assert.equal(text.split("\n")[0], "# yaml-language-server: $schema=./config.schema.json");
  parseConfig(text, "config.yaml");
});

/** The arguments of `deno task compile`, writing to `output` instead. */
async function compileArgs(output: string): Promise<string[]> {
  const { tasks } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const [deno, ...args] = (tasks.compile as string).split(" ");
  assert.equal(deno, "deno");
  return args.map((arg) => arg.startsWith("--output=") ? `--output=${output}` : arg);
}

/** deno compile's words for "I could not download denort". */
const DOWNLOAD_FAILED = /dl\.deno\.land|error sending request|dns error|failed to lookup/i;

Deno.test("tooling: deno task compile builds a standalone balancer that serves the dashboard", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "compile_test_" });
  try {
    const binary = `${dir}/deno-lb`;
    const build = await new Deno.Command(Deno.execPath(), {
      args: await compileArgs(binary),
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const buildErr = new TextDecoder().decode(build.stderr);
    if (!build.success) {
      assert.match(
        buildErr,
        DOWNLOAD_FAILED,
        `deno compile failed for another reason:\n${buildErr}`,
      );
      const why = "deno compile could not download its runtime (denort) and DENORT_BIN " +
        (Deno.env.get("DENORT_BIN") ? "did not help" : "is unset");
      console.warn(`compile test: ${why}; see README, Standalone executable`);
      await t.step({ name: `run the executable: SKIPPED, ${why}`, ignore: true, fn() {} });
      return;
    }
    const config = `${dir}/config.yaml`;
    const backend = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("from the backend"),
    );
    await Deno.writeTextFile(
      config,
      "listen: { host: 127.0.0.1, port: 0 }\n" +
        `backends: [{ url: "http://127.0.0.1:${backend.addr.port}" }]\n` +
        "admin: { listen: { port: 0 } }\nlogging: { access: off }\n",
    );
    await t.step("--check", async () => {
      const check = await new Deno.Command(binary, { args: ["--config", config, "--check"] })
        .output();
      assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
      assert.match(new TextDecoder().decode(check.stdout), /^config ok: listen 127\.0\.0\.1:0/);
    });
    await t.step("serves, with the dashboard embedded", async () => {
      const spawned = spawnGathering(binary, ["--config", config]);
      try {
        await waitFor(() => /admin http:\/\/127\.0\.0\.1:\d+/.test(spawned.stderr()), "the banner");
        const [, port, adminPort] =
          /listening on http:\/\/127\.0\.0\.1:(\d+), admin http:\/\/127\.0\.0\.1:(\d+)/
            .exec(spawned.stderr())!;
        assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "from the backend");
        assert.match(
          await (await fetch(`http://127.0.0.1:${adminPort}/`)).text(),
          /<!doctype html>/,
        );
      } finally {
        spawned.child.kill("SIGTERM");
        await spawned.child.status;
        await spawned.finish();
      }
    });
    await backend.shutdown();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
