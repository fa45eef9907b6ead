/**
 * The strategies that weigh load and latency, through real balancers:
 * least_connections (in one isolate and across workers) and p2c_ewma.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseConfig } from "../src/config/config.ts";
import { LoadBalancer } from "../src/load_balancer.ts";
import {
  adminUrl,
  adminYaml,
  backendsYaml,
  baseUrl,
  defaultPool,
  getJson,
  rawRequest,
  startBackend,
  startNamedBackend,
  startTestBalancer,
  type TestBackend,
  waitFor,
} from "./helpers.ts";

/** A backend that holds every request until released; `arrivals` counts them. */
function startStuckBackend(): TestBackend & { arrivals: number; release(): void } {
  const held = Promise.withResolvers<void>();
  const state = { arrivals: 0 };
  const backend = startBackend(async (request) => {
    if (!request.headers.has("x-forwarded-for")) return new Response("probe");
    state.arrivals++;
    await held.promise;
    return new Response("stuck");
  });
  return {
    ...backend,
    get arrivals() {
      return state.arrivals;
    },
    release: held.resolve,
  };
}

Deno.test("least_connections: a backend holding a request gets no more while the others are idle", async () => {
  await using stuck = startStuckBackend();
  await using b = startNamedBackend();
  await using c = startNamedBackend();
  await using lb = startTestBalancer(
    `strategy: least_connections\n${backendsYaml([stuck.url, b.url, c.url])}`,
  );
  const pending: Promise<Response>[] = [];
  // The first request to reach the stuck backend stays there.
  while (stuck.arrivals === 0) {
    const response = fetch(baseUrl(lb));
    pending.push(response);
    await Promise.race([response, waitFor(() => stuck.arrivals > 0, "arrival", 1000)]);
  }
  const answers: string[] = [];
  for (let i = 0; i < 30; i++) answers.push(await (await fetch(baseUrl(lb))).text());
  assert.equal(stuck.arrivals, 1);
  assert.ok(answers.includes(String(b.port)) && answers.includes(String(c.port)), "both others");
  stuck.release();
  for (const response of pending) await (await response).text();
});

Deno.test("least_connections: in-flight per weight decides, ties in rotation", () => {
  const balancer = new LoadBalancer(parseConfig(
    "strategy: least_connections\nbackends:\n" +
      "  - { url: http://127.0.0.1:9001, weight: 3 }\n  - { url: http://127.0.0.1:9002 }\n",
    "test.yaml",
  ));
  const request = new Request("http://lb/");
  const [heavy, light] = balancer.backends;
  const idle = [0, 1, 2, 3].map(() => balancer.selectBackend(request)!.backend);
  assert.deepEqual(idle, [heavy, light, heavy, light], "an idle pool in rotation");
  const held: Disposable[] = [];
  for (let i = 0; i < 40; i++) held.push(balancer.selectBackend(request)!.backend.occupy());
  assert.equal(heavy.inFlight, 30, "three in four to the backend of weight 3");
  assert.equal(light.inFlight, 10);
  for (const handle of held) handle[Symbol.dispose]();
  assert.equal(heavy.inFlight + light.inFlight, 0);
});

Deno.test("least_connections: with 2 workers the in-flight counts are shared", async () => {
  await using stuck = startStuckBackend();
  await using other = startNamedBackend();
  await using lb = startTestBalancer(
    "workers: 2\nlogging: { access: off }\nstrategy: least_connections\n" +
      backendsYaml([stuck.url, other.url]) + adminYaml(),
  );
  await lb.ready;
  const ask = () =>
    rawRequest(lb.addr.port, "GET / HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n");
  const pending: Promise<unknown>[] = [];
  while (stuck.arrivals === 0) {
    const answer = ask();
    pending.push(answer);
    await Promise.race([answer, waitFor(() => stuck.arrivals > 0, "arrival", 1000)]);
  }
  // New connections go to either isolate: both see the stuck backend's request in flight.
  for (let i = 0; i < 40; i++) {
    const response = await ask();
    assert.equal(new TextDecoder().decode(response.body), String(other.port));
  }
  assert.equal(stuck.arrivals, 1);
  stuck.release();
  await Promise.all(pending);
});

/** Sends `total` requests, `concurrency` at a time; counts the answers by body. */
async function spread(url: string, total: number, concurrency = 4): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let sent = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < total) {
      sent++;
      const text = await (await fetch(url)).text();
      counts.set(text, (counts.get(text) ?? 0) + 1);
    }
  }));
  return counts;
}

Deno.test("p2c_ewma: a backend 50 ms slower than two others gets under 10% of 600 requests", async () => {
  await using slow = startBackend(async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return new Response("slow");
  });
  await using a = startBackend(() => new Response("a"));
  await using b = startBackend(() => new Response("b"));
  await using lb = startTestBalancer(
    `strategy: p2c_ewma\nlogging: { access: off }\n${backendsYaml([slow.url, a.url, b.url])}`,
  );
  const counts = await spread(baseUrl(lb), 600);
  assert.ok((counts.get("slow") ?? 0) < 60, `slow got ${counts.get("slow")} of 600`);
});

Deno.test("p2c_ewma: a backend that answers 500 at once gets under 10%", async () => {
  await using failing = startBackend(() => new Response("failing", { status: 500 }));
  await using a = startBackend(() => new Response("a"));
  await using b = startBackend(() => new Response("b"));
  await using lb = startTestBalancer(
    "strategy: p2c_ewma\nlogging: { access: off }\n" +
      "health_check: { interval: 1h, passive: { consecutive_failures: 1000 } }\n" +
      backendsYaml([failing.url, a.url, b.url]),
  );
  const counts = await spread(baseUrl(lb), 600);
  assert.ok((counts.get("failing") ?? 0) < 60, `failing got ${counts.get("failing")} of 600`);
});

Deno.test("p2c_ewma: a new backend gets traffic within a second", async () => {
  await using a = startBackend(() => new Response("a"));
  await using b = startBackend(() => new Response("b"));
  await using fresh = startBackend(() => new Response("fresh"));
  const yaml = (urls: string[]) =>
    `listen: { host: 127.0.0.1, port: 0 }\nstrategy: p2c_ewma\nlogging: { access: off }\n${
      backendsYaml(urls)
    }`;
  await using lb = startTestBalancer(yaml([a.url, b.url]).replace(/^listen.*\n/, ""));
  await spread(baseUrl(lb), 100);
  lb.reloader.apply(parseConfig(yaml([a.url, b.url, fresh.url]), "test.yaml"));
  assert.equal(defaultPool(lb).backends.length, 3);
  const started = performance.now();
  let seen = false;
  while (!seen && performance.now() - started < 1000) {
    seen = (await (await fetch(baseUrl(lb))).text()) === "fresh";
  }
  assert.ok(seen, "the new backend answered within a second");
});

Deno.test("explanations say the key consistent_hash hashed and where it landed", async () => {
  await using a = startNamedBackend();
  await using b = startNamedBackend();
  await using lb = startTestBalancer(
    `strategy: consistent_hash\nhash: { key: "header:x-user" }\n${backendsYaml([a.url, b.url])}` +
      adminYaml(),
  );
  const response = await fetch(baseUrl(lb), { headers: { "x-lb-explain": "1", "x-user": "7" } });
  await response.body?.cancel();
  const served = defaultPool(lb).backends.find((backend) =>
    response.headers.get("x-lb-decision")!.includes(`backend=${backend.id}`)
  )!;
  assert.match(
    response.headers.get("x-lb-decision")!,
    new RegExp(
      `^strategy=consistent_hash; backend=${served.id}; detail=key header:x-user=7, slot \\d+, backend ${served.id}; `,
    ),
  );
  const answer = await getJson<{ detail: string; backend: string }>(`${adminUrl(lb)}/explain`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path: "/", headers: { "x-user": "7" }, client: "192.0.2.1" }),
  });
  assert.equal(answer.backend, served.id, "the same key, the same backend");
  assert.match(answer.detail, /^key header:x-user=7, slot \d+/);
});
