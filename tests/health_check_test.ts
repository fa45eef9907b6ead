/** Health checking: thresholds, passive reports, and backends leaving and rejoining rotation. */

import assert from "node:assert/strict";
import { HealthChecker } from "../src/health_check.ts";
import { backendState, newBackend } from "../src/load_balancer.ts";
import type { Backend } from "../src/types.ts";
import {
  backendsYaml,
  baseUrl,
  defaultPool,
  startBackend,
  startNamedBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const options = {
  path: "/health",
  interval: 60_000,
  timeout: 500,
  healthy_threshold: 2,
  unhealthy_threshold: 3,
  passive: {
    consecutive_failures: 3,
    ejection_time: 1000,
    max_ejection_time: 4000,
    max_ejection_percent: 50,
  },
};

function backendAt(url: string): Backend {
  return newBackend({ url, weight: 1, transport: "http1" }, 0);
}

Deno.test("health: failures in a row take a backend down, successes in a row bring it back", async () => {
  let status = 200;
  let probedPath = "";
  await using server = startBackend((request) => {
    probedPath = new URL(request.url).pathname;
    return new Response(null, { status });
  });
  const backend = backendAt(server.url);
  const lines: string[] = [];
  const health = new HealthChecker([backend], options, (line) => lines.push(line));
  try {
    status = 500;
    await health.probeAll();
    health.reportSuccess(backend); // real traffic succeeding leaves the probes' streak as it is
    await health.probeAll();
    assert.equal(backend.healthy, true, "two failures are below the threshold");
    health.reportSuccess(backend);
    await health.probeAll();
    assert.equal(backend.healthy, false, "the third failed probe in a row takes it down");
    assert.equal(probedPath, "/health");
    assert.deepEqual(lines, [`backend ${server.url} down: health check got status 500`]);
    status = 302; // 3xx counts as healthy
    await health.probeAll();
    assert.equal(backend.healthy, false, "one success is below the threshold");
    await health.probeAll();
    assert.equal(backend.healthy, true);
    assert.equal(lines[1], `backend ${server.url} up: health check passed`);
  } finally {
    await health.stop();
  }
});

Deno.test("health: a probe slower than the timeout fails", async () => {
  const { promise: never, resolve: release } = Promise.withResolvers<void>();
  await using server = startBackend(async () => {
    await never;
    return new Response("late");
  });
  const backend = backendAt(server.url);
  const lines: string[] = [];
  const health = new HealthChecker(
    [backend],
    { ...options, timeout: 50, unhealthy_threshold: 1 },
    (line) => lines.push(line),
  );
  try {
    await health.probeAll();
    assert.equal(backend.healthy, false);
    assert.deepEqual(lines, [`backend ${server.url} down: health check timed out after 50 ms`]);
  } finally {
    release();
    await health.stop();
  }
});

Deno.test("health: a refused connection in traffic takes a backend down at once; timeouts count", () => {
  const backend = backendAt("http://127.0.0.1:9");
  const other = backendAt("http://127.0.0.1:10");
  const lines: string[] = [];
  const health = new HealthChecker([backend, other], options, (line) => lines.push(line));
  health.reportRefused(backend, "connection refused");
  assert.equal(backend.healthy, false);
  health.reportFailure(other, "timed out");
  health.reportFailure(other, "timed out");
  assert.equal(other.healthy, true);
  health.reportFailure(other, "timed out");
  assert.equal(other.healthy, false);
  assert.deepEqual(lines, [
    "backend http://127.0.0.1:9 down: connection refused",
    "backend http://127.0.0.1:10 down: timed out",
  ]);
});

Deno.test("health: a stopped backend leaves rotation without failed requests and comes back", async () => {
  await using first = startNamedBackend();
  const second = startNamedBackend();
  const port = second.port;
  const lines: string[] = [];
  await using lb = startTestBalancer(
    `${backendsYaml([first.url, second.url])}` +
      "health_check: { interval: 50ms, timeout: 200ms, healthy_threshold: 2, unhealthy_threshold: 2 }\n",
    (line) => lines.push(line),
  );
  const get = async () => {
    const response = await fetch(baseUrl(lb));
    assert.equal(response.status, 200);
    return await response.text();
  };
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await get());
  assert.deepEqual([...seen].sort(), [String(first.port), String(port)].sort());

  await second.close();
  for (let i = 0; i < 20; i++) await get(); // every GET succeeds while the backend is gone
  await waitFor(() => lines.some((l) => l.startsWith(`backend ${second.url} down:`)), "down line");
  seen.clear();
  for (let i = 0; i < 6; i++) seen.add(await get());
  assert.deepEqual([...seen], [String(first.port)]);

  await using restarted = startNamedBackend(port);
  await waitFor(
    () => lines.includes(`backend ${restarted.url} up: health check passed`),
    "up line",
  );
  seen.clear();
  for (let i = 0; i < 4; i++) seen.add(await get());
  assert.ok(seen.has(String(port)), "the restarted backend is back in rotation");
});

Deno.test("health: alternating probe results never flip a backend either way", async () => {
  let status = 500;
  await using server = startBackend(() => new Response(null, { status }));
  const backend = backendAt(server.url);
  const lines: string[] = [];
  const health = new HealthChecker([backend], options, (line) => lines.push(line));
  try {
    for (let round = 0; round < 8; round++) {
      await health.probeAll();
      status = status === 500 ? 200 : 500;
    }
    assert.equal(backend.healthy, true, "never 3 failures in a row");
    for (let round = 0; round < 3; round++) await health.probeAll(); // 500, 200, 500
    status = 500;
    await health.probeAll();
    await health.probeAll();
    assert.equal(backend.healthy, false, "3 failures in a row");
    for (let round = 0; round < 8; round++) {
      status = status === 500 ? 200 : 500;
      await health.probeAll();
    }
    assert.equal(backend.healthy, false, "never 2 successes in a row");
    assert.equal(lines.length, 1, lines.join("\n"));
  } finally {
    await health.stop();
  }
});

Deno.test("health: failures in a row from traffic eject, each repeat twice as long up to the maximum", async () => {
  const backends = [0, 1, 2, 3].map((i) => backendAt(`http://127.0.0.1:${9001 + i}`));
  const lines: string[] = [];
  const health = new HealthChecker(backends, options, (line) => lines.push(line));
  const [backend] = backends;
  try {
    const fail = (count: number) => {
      for (let i = 0; i < count; i++) health.reportOutcome(backend, true, "status 500");
    };
    fail(2);
    health.reportOutcome(backend, false, "status 200");
    fail(2);
    assert.equal(backend.ejectedUntil, 0, "a success in between breaks the streak");
    const ejections: number[] = [];
    for (let round = 0; round < 4; round++) {
      fail(3);
      const left = backend.ejectedUntil - performance.now();
      ejections.push(Math.round(left / 1000) * 1000);
      assert.equal(backendState(backend), "ejected");
      fail(10); // failures while ejected (requests still in flight) count for nothing
      backend.ejectedUntil = performance.now() - 1; // the ejection time is over
      assert.equal(backendState(backend), "up");
    }
    assert.deepEqual(ejections, [1000, 2000, 4000, 4000]);
    assert.equal(
      lines[0],
      "backend http://127.0.0.1:9001 ejected for 1000 ms: 3 failures in a row, the last: status 500",
    );
    assert.equal(backend.healthy, true, "ejection leaves the health checks' verdict alone");
  } finally {
    await health.stop();
  }
});

Deno.test("health: ejection stops at max_ejection_percent, but one of two may always go", async () => {
  const check = async (count: number, percent: number, expected: number) => {
    const backends = Array.from(
      { length: count },
      (_, i) => backendAt(`http://127.0.0.1:${9001 + i}`),
    );
    const passive = { ...options.passive, max_ejection_percent: percent };
    const health = new HealthChecker(backends, { ...options, passive }, () => {});
    for (const backend of backends) {
      for (let i = 0; i < 3; i++) health.reportOutcome(backend, true, "status 500");
    }
    const ejected = backends.filter((backend) => backendState(backend) === "ejected").length;
    await health.stop();
    assert.equal(ejected, expected, `${count} backends at ${percent}%`);
  };
  await check(1, 50, 0);
  await check(1, 100, 1);
  await check(2, 10, 1);
  await check(4, 50, 2);
  await check(5, 50, 2);
  await check(10, 0, 1);
});

Deno.test("health: a backend whose probes fail leaves rotation under steady successful traffic", async () => {
  let ready = true;
  await using sick = startBackend((request) =>
    new URL(request.url).pathname === "/ready" && !ready
      ? new Response("not ready", { status: 503 })
      : new Response("sick")
  );
  await using well = startBackend(() => new Response("well"));
  await using lb = startTestBalancer(
    "health_check: { path: /ready, interval: 300ms, unhealthy_threshold: 2 }\nlogging: { access: off }\n" +
      backendsYaml([sick.url, well.url]),
  );
  await lb.ready;
  let stop = false;
  const answers: string[] = [];
  const traffic = (async () => {
    while (!stop) answers.push(await (await fetch(baseUrl(lb))).text());
  })();
  try {
    await waitFor(() => answers.includes("sick"), "traffic to the backend about to fail");
    ready = false;
    const since = performance.now();
    const [target] = defaultPool(lb).backends;
    await waitFor(() => !target.healthy, "the failing probes take it down", 1500);
    assert.ok(performance.now() - since <= 1500);
    const after = answers.length;
    await waitFor(() => answers.length >= after + 20, "more traffic");
    assert.ok(!answers.slice(after).includes("sick"), "out of rotation");
  } finally {
    stop = true;
    await traffic;
  }
});
