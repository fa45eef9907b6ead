/**
 * Explainable routing through the proxy: `X-LB-Explain: 1` from an allowed
 * address gets an `X-LB-Decision` header naming the strategy, the backend,
 * every candidate's state, the sticky outcome and the retries.
 */

import assert from "node:assert/strict";
import {
  backendsYaml,
  baseUrl,
  defaultPool,
  startBackend,
  startNamedBackend,
  startTestBalancer,
} from "./helpers.ts";

const EXPLAIN = { "x-lb-explain": "1" };

async function decisionOf(url: string, headers: HeadersInit = EXPLAIN): Promise<string | null> {
  const response = await fetch(url, { headers });
  await response.body?.cancel();
  return response.headers.get("x-lb-decision");
}

Deno.test("explain: loopback clients get the decision with every candidate's state", async () => {
  await using first = startNamedBackend();
  await using second = startNamedBackend();
  await using third = startNamedBackend();
  await using lb = startTestBalancer(backendsYaml([first.url, second.url, third.url]));
  const [a, b, c] = defaultPool(lb).balancer.backends;
  b.draining = true;
  c.healthy = false;
  assert.equal(
    await decisionOf(baseUrl(lb)),
    `strategy=round_robin; backend=${a.id}; candidates=${a.id} up, ${b.id} draining, ${c.id} down`,
  );
  assert.equal(await decisionOf(baseUrl(lb), {}), null, "only on request");
  assert.equal(await decisionOf(baseUrl(lb), { "x-lb-explain": "yes" }), null, "only for 1");
});

Deno.test("explain: no backend in rotation is explained too", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]));
  const [a] = defaultPool(lb).balancer.backends;
  a.healthy = false;
  const response = await fetch(baseUrl(lb), { headers: EXPLAIN });
  await response.body?.cancel();
  assert.equal(response.status, 503);
  assert.equal(
    response.headers.get("x-lb-decision"),
    `strategy=round_robin; backend=none; candidates=${a.id} down`,
  );
});

Deno.test("explain: a retry names the backend that failed and why", async () => {
  const dead = startBackend(() => new Response("never"));
  await dead.close();
  await using alive = startNamedBackend();
  await using lb = startTestBalancer(backendsYaml([dead.url, alive.url]));
  const [a, b] = defaultPool(lb).balancer.backends;
  assert.equal(
    await decisionOf(baseUrl(lb)),
    `strategy=round_robin; backend=${b.id}; candidates=${a.id} up, ${b.id} up; ` +
      `retries=${a.id} connect_refused`,
  );
});

Deno.test("explain: sticky hit and miss", async () => {
  await using first = startNamedBackend();
  await using second = startNamedBackend();
  await using lb = startTestBalancer(`strategy: sticky\n${backendsYaml([first.url, second.url])}`);
  const [a, b] = defaultPool(lb).balancer.backends;
  const candidates = `candidates=${a.id} up, ${b.id} up`;
  assert.equal(
    await decisionOf(baseUrl(lb), { ...EXPLAIN, cookie: `lb_backend=${b.id}` }),
    `strategy=sticky; backend=${b.id}; sticky=hit (lb_backend names ${b.id}); ${candidates}`,
  );
  assert.equal(
    await decisionOf(baseUrl(lb), { ...EXPLAIN, cookie: "lb_backend=00000000" }),
    `strategy=sticky; backend=${a.id}; sticky=miss (lb_backend names no backend); ${candidates}`,
  );
  assert.equal(
    await decisionOf(baseUrl(lb)),
    `strategy=sticky; backend=${b.id}; sticky=miss (no lb_backend cookie); ${candidates}`,
  );
});

Deno.test("explain: off for clients outside explain_from", async () => {
  await using backend = startNamedBackend();
  await using lb = startTestBalancer(
    backendsYaml([backend.url]) +
      "admin: { listen: { port: 0 }, explain_from: [10.0.0.0/8, 'fd00::/8'] }\n",
  );
  assert.equal(await decisionOf(baseUrl(lb)), null);
});
