/**
 * Integration tests of the proxy semantics, run once per transport against
 * real backends on loopback.
 */

import assert from "node:assert/strict";
import type { TransportName } from "../src/types.ts";
import {
  backendsYaml,
  baseUrl,
  defaultPool,
  headerValues,
  rawRequest,
  startBackend,
  startNamedBackend,
  startRawBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";

const encoder = new TextEncoder();

/** Answers with what it received: method, raw target and headers. */
function echo(request: Request): Response {
  const target = request.url.slice(request.url.indexOf("/", "http://".length));
  return Response.json({ method: request.method, target, headers: [...request.headers] });
}

async function gzipBytes(text: string): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

for (const transport of ["http1", "fetch"] as TransportName[]) {
  const yaml = (urls: string[], extra = "") =>
    `transport: ${transport}\n${backendsYaml(urls)}${extra}`;

  Deno.test(`${transport}: method, path and query pass through byte-exact`, async () => {
    await using backend = startBackend(echo);
    await using lb = startTestBalancer(yaml([backend.url]));
    for (
      const [method, target] of [
        ["GET", "/a%2Fb;v=1/c?x=1&x=2&y=%C3%A9&z=%2f"],
        ["PURGE", "/cache/%E2%82%AC;jsessionid=9?"],
        ["DELETE", "/items/1?force&force=&=x"],
      ]
    ) {
      const response = await rawRequest(
        lb.addr.port,
        `${method} ${target} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(response.status, 200);
      const seen = JSON.parse(new TextDecoder().decode(response.body));
      assert.equal(seen.method, method);
      assert.equal(seen.target, target);
    }
  });

  Deno.test(`${transport}: forwarding headers, Host unchanged, hop-by-hop removed on the way in`, async () => {
    await using backend = startBackend(echo);
    await using lb = startTestBalancer(yaml([backend.url]));
    const response = await rawRequest(
      lb.addr.port,
      "GET / HTTP/1.1\r\nHost: app.test:8443\r\nX-Forwarded-For: 203.0.113.7\r\n" +
        "X-Multi: one\r\nX-Multi: two\r\nConnection: close, X-Secret\r\nX-Secret: s\r\n" +
        "Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nProxy-Connection: keep-alive\r\n" +
        "Proxy-Authorization: Basic eDp5\r\nUpgrade: websocket\r\nVia: 1.0 edge\r\n\r\n",
    );
    const headers = new Map<string, string>(
      JSON.parse(new TextDecoder().decode(response.body)).headers,
    );
    assert.equal(headers.get("host"), "app.test:8443");
    assert.equal(headers.get("x-forwarded-for"), "203.0.113.7, 127.0.0.1");
    assert.equal(headers.get("x-forwarded-proto"), "http");
    assert.equal(headers.get("x-forwarded-host"), "app.test:8443");
    assert.equal(headers.get("via"), "1.0 edge, 1.1 deno-lb");
    assert.equal(headers.get("x-multi"), "one, two");
    for (
      const name of [
        "x-secret",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
        "proxy-authorization",
        "upgrade",
      ]
    ) {
      assert.equal(headers.has(name), false, `${name} reached the backend`);
    }
  });

  Deno.test(`${transport}: a valid X-Request-Id is kept, anything else replaced; both ends see it`, async () => {
    let seen: string | null = null;
    await using backend = startBackend((request) => {
      seen = request.headers.get("x-request-id");
      return new Response("ok", { headers: { "x-request-id": "from-the-backend" } });
    });
    await using lb = startTestBalancer(yaml([backend.url]));
    const valid = ["abc", "A-Z_a.z:09", "x".repeat(128)];
    for (const id of valid) {
      const response = await fetch(baseUrl(lb), { headers: { "x-request-id": id } });
      await response.body?.cancel();
      assert.equal(seen, id);
      assert.equal(response.headers.get("x-request-id"), id);
    }
    const generated = new Set<string>();
    for (const id of [undefined, "", "has space", "x".repeat(129), "semi;colon", "\u00e9t\u00e9"]) {
      const headers: HeadersInit = id === undefined ? {} : { "x-request-id": id };
      const response = await fetch(baseUrl(lb), { headers });
      await response.body?.cancel();
      const sent = response.headers.get("x-request-id")!;
      assert.match(sent, /^[A-Za-z0-9._:-]{1,128}$/);
      assert.notEqual(sent, id);
      assert.equal(seen, sent, "the backend and the client get the same id");
      generated.add(sent);
    }
    assert.equal(generated.size, 6, "every generated id is new");
  });

  Deno.test(`${transport}: X-LB-Explain never reaches a backend`, async () => {
    const seen: (string | null)[] = [];
    await using backend = startBackend((request) => {
      seen.push(request.headers.get("x-lb-explain"));
      return new Response("ok");
    });
    await using lb = startTestBalancer(
      yaml([backend.url], "admin: { listen: { port: 0 }, explain_from: [192.0.2.0/24] }\n"),
    );
    const response = await fetch(baseUrl(lb), { headers: { "x-lb-explain": "1" } });
    await response.body?.cancel();
    assert.equal(response.headers.get("x-lb-decision"), null, "127.0.0.1 is not allowed here");
    assert.deepEqual(seen.filter((value) => value !== null), []);
  });

  Deno.test(`${transport}: hop-by-hop removed on the way out, several Set-Cookie stay several`, async () => {
    await using backend = startRawBackend(async (conn) => {
      await conn.read(new Uint8Array(4096));
      await conn.write(encoder.encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Internal\r\nX-Internal: 1\r\n" +
          "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\nUpgrade: h2c\r\n" +
          "Set-Cookie: a=1\r\n" +
          "Set-Cookie: b=2; Path=/\r\nX-End: e\r\n\r\nok",
      ));
    });
    await using lb = startTestBalancer(yaml([backend.url]));
    const response = await rawRequest(
      lb.addr.port,
      "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    );
    assert.equal(response.status, 200);
    assert.deepEqual(headerValues(response, "set-cookie"), ["a=1", "b=2; Path=/"]);
    assert.deepEqual(headerValues(response, "x-end"), ["e"]);
    for (const name of ["x-internal", "keep-alive", "proxy-authenticate", "trailer", "upgrade"]) {
      assert.deepEqual(headerValues(response, name), [], `${name} reached the client`);
    }
    assert.equal(new TextDecoder().decode(response.body), "ok");
  });

  Deno.test(`${transport}: sticky sessions set the cookie once and keep the client on its backend`, async () => {
    await using first = startNamedBackend();
    await using second = startNamedBackend();
    await using lb = startTestBalancer(
      `strategy: sticky\nsticky: { cookie: app_lb }\n${yaml([first.url, second.url])}`,
    );
    const initial = await fetch(baseUrl(lb));
    const pinnedPort = await initial.text();
    const setCookie = initial.headers.get("set-cookie")!;
    assert.match(setCookie, /^app_lb=[0-9a-f]{8}; Path=\/; HttpOnly; SameSite=Lax$/);
    const cookie = setCookie.split(";")[0];
    for (let i = 0; i < 6; i++) {
      const response = await fetch(baseUrl(lb), { headers: { cookie: `theme=dark; ${cookie}` } });
      assert.equal(await response.text(), pinnedPort);
      assert.equal(response.headers.get("set-cookie"), null);
    }
  });

  Deno.test(`${transport}: redirects go back to the client, not followed`, async () => {
    await using backend = startBackend((request) =>
      new URL(request.url).pathname === "/old"
        ? new Response(null, { status: 302, headers: { location: "/new" } })
        : new Response("followed")
    );
    await using lb = startTestBalancer(yaml([backend.url]));
    const response = await fetch(`${baseUrl(lb)}/old`, { redirect: "manual" });
    await response.body?.cancel();
    assert.equal(response.status, 302);
    assert.equal(response.headers.get("location"), "/new");
  });

  Deno.test(`${transport}: request bodies stream to the backend intact`, async () => {
    await using backend = startBackend(async (request) => {
      const bytes = new Uint8Array(await request.arrayBuffer());
      const digest = await crypto.subtle.digest("SHA-256", bytes);
      return Response.json({ length: bytes.length, digest: [...new Uint8Array(digest)] });
    });
    await using lb = startTestBalancer(yaml([backend.url]));
    const payload = crypto.getRandomValues(new Uint8Array(64 * 1024));
    const expected = [...new Uint8Array(await crypto.subtle.digest("SHA-256", payload))];
    const sized = await (await fetch(baseUrl(lb), { method: "POST", body: payload })).json();
    assert.deepEqual(sized, { length: payload.length, digest: expected });
    const streamed = await (await fetch(baseUrl(lb), {
      method: "PUT",
      body: new Blob([payload]).stream(),
    })).json();
    assert.deepEqual(streamed, { length: payload.length, digest: expected });
  });

  Deno.test(`${transport}: an event stream's first event arrives while the backend is still sending`, async () => {
    const { promise: finish, resolve: release } = Promise.withResolvers<void>();
    await using backend = startBackend(() =>
      new Response(
        new ReadableStream({
          async start(controller) {
            controller.enqueue(encoder.encode("data: first\n\n"));
            await finish;
            controller.enqueue(encoder.encode("data: last\n\n"));
            controller.close();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      )
    );
    await using lb = startTestBalancer(yaml([backend.url]));
    const response = await fetch(baseUrl(lb));
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value, "data: first\n\n");
    release();
    let rest = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      rest += chunk.value;
    }
    assert.equal(rest, "data: last\n\n");
  });

  Deno.test(`${transport}: a 1 GiB download passes with the memory flat`, async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(7);
    const total = 1024;
    await using backend = startBackend(() => {
      let sent = 0;
      return new Response(
        new ReadableStream({
          pull(controller) {
            if (sent++ < total) controller.enqueue(chunk);
            else controller.close();
          },
        }, { highWaterMark: 0 }),
        { headers: { "content-length": String(total * chunk.length) } },
      );
    });
    await using lb = startTestBalancer(yaml([backend.url]));
    const before = Deno.memoryUsage().rss;
    let peak = before;
    let received = 0;
    const response = await fetch(baseUrl(lb));
    for await (const part of response.body!) {
      received += part.length;
      if ((received & 0x3ffffff) < part.length) peak = Math.max(peak, Deno.memoryUsage().rss);
    }
    assert.equal(received, total * chunk.length);
    const growthMiB = (peak - before) / 2 ** 20;
    assert.ok(growthMiB < 200, `RSS grew ${growthMiB.toFixed(0)} MiB for a 1024 MiB body`);
  });

  Deno.test(`${transport}: a client that stops reading stops the backend too`, async () => {
    const chunk = new Uint8Array(64 * 1024).fill(1);
    let produced = 0;
    const { promise: cancelled, resolve: onCancel } = Promise.withResolvers<void>();
    await using backend = startBackend(() =>
      new Response(
        new ReadableStream({
          pull(controller) {
            produced += chunk.length;
            controller.enqueue(chunk);
          },
          cancel: () => onCancel(),
        }, { highWaterMark: 0 }),
      )
    );
    await using lb = startTestBalancer(yaml([backend.url]));
    const response = await fetch(baseUrl(lb));
    const reader = response.body!.getReader();
    await reader.read();
    // The client reads no more: what the backend produced must level off at socket buffers.
    let last = -1;
    await waitFor(async () => {
      const settled = produced === last;
      last = produced;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return settled;
    }, "the backend to stop producing");
    assert.ok(produced < 64 * 2 ** 20, `backend produced ${produced} bytes for a stalled client`);
    await reader.cancel();
    await cancelled;
  });

  Deno.test(`${transport}: no healthy backend gives 503 with Retry-After and a one-line reason`, async () => {
    await using backend = startBackend(() => new Response("ok"));
    await using lb = startTestBalancer(yaml([backend.url], "health_check: { interval: 3s }\n"));
    for (const b of defaultPool(lb).balancer.backends) b.healthy = false;
    const response = await fetch(baseUrl(lb));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "3");
    assert.equal(await response.text(), "503 Service Unavailable: no healthy backend\n");
  });

  Deno.test(`${transport}: a refused connection is 502, and retried once on another backend`, async () => {
    const closed = startBackend(() => new Response("never"));
    const deadUrl = closed.url;
    await closed.close();
    await using alive = startBackend(() => new Response("alive"));
    {
      await using lb = startTestBalancer(yaml([deadUrl]));
      const response = await fetch(baseUrl(lb));
      assert.equal(response.status, 502);
      assert.equal(await response.text(), "502 Bad Gateway: the backend refused the connection\n");
    }
    const lines: string[] = [];
    await using lb = startTestBalancer(yaml([deadUrl, alive.url]), (line) => lines.push(line));
    for (const method of ["POST", "GET", "POST"]) {
      const response = await fetch(baseUrl(lb), { method, body: method === "POST" ? "x" : null });
      assert.equal(response.status, 200, method);
      assert.equal(await response.text(), "alive");
    }
    assert.ok(lines.includes(`backend ${deadUrl} down: connection refused`), lines.join("\n"));
  });

  Deno.test(`${transport}: a backend with no response headers in time gives 504`, async () => {
    const { promise: done, resolve: finish } = Promise.withResolvers<void>();
    await using backend = startRawBackend(async (conn) => {
      await conn.read(new Uint8Array(4096));
      await done;
    });
    await using lb = startTestBalancer(yaml([backend.url], "timeouts: { response: 200ms }\n"));
    const response = await fetch(baseUrl(lb));
    finish();
    assert.equal(response.status, 504);
    assert.equal(
      await response.text(),
      "504 Gateway Timeout: the backend sent no response headers in time\n",
    );
  });

  Deno.test(`${transport}: an invalid response gives 502`, async () => {
    await using backend = startRawBackend(async (conn) => {
      await conn.read(new Uint8Array(4096));
      await conn.write(encoder.encode("SMTP ready\r\n\r\n"));
    });
    await using lb = startTestBalancer(yaml([backend.url]));
    const response = await fetch(baseUrl(lb));
    assert.equal(response.status, 502);
    assert.match(await response.text(), /^502 Bad Gateway: .+\n$/);
  });

  Deno.test(`${transport}: a client that disconnects before the response aborts the upstream request`, async () => {
    const { promise: upstreamAborted, resolve: onAbort } = Promise.withResolvers<void>();
    const { promise: arrived, resolve: onArrive } = Promise.withResolvers<void>();
    await using backend = startBackend((request) => {
      if (new URL(request.url).pathname !== "/wait") return new Response("probe ok");
      onArrive();
      return new Promise<Response>((resolve) =>
        request.signal.addEventListener("abort", () => {
          onAbort();
          resolve(new Response("too late"));
        })
      );
    });
    await using lb = startTestBalancer(yaml([backend.url]));
    {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port: lb.addr.port });
      await conn.write(encoder.encode("GET /wait HTTP/1.1\r\nHost: app.test\r\n\r\n"));
      await arrived;
    }
    await upstreamAborted;
  });

  Deno.test(`${transport}: a client that disconnects mid-body releases the upstream connection`, async () => {
    const { promise: cancelled, resolve: onCancel } = Promise.withResolvers<void>();
    await using backend = startBackend(() =>
      new Response(
        new ReadableStream({
          pull: (controller) => controller.enqueue(new Uint8Array(16 * 1024)),
          cancel: () => onCancel(),
        }, { highWaterMark: 0 }),
      )
    );
    await using lb = startTestBalancer(yaml([backend.url]));
    {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port: lb.addr.port });
      await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"));
      await conn.read(new Uint8Array(1024));
    }
    await cancelled;
  });
}

Deno.test("http1: a gzip body arrives byte-identical, and nothing is added that the client did not send", async () => {
  const gzipped = await gzipBytes("hello, compressed world ".repeat(50));
  let seen: [string, string][] = [];
  await using backend = startBackend((request) => {
    seen = [...request.headers];
    return new Response(gzipped, {
      headers: { "content-encoding": "gzip", "content-type": "text/plain" },
    });
  });
  await using lb = startTestBalancer(`transport: http1\n${backendsYaml([backend.url])}`);
  const response = await rawRequest(
    lb.addr.port,
    "GET /file.txt HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
  );
  assert.deepEqual(headerValues(response, "content-encoding"), ["gzip"]);
  assert.deepEqual(headerValues(response, "content-length"), [String(gzipped.length)]);
  assert.deepEqual(response.body, gzipped);
  assert.deepEqual(seen.map(([name]) => name).sort(), [
    "accept-encoding",
    "host",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-request-id",
  ]);
  assert.equal(new Map(seen).get("accept-encoding"), "gzip");

  const plain = await rawRequest(
    lb.addr.port,
    "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
  );
  assert.equal(plain.status, 200);
  assert.equal(seen.some(([name]) => name === "accept-encoding"), false);
});

Deno.test("fetch: a body that fetch decoded goes out without the stale encoding headers", async () => {
  const text = "hello, compressed world ".repeat(50);
  const gzipped = await gzipBytes(text);
  await using backend = startBackend(() =>
    new Response(gzipped, { headers: { "content-encoding": "gzip" } })
  );
  await using lb = startTestBalancer(`transport: fetch\n${backendsYaml([backend.url])}`);
  const response = await rawRequest(
    lb.addr.port,
    "GET / HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
  );
  assert.deepEqual(headerValues(response, "content-encoding"), []);
  assert.equal(new TextDecoder().decode(response.body), text);
});
