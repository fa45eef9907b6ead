/** The command line as a user runs it: flags, config errors, and draining on SIGTERM. */

import assert from "node:assert/strict";
import { backendsYaml, spawnGathering, startBackend, waitFor } from "./helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-env=LOG_TOKENS,LOG_STREAM"];

async function run(args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

async function writeConfig(yaml: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(path, yaml);
  return path;
}

Deno.test("main: --check validates, prints a one-line summary and exits 0; --port overrides", async () => {
  const path = await writeConfig(
    "listen: { host: 127.0.0.1, port: 8080 }\nstrategy: sticky\n" +
      backendsYaml(["http://127.0.0.1:9001", "http://127.0.0.1:9002"]),
  );
  try {
    const result = await run(["--config", path, "--check", "--port", "9999"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim().split("\n").length, 1);
    assert.match(result.stdout, /127\.0\.0\.1:9999/);
    assert.match(result.stdout, /sticky/);
    assert.match(result.stdout, /2 backends/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("main: an invalid config names file, line and key, exits 2, no stack trace", async () => {
  const path = await writeConfig(
    "listen: { port: 8080 }\nstrategy: round-robin\n" + backendsYaml(["http://127.0.0.1:9001"]),
  );
  try {
    for (const args of [["--check"], []]) {
      const result = await run(["--config", path, ...args]);
      assert.equal(result.code, 2);
      const name = path.split("/").pop()!;
      assert.match(
        result.stderr,
        new RegExp(`${name}:2 strategy: expected one of .*"round-robin"`),
      );
      assert.doesNotMatch(result.stderr, /^\s+at /m);
    }
    const missing = await run(["--config", `${path}.missing`, "--check"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("main: --help lists the flags; an unknown flag exits 2", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  for (const flag of ["--config", "--port", "--check", "--help"]) {
    assert.match(help.stdout, new RegExp(flag));
  }
  const bad = await run(["--bogus"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bogus/);
});

for (const workers of [1, 2]) {
  Deno.test(`main: SIGTERM stops accepting, lets the in-flight request finish, exits 0 (workers ${workers})`, async () => {
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    const { promise: arrived, resolve: onArrive } = Promise.withResolvers<void>();
    await using backend = startBackend(async (request) => {
      if (new URL(request.url).pathname !== "/slow") return new Response("probe ok");
      onArrive();
      await released;
      return new Response("finished");
    });
    const path = await writeConfig(
      "listen: { host: 127.0.0.1, port: 0 }\n" + backendsYaml([backend.url]) +
        `health_check: { interval: 1m }\ntimeouts: { drain: 10s }\nworkers: ${workers}\n`,
    );
    const spawned = spawnGathering(Deno.execPath(), [
      "run",
      ...PERMISSIONS,
      MAIN,
      "--config",
      path,
    ]);
    const { child } = spawned;
    try {
      await waitFor(
        () => /listening on http:\/\/127\.0\.0\.1:\d+/.test(spawned.stderr()),
        "the banner",
      );
      const port = Number(spawned.stderr().match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)![1]);
      const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
      await arrived;
      child.kill("SIGTERM");
      await waitFor(() => spawned.stderr().includes("SIGTERM: draining"), "the drain line");
      // Each isolate closes its listener when the stop reaches it.
      await waitFor(
        () =>
          Deno.connect({ hostname: "127.0.0.1", port }).then((conn) => {
            conn.close();
            return false;
          }, () => true),
        "every listener to close",
      );
      release();
      const response = await inFlight;
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "finished");
      const status = await child.status;
      assert.equal(status.code, 0, spawned.stderr());
    } finally {
      release();
      await spawned.finish();
      await Deno.remove(path);
    }
  });
}

Deno.test("main: the banner on stderr, access-log lines on stdout", async () => {
  await using backend = startBackend(() => new Response("hi"));
  const dead = startBackend(() => new Response("never"));
  await dead.close();
  const path = await writeConfig(
    "listen: { host: 127.0.0.1, port: 0 }\n" + backendsYaml([backend.url, dead.url]) +
      "health_check: { interval: 1m }\nadmin: { listen: { port: 0 } }\n",
  );
  const spawned = spawnGathering(
    Deno.execPath(),
    ["run", ...PERMISSIONS, MAIN, "--config", path],
    "piped",
  );
  try {
    await waitFor(() => spawned.stderr().split("\n").length > 3, "the banner");
    const [listening, first, second] = spawned.stderr().split("\n");
    assert.match(
      listening,
      new RegExp(
        String.raw`^listening on http://127\.0\.0\.1:(\d+), admin http://127\.0\.0\.1:(\d+), ` +
          `workers 1, strategy round_robin, backends ${backend.url} ${dead.url}$`,
      ),
    );
    assert.match(
      first,
      new RegExp(`^first health check: ${backend.url} \\(id [0-9a-f]{8}\\) passed$`),
    );
    assert.match(
      second,
      new RegExp(`^first health check: ${dead.url} \\(id [0-9a-f]{8}\\) failed: .*refused`),
    );
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(listening)![1]);
    const adminPort = Number(/admin http:\/\/127\.0\.0\.1:(\d+)/.exec(listening)![1]);
    assert.equal(
      (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()).strategy,
      "round_robin",
    );
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/hello`)).text(), "hi");
    await waitFor(() => spawned.stdout().includes("\n"), "the access-log line");
    assert.equal(spawned.stdout().split("\n").length, 2, "one line");
    const entry = JSON.parse(spawned.stdout());
    assert.equal(entry.target, "/hello");
    assert.equal(entry.backend, backend.url);
    assert.equal(spawned.stderr().includes('"target"'), false, "no access log on stderr");
    spawned.child.kill("SIGTERM");
    assert.equal((await spawned.child.status).code, 0);
  } finally {
    await spawned.finish();
    await Deno.remove(path);
  }
});

Deno.test("main: --port may not take the admin listener's port", async () => {
  const path = await writeConfig(
    backendsYaml(["http://127.0.0.1:9001"]) + "admin: { listen: { port: 9191 } }\n",
  );
  try {
    const result = await run(["--config", path, "--port", "9191", "--check"]);
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr.trim(),
      "--port: 9191 is the admin listener's port (admin.listen 127.0.0.1:9191)",
    );
  } finally {
    await Deno.remove(path);
  }
});
