/** Health checking: thresholds, passive reports, and backends leaving and rejoining rotation. */

import assert from "node:assert/strict";
import { HealthChecker } from "../src/health_check.ts";
import type { Backend } from "../src/types.ts";
import {
  backendsYaml,
  baseUrl,
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
};

function backendAt(url: string): Backend {
  return {
    id: "b",
    url: new URL(url),
    weight: 1,
    transport: "http1",
    healthy: true,
    draining: false,
  };
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
    health.reportSuccess(backend); // real traffic succeeding breaks the failure streak
    await health.probeAll();
    await health.probeAll();
    assert.equal(backend.healthy, true, "two failures after a success are below the threshold");
    await health.probeAll();
    assert.equal(backend.healthy, false);
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
