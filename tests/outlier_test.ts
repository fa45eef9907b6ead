/** Outlier ejection and slow start seen from outside: traffic, /status and the log. */

import assert from "node:assert/strict";
import type { Status } from "../src/observability/telemetry.ts";
import {
  adminUrl,
  adminYaml,
  backendsYaml,
  baseUrl,
  defaultPool,
  getJson,
  startBackend,
  startNamedBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const HEALTH = "health_check:\n  interval: 1h\n  unhealthy_threshold: 100\n" +
  "  passive: { consecutive_failures: 3, ejection_time: 300ms }\n";

async function get(url: string): Promise<[number, string]> {
  const response = await fetch(url);
  return [response.status, await response.text()];
}

Deno.test("outlier: 5xx in a row eject a backend for a while, /status says ejected, then it is back and logged", async () => {
  let broken = true;
  await using flaky = startBackend(() =>
    broken ? new Response("oops", { status: 500 }) : new Response("flaky")
  );
  await using good = startBackend(() => new Response("good"));
  const lines: string[] = [];
  await using lb = startTestBalancer(
    backendsYaml([flaky.url, good.url]) + HEALTH + adminYaml(),
    (line) => lines.push(line),
  );
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) answers.push((await get(baseUrl(lb)))[1]);
  // round robin: flaky answers 3 times with 500, then it is out
  assert.deepEqual(answers, ["oops", "good", "oops", "good", "oops", "good"]);
  const status = await getJson<Status>(`${adminUrl(lb)}/status`);
  assert.deepEqual(status.backends.map((backend) => backend.state), ["ejected", "up"]);
  assert.ok(lines.some((line) => line.startsWith(`backend ${flaky.url} ejected for 300 ms:`)));
  for (let i = 0; i < 4; i++) assert.deepEqual(await get(baseUrl(lb)), [200, "good"]);
  broken = false;
  await waitFor(async () => {
    const now = await getJson<Status>(`${adminUrl(lb)}/status`);
    return now.backends[0].state === "up";
  }, "the ejection to end");
  await waitFor(
    () => lines.includes(`backend ${flaky.url} back from ejection`),
    "the line that says so",
  );
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add((await get(baseUrl(lb)))[1]);
  assert.deepEqual([...seen].sort(), ["flaky", "good"]);
});

Deno.test("outlier: when every backend fails, at most half are ejected and answers keep coming", async () => {
  const backends = [0, 1, 2, 3].map(() => startBackend(() => new Response("no", { status: 503 })));
  try {
    await using lb = startTestBalancer(
      backendsYaml(backends.map((backend) => backend.url)) + HEALTH + adminYaml(),
    );
    for (let i = 0; i < 40; i++) assert.equal((await get(baseUrl(lb)))[0], 503);
    const status = await getJson<Status>(`${adminUrl(lb)}/status`);
    const ejected = status.backends.filter((backend) => backend.state === "ejected").length;
    assert.equal(ejected, 2);
  } finally {
    for (const backend of backends) await backend.close();
  }
});

Deno.test("slow start: a backend back from ejection takes a growing share, shown as effective_weight", async () => {
  let broken = true;
  await using flaky = startBackend(() =>
    broken ? new Response("oops", { status: 500 }) : new Response("flaky")
  );
  await using good = startNamedBackend();
  await using lb = startTestBalancer(
    backendsYaml([flaky.url, good.url]) + HEALTH + "slow_start: 1h\n" + adminYaml(),
  );
  for (let i = 0; i < 6; i++) await get(baseUrl(lb));
  broken = false;
  await waitFor(async () => {
    const status = await getJson<Status>(`${adminUrl(lb)}/status`);
    return status.backends[0].state === "up";
  }, "the ejection to end");
  const status = await getJson<Status>(`${adminUrl(lb)}/status`);
  assert.ok(status.backends[0].effective_weight < 0.11, `${status.backends[0].effective_weight}`);
  assert.equal(status.backends[1].effective_weight, 1);
  let flakyShare = 0;
  for (let i = 0; i < 110; i++) if ((await get(baseUrl(lb)))[1] === "flaky") flakyShare++;
  assert.ok(flakyShare >= 8 && flakyShare <= 12, `10% of the weight: ${flakyShare} of 110`);
});

Deno.test("slow start: a backend enabled again through the admin API ramps up too", async () => {
  await using first = startNamedBackend();
  await using second = startNamedBackend();
  const token = "a-long-enough-admin-token";
  await using lb = startTestBalancer(
    backendsYaml([first.url, second.url]) + "slow_start: 1h\n" + adminYaml(`  token: ${token}\n`),
  );
  const status = async () => await getJson<Status>(`${adminUrl(lb)}/status`);
  assert.deepEqual((await status()).backends.map((b) => b.effective_weight), [1, 1]);
  const id = defaultPool(lb).balancer.backends[0].id;
  for (const action of ["drain", "enable"]) {
    const response = await fetch(`${adminUrl(lb)}/backends/${id}/${action}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    await response.body?.cancel();
    assert.equal(response.status, 200);
  }
  const [enabled, other] = (await status()).backends;
  assert.ok(enabled.effective_weight < 0.11, `${enabled.effective_weight}`);
  assert.equal(other.effective_weight, 1);
});
