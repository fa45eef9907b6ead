/** Unit tests of `consistent_hash`: affinity, disruption, weights, bounded loads and keys. */

import assert from "node:assert/strict";
import { LoadBalancer } from "../src/load_balancer.ts";
import type { Backend, ClientInfo } from "../src/types.ts";

const URLS = Array.from({ length: 5 }, (_, i) => `http://10.0.0.${i + 1}:8080`);

interface Options {
  urls?: readonly string[];
  weights?: readonly number[];
  key?: string;
  balanceFactor?: number;
  joinedAt?: number;
}

function balancer(options: Options = {}): LoadBalancer {
  const { urls = URLS, weights, key = "header:x-user-id", balanceFactor = 0 } = options;
  return new LoadBalancer(
    {
      strategy: "consistent_hash",
      backends: urls.map((url, i) => ({
        url,
        weight: weights?.[i] ?? 1,
        transport: "http1",
        slow_start: options.joinedAt === undefined ? 0 : 60_000,
      })),
      sticky: { cookie: "lb_backend" },
      hash: { key, balance_factor: balanceFactor },
    },
    undefined,
    options.joinedAt,
  );
}

function userRequest(user: string): Request {
  return new Request("http://lb.test/", { headers: { "x-user-id": user } });
}

function pick(lb: LoadBalancer, request: Request, client?: ClientInfo): Backend {
  const selection = lb.selectBackend(request, undefined, client);
  assert(selection !== undefined, "a backend is in rotation");
  return selection.backend;
}

/** Each user's backend origin, in `users` order. */
function assign(lb: LoadBalancer, users: readonly string[]): string[] {
  return users.map((user) => pick(lb, userRequest(user)).url.origin);
}

function tally(origins: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const origin of origins) counts.set(origin, (counts.get(origin) ?? 0) + 1);
  return counts;
}

const users = (count: number) => Array.from({ length: count }, (_, i) => `user-${i}`);

Deno.test("consistent_hash: keys keep their backend across restarts and any config order", () => {
  const keys = users(1_000);
  const first = assign(balancer(), keys);
  assert.equal(tally(first).size, URLS.length, "the keys spread over every backend");
  for (let restart = 0; restart < 3; restart++) {
    assert.deepEqual(assign(balancer(), keys), first, `restart ${restart + 1}`);
  }
  assert.deepEqual(assign(balancer({ urls: URLS.toReversed() }), keys), first, "reversed order");
  const shuffled = [URLS[3], URLS[0], URLS[4], URLS[2], URLS[1]];
  assert.deepEqual(assign(balancer({ urls: shuffled }), keys), first, "shuffled order");
});

Deno.test("consistent_hash: another process maps keys alike", async () => {
  const keys = users(200);
  const module = new URL("../src/load_balancer.ts", import.meta.url).href;
  const script = `
    import { LoadBalancer } from ${JSON.stringify(module)};
    const lb = new LoadBalancer({
      strategy: "consistent_hash",
      backends: ${
    JSON.stringify(URLS.toReversed())
  }.map((url) => ({ url, weight: 1, transport: "http1" })),
      sticky: { cookie: "lb_backend" },
      hash: { key: "header:x-user-id", balance_factor: 0 },
    });
    const keys = ${JSON.stringify(keys)};
    const request = (user) => new Request("http://lb.test/", { headers: { "x-user-id": user } });
    const origins = keys.map((user) => lb.selectBackend(request(user)).backend.url.origin);
    console.log(JSON.stringify(origins));
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(output.code, 0);
  const theirs = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.deepEqual(theirs, assign(balancer(), keys));
});

Deno.test("consistent_hash: a backend leaving moves only its keys, and they come back", () => {
  const keys = users(10_000);
  const lb = balancer();
  const before = assign(lb, keys);
  const leaving = lb.backends[2];
  leaving.healthy = false;
  const during = assign(lb, keys);
  let ownMoved = 0;
  let othersMoved = 0;
  for (let i = 0; i < keys.length; i++) {
    if (before[i] === leaving.url.origin) {
      assert.notEqual(during[i], leaving.url.origin, "no key stays on the backend that left");
      ownMoved++;
    } else if (during[i] !== before[i]) {
      othersMoved++;
    }
  }
  const moved = (ownMoved + othersMoved) / keys.length;
  assert(othersMoved / keys.length <= 0.05, `${othersMoved} keys of other backends moved`);
  assert(moved <= 1 / URLS.length + 0.05, `${(moved * 100).toFixed(2)}% of all keys moved`);
  assert(ownMoved > 0, "the backend that left had keys");
  leaving.healthy = true;
  assert.deepEqual(assign(lb, keys), before, "every key is back on its backend");
});

Deno.test("consistent_hash: a retry that excludes the key's backend goes elsewhere, once", () => {
  const lb = balancer();
  const request = userRequest("alice");
  const home = pick(lb, request);
  const retry = lb.selectBackend(request, new Set([home]))?.backend;
  assert(retry !== undefined && retry !== home);
  assert.equal(pick(lb, request), home);
});

Deno.test("consistent_hash: weights 2:1:1 give keys 50/25/25", () => {
  const lb = balancer({ urls: URLS.slice(0, 3), weights: [2, 1, 1] });
  const counts = tally(assign(lb, users(10_000)));
  for (const [url, share] of [[URLS[0], 0.5], [URLS[1], 0.25], [URLS[2], 0.25]] as const) {
    const measured = (counts.get(url) ?? 0) / 10_000;
    assert(Math.abs(measured - share) <= 0.05, `${url}: ${measured} for ${share}`);
  }
});

/** Sends and holds `count` requests, 90% for one key: the worst excess over the bound seen. */
function skewedLoad(lb: LoadBalancer, count: number): number {
  const held: Disposable[] = [];
  let worst = -Infinity;
  for (let i = 0; i < count; i++) {
    const user = i % 10 === 0 ? `user-${i}` : "hot";
    held.push(pick(lb, userRequest(user)).occupy());
    const total = lb.backends.reduce((sum, backend) => sum + backend.inFlight, 0);
    const allowed = Math.ceil(1.25 * (total + 1) / lb.backends.length) + 1;
    for (const backend of lb.backends) worst = Math.max(worst, backend.inFlight - allowed);
  }
  for (const handle of held) handle[Symbol.dispose]();
  return worst;
}

Deno.test("consistent_hash: balance_factor 125 keeps every backend under the bound", () => {
  const lb = balancer({ balanceFactor: 125 });
  const home = pick(lb, userRequest("hot"));
  assert(skewedLoad(lb, 1_000) <= 0, "no backend went over the bound");
  assert(skewedLoad(balancer(), 1_000) > 0, "without the bound the hot key's backend goes over");

  // Bounds 1, 1, 1, 1, 2 for the 5 requests: home, three more backends as home is at the
  // bound, then home again.
  const held = Array.from({ length: 5 }, () => pick(lb, userRequest("hot")).occupy());
  assert.deepEqual(lb.backends.map((backend) => backend.inFlight).sort(), [0, 1, 1, 1, 2]);
  assert.equal(home.inFlight, 2);
  const detail = lb.strategyDetail(userRequest("hot"));
  assert.match(detail ?? "", new RegExp(`moved from ${home.id}: over the bound 2$`));
  for (const handle of held) handle[Symbol.dispose]();
  assert.equal(pick(lb, userRequest("hot")), home, "the key goes home once the load is gone");
});

Deno.test("consistent_hash: requests without the key go round robin over the candidates", () => {
  const lb = balancer();
  lb.backends[4].healthy = false;
  const keyless = new Request("http://lb.test/");
  const empty = new Request("http://lb.test/", { headers: { "x-user-id": "" } });
  const origins = Array.from({ length: 8 }, (_, i) => pick(lb, i % 2 ? empty : keyless).url.origin);
  assert.deepEqual(origins.slice(0, 4), URLS.slice(0, 4));
  assert.deepEqual(origins.slice(4), URLS.slice(0, 4));
  assert.equal(lb.strategyDetail(keyless), "no key header:x-user-id: round robin");
});

Deno.test("consistent_hash: preview moves no rotation and matches select", () => {
  const lb = balancer();
  const keyless = new Request("http://lb.test/");
  const previewed = lb.previewBackend(keyless)!.backend;
  assert.equal(lb.previewBackend(keyless)!.backend, previewed);
  assert.equal(pick(lb, keyless), previewed);
  assert.notEqual(lb.previewBackend(keyless)!.backend, previewed, "select moved the rotation");
  const keyed = userRequest("alice");
  assert.equal(lb.previewBackend(keyed)!.backend, pick(lb, keyed));
});

Deno.test("consistent_hash: client_ip is the connection's peer, never X-Forwarded-For", () => {
  const lb = balancer({ key: "client_ip" });
  const peers = Array.from({ length: 50 }, (_, i) => `192.0.2.${i + 1}`);
  const homes = peers.map((peer) =>
    pick(lb, new Request("http://lb.test/"), { clientAddress: peer })
  );
  const other = homes.findIndex((home) => home !== homes[0]);
  assert(other > 0, "two peers on different backends");
  const forwarded = new Request("http://lb.test/", {
    headers: { "x-forwarded-for": peers[other] },
  });
  for (let i = 0; i < peers.length; i++) {
    assert.equal(pick(lb, forwarded, { clientAddress: peers[i] }), homes[i]);
  }
  const detail = lb.strategyDetail(forwarded, { clientAddress: peers[0] });
  const expected = `^key client_ip=${peers[0]}, slot \\d+, backend ${homes[0].id}$`;
  assert.match(detail ?? "", new RegExp(expected));
  assert.equal(lb.strategyDetail(forwarded), "no key client_ip: round robin");
});

Deno.test("consistent_hash: cookie, query and path keys hash their value like a header", () => {
  const byHeader = balancer();
  const cases = [
    {
      key: "cookie:session",
      request: (value: string) =>
        new Request("http://lb.test/", { headers: { cookie: `theme=dark; session=${value}` } }),
    },
    {
      key: "query:user",
      request: (value: string) => new Request(`http://lb.test/a?x=1&user=${value}&y=2`),
    },
    {
      key: "path",
      request: (value: string) => new Request(`http://lb.test${value}?user=other#top`),
    },
  ];
  const values = Array.from({ length: 100 }, (_, i) => `/users/${i}`);
  for (const { key, request } of cases) {
    const lb = balancer({ key });
    const origins = values.map((value) => pick(lb, request(value)).url.origin);
    assert.deepEqual(origins, assign(byHeader, values), key);
    assert(tally(origins).size > 1, `${key} spreads keys`);
  }
  const lb = balancer({ key: "cookie:session" });
  assert.match(lb.strategyDetail(cases[0].request("abc")) ?? "", /^key cookie:session=abc, /);
});

Deno.test("consistent_hash: slow start does not move keyed traffic", () => {
  const keys = users(1_000);
  const ramping = balancer({ joinedAt: performance.now() });
  assert.deepEqual(assign(ramping, keys), assign(balancer(), keys));
});
