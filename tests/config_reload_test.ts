/**
 * Hot reload: file changes (an editor's write-then-rename included) and
 * SIGHUP put a new config in force in one swap; an invalid one changes
 * nothing; a changed listen address asks for a restart; under steady load
 * not one request fails while the config changes 20 times.
 */

import assert from "node:assert/strict";
import { loadConfig } from "../src/config/config.ts";
import { type Balancer, startBalancer } from "../src/server.ts";
import type { Status } from "../src/observability/telemetry.ts";
import {
  adminUrl,
  baseUrl,
  defaultPool,
  getJson,
  parsePrometheus,
  sampleValue,
  startHoldingBackend,
  startNamedBackend,
  type TestBackend,
  waitFor,
  writeConfig,
} from "./helpers.ts";

const HEAD = "listen: { host: 127.0.0.1, port: 0 }\nadmin: { listen: { port: 0 } }\n" +
  "health_check: { interval: 1h }\n";

function backendsYaml(entries: [TestBackend, number][]): string {
  return `backends:\n${
    entries.map(([backend, weight]) => `  - { url: ${backend.url}, weight: ${weight} }\n`).join("")
  }`;
}

/**
 * Runs `body` with a balancer serving a config file holding `text`, in a
 * temporary directory, that reloads it on changes; stderr lines go to `lines`.
 */
async function withWatched(
  text: string,
  body: (lb: Balancer, path: string, lines: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lb.yaml`;
  const lines: string[] = [];
  try {
    await writeConfig(path, text);
    await using lb = startBalancer(await loadConfig(path), (line) => lines.push(line), () => {});
    lb.reloader.watch(path);
    await body(lb, path, lines);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function reloads(lb: { adminAddr: Deno.NetAddr | null }, result: string): Promise<number> {
  const text = await (await fetch(`${adminUrl(lb as never)}/metrics`)).text();
  return sampleValue(parsePrometheus(text), "lb_config_reloads_total", { result });
}

async function answers(url: string, count: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(url);
    assert.equal(response.status, 200);
    seen.push(await response.text());
  }
  return seen;
}

Deno.test("reload: a renamed-over config is in force within 2 s; /status shows it", async () => {
  await using a = startNamedBackend();
  await using b = startNamedBackend();
  await withWatched(HEAD + backendsYaml([[a, 1]]), async (lb, path, lines) => {
    assert.deepEqual(new Set(await answers(baseUrl(lb), 4)), new Set([String(a.port)]));
    const kept = defaultPool(lb).balancer.backends[0];
    const started = performance.now();
    await writeConfig(path, HEAD + "strategy: random\n" + backendsYaml([[a, 1], [b, 3]]));
    await waitFor(async () => await reloads(lb, "success") === 1, "the reload", 2000);
    assert.ok(performance.now() - started < 2000);
    assert.equal(defaultPool(lb).balancer.backends[0], kept, "a kept backend keeps its object");
    const status = await getJson<Status>(`${adminUrl(lb)}/status`);
    assert.equal(status.strategy, "random");
    assert.deepEqual(status.config.backends.map((backend) => backend.weight), [1, 3]);
    assert.deepEqual(status.backends.map((backend) => backend.url), [a.url, b.url]);
    const seen = new Set(await answers(baseUrl(lb), 30));
    assert.deepEqual(seen, new Set([String(a.port), String(b.port)]));
    assert.ok(lines.some((line) => line.startsWith("config reloaded: strategy random")));
  });
});

Deno.test("reload: an invalid config is logged as at startup and changes nothing; SIGHUP reloads", async () => {
  await using a = startNamedBackend();
  await using b = startNamedBackend();
  await withWatched(HEAD + backendsYaml([[a, 1]]), async (lb, path, lines) => {
    const dir = path.slice(0, path.lastIndexOf("/"));
    const invalid = HEAD + "strategy: round-robin\n" + backendsYaml([[b, 1]]);
    await Deno.writeTextFile(`${dir}/other.yaml`, "unrelated: file\n"); // another file: no reload
    await writeConfig(path, invalid);
    await waitFor(async () => await reloads(lb, "failure") === 1, "the failed reload", 2000);
    const expected = `${path}:4 strategy: expected one of round_robin | ` +
      'weighted_round_robin | random | sticky | least_connections | p2c_ewma | consistent_hash, got "round-robin"';
    assert.ok(lines.includes(expected), lines.join("\n"));
    assert.deepEqual(new Set(await answers(baseUrl(lb), 4)), new Set([String(a.port)]));
    // Written in place, no event is missed either; then SIGHUP reloads the same file again.
    await Deno.writeTextFile(path, HEAD + backendsYaml([[b, 1]]));
    await waitFor(async () => await reloads(lb, "success") === 1, "the reload", 2000);
    assert.deepEqual(new Set(await answers(baseUrl(lb), 4)), new Set([String(b.port)]));
    Deno.kill(Deno.pid, "SIGHUP");
    await waitFor(async () => await reloads(lb, "success") === 2, "the SIGHUP reload", 2000);
    assert.equal(await reloads(lb, "failure"), 1);
  });
});

Deno.test("reload: a changed listen address says restart required, the rest is applied", async () => {
  await using a = startNamedBackend();
  await withWatched(HEAD + backendsYaml([[a, 1]]), async (lb, path, lines) => {
    await writeConfig(
      path,
      HEAD.replace("port: 0 }\nadmin", "port: 18080 }\nadmin") + backendsYaml([[a, 7]]),
    );
    await waitFor(async () => await reloads(lb, "success") === 1, "the reload", 2000);
    assert.ok(
      lines.includes("listen changed from 127.0.0.1:0 to 127.0.0.1:18080: restart required"),
      lines.join("\n"),
    );
    const status = await getJson<Status>(`${adminUrl(lb)}/status`);
    assert.deepEqual(status.config.listen, { host: "127.0.0.1", port: 0 }, "the address in use");
    assert.equal(status.backends[0].weight, 7);
  });
});

Deno.test("reload: a removed backend finishes its in-flight request, then is forgotten", async () => {
  await using slow = startHoldingBackend("/slow", "slow");
  await using other = startNamedBackend();
  await withWatched(HEAD + backendsYaml([[slow, 1]]), async (lb, path) => {
    await (await fetch(`${baseUrl(lb)}/`)).body?.cancel(); // leaves a pooled connection
    const [gone] = defaultPool(lb).balancer.backends;
    assert.equal(defaultPool(lb).transports.http1.connectionStats(gone).idle, 1);
    const pending = fetch(`${baseUrl(lb)}/slow`);
    await slow.arrived;
    await writeConfig(path, HEAD + backendsYaml([[other, 1]]));
    await waitFor(async () => await reloads(lb, "success") === 1, "the reload", 2000);
    assert.deepEqual(new Set(await answers(baseUrl(lb), 3)), new Set([String(other.port)]));
    slow.release();
    const response = await pending;
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "slow");
    await lb.reloader.drained();
    assert.equal(defaultPool(lb).transports.http1.connectionStats(gone).idle, 0, "its pool closed");
    const metrics = await (await fetch(`${adminUrl(lb)}/metrics`)).text();
    assert.ok(!metrics.includes(slow.url), "the removed backend's series are gone");
  });
});

Deno.test("reload: 20 rewrites under steady concurrent load, not one failed request", async () => {
  const dir = await Deno.makeTempDir();
  const backends = [0, 1, 2, 3].map(() => startNamedBackend());
  // Each config: which backends, with which weight; adding, removing and reweighting.
  const configs: [number, number][][] = [];
  for (let i = 0; i < 20; i++) {
    const first = i % 4;
    const second = (i + 1 + (i % 3)) % 4;
    configs.push(first === second ? [[first, 1]] : [[first, 1 + (i % 3)], [second, 1]]);
  }
  const path = `${dir}/lb.yaml`;
  const yaml = (entries: [number, number][]) =>
    HEAD + "strategy: weighted_round_robin\n" +
    backendsYaml(entries.map(([index, weight]) => [backends[index], weight]));
  /** Which backend served each request, by arrival time. */
  const served: { time: number; backend: string; status: number }[] = [];
  await writeConfig(path, yaml([[0, 1], [1, 1], [2, 1], [3, 1]]));
  await using lb = startBalancer(await loadConfig(path), () => {}, (line) => {
    const entry = JSON.parse(line);
    served.push({ time: Date.parse(entry.time), backend: entry.backend, status: entry.status });
  });
  lb.reloader.watch(path);
  let stop = false;
  const failures: string[] = [];
  const client = async () => {
    for (let i = 0; i < 100_000 && !stop; i++) {
      const response = await fetch(baseUrl(lb));
      const text = await response.text();
      if (response.status !== 200) failures.push(`${response.status} ${text}`);
    }
  };
  const clients = Array.from({ length: 8 }, client);
  try {
    for (const [round, entries] of configs.entries()) {
      await writeConfig(path, yaml(entries));
      await waitFor(
        async () => await reloads(lb, "success") === round + 1,
        `reload ${round}`,
        2000,
      );
      const start = Date.now() + 1;
      const inWindow = () => served.filter((entry) => entry.time >= start);
      await waitFor(() => inWindow().length >= 40, `traffic in round ${round}`);
      const end = Date.now();
      const window = inWindow().filter((entry) => entry.time < end);
      const counts = entries.map(([index]) =>
        window.filter((entry) => entry.backend === backends[index].url).length
      );
      const shown = `config ${round} ${JSON.stringify(entries)} gave ${counts}`;
      assert.equal(counts.reduce((sum, count) => sum + count, 0), window.length, shown);
      assert.ok(counts.every((count) => count > 0), shown);
      if (entries.length === 2 && entries[0][1] > 1) assert.ok(counts[0] > counts[1], shown);
    }
  } finally {
    stop = true;
    await Promise.all(clients);
    for (const backend of backends) await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(failures, []);
  assert.ok(served.every((entry) => entry.status === 200));
});

Deno.test("reload: a ConfigMap-style volume update (the ..data link swapped) is noticed", async () => {
  await using a = startNamedBackend();
  await using b = startNamedBackend();
  const dir = await Deno.makeTempDir();
  // The layout the kubelet writes: a timestamped folder, ..data linking to it, the file linking through.
  const version = async (name: string, text: string) => {
    await Deno.mkdir(`${dir}/${name}`);
    await Deno.writeTextFile(`${dir}/${name}/lb.yaml`, text);
  };
  try {
    await version("..v1", HEAD + backendsYaml([[a, 1]]));
    await Deno.symlink("..v1", `${dir}/..data`);
    await Deno.symlink("..data/lb.yaml", `${dir}/lb.yaml`);
    await using lb = startBalancer(await loadConfig(`${dir}/lb.yaml`), () => {}, () => {});
    lb.reloader.watch(`${dir}/lb.yaml`);
    await version("..v2", HEAD + backendsYaml([[b, 1]]));
    await Deno.symlink("..v2", `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    await waitFor(async () => await reloads(lb, "success") === 1, "the reload", 2000);
    assert.deepEqual(new Set(await answers(baseUrl(lb), 4)), new Set([String(b.port)]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
