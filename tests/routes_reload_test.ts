/**
 * Hot reload of routes and pools: swapped as one under concurrent load with
 * no failed request; a backend kept in the same pool keeps its state.
 *
 * @module
 */

import assert from "node:assert/strict";
import { loadConfig } from "../src/config/config.ts";
import { rampFactor } from "../src/load_balancer.ts";
import { startBalancer } from "../src/server.ts";
import {
  adminUrl,
  baseUrl,
  parsePrometheus,
  sampleValue,
  startNamedBackend,
  waitFor,
  writeConfig,
} from "./helpers.ts";

const HEAD = "listen: { host: 127.0.0.1, port: 0 }\nadmin: { listen: { port: 0 } }\n" +
  "health_check: { interval: 1h }\nlogging: { access: off }\n";

Deno.test("reload: routes and pools swap as one under load, not one failed request", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lb.yaml`;
  const [a, b, c] = [0, 1, 2].map(() => startNamedBackend());
  // Each round: which pool /x goes to, and which pools exist; pool "c" comes and goes.
  const rounds = [
    { x: "a", pools: { a, b } },
    { x: "b", pools: { a, b, c } },
    { x: "c", pools: { a, b, c } },
    { x: "a", pools: { a, c } },
    { x: "b", pools: { a, b } },
    { x: "c", pools: { b, c } },
  ];
  const yaml = ({ x, pools }: (typeof rounds)[number]) =>
    HEAD + "pools:\n" +
    Object.entries(pools).map(([name, backend]) =>
      `  ${name}: { backends: [{ url: ${backend.url} }] }\n`
    )
      .join("") +
    `routes:\n  - { name: x, match: { path_prefix: /x }, pool: ${x} }\n` +
    `  - { name: ok, match: { path: /ok }, respond: { body: ok } }\n` +
    `  - pool: ${Object.keys(pools)[0]}\n`;
  await writeConfig(path, yaml(rounds[0]));
  await using lb = startBalancer(await loadConfig(path), () => {}, () => {});
  lb.reloader.watch(path);
  const reloads = async () =>
    sampleValue(
      parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text()),
      "lb_config_reloads_total",
      { result: "success" },
    );
  let stop = false;
  const failures: string[] = [];
  let answered = 0;
  const client = async (path: string) => {
    for (let i = 0; i < 100_000 && !stop; i++) {
      const response = await fetch(`${baseUrl(lb)}${path}`);
      const text = await response.text();
      if (response.status !== 200) failures.push(`${path}: ${response.status} ${text}`);
      answered++;
    }
  };
  const clients = ["/x", "/x/y", "/ok", "/", "/x", "/"].map(client);
  try {
    for (const [round, config] of rounds.entries()) {
      if (round > 0) {
        await writeConfig(path, yaml(config));
        await waitFor(async () => await reloads() === round, `reload ${round}`, 2000);
      }
      const expected = String(config.pools[config.x as keyof typeof config.pools]!.port);
      assert.equal(await (await fetch(`${baseUrl(lb)}/x`)).text(), expected, `round ${round}`);
      const before = answered;
      await waitFor(() => answered >= before + 30, `traffic in round ${round}`);
    }
  } finally {
    stop = true;
    await Promise.all(clients);
    for (const backend of [a, b, c]) await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(failures, []);
});

Deno.test("reload: a backend kept in the same pool keeps its state; a pool added anew starts fresh", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lb.yaml`;
  await using a = startNamedBackend();
  const pools = (names: string[]) =>
    HEAD + "slow_start: 1m\npools:\n" + names.map((name) =>
      `  ${name}: { backends: [{ url: ${a.url} }] }\n`
    ).join("") +
    "routes:\n" +
    names.map((name) => `  - { match: { path_prefix: /${name} }, pool: ${name} }\n`).join("");
  try {
    await writeConfig(path, pools(["one", "two"]));
    await using lb = startBalancer(await loadConfig(path), () => {}, () => {});
    lb.proxy.pools.get("one")!.backends[0].draining = true;
    lb.proxy.pools.get("two")!.backends[0].draining = true;
    lb.reloader.apply(await loadConfig(path));
    assert.equal(lb.proxy.pools.get("one")!.backends[0].draining, true, "kept in one");
    await Deno.writeTextFile(path, pools(["one"]));
    lb.reloader.apply(await loadConfig(path));
    assert.equal(lb.proxy.pools.get("two"), undefined);
    await Deno.writeTextFile(path, pools(["one", "two"]));
    lb.reloader.apply(await loadConfig(path));
    assert.equal(lb.proxy.pools.get("one")!.backends[0].draining, true);
    assert.equal(
      lb.proxy.pools.get("two")!.backends[0].draining,
      false,
      "a new pool, a new backend",
    );
    const now = performance.now();
    assert.ok(rampFactor(lb.proxy.pools.get("two")!.backends[0], now) < 1, "in slow start");
    assert.equal(rampFactor(lb.proxy.pools.get("one")!.backends[0], now), 1, "at full weight");
    const answer = await fetch(`${baseUrl(lb)}/two`);
    assert.equal(await answer.text(), String(a.port));
    await lb.reloader.drained();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
