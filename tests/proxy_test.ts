/**
 * Integration tests of the proxy semantics against real backends on
 * loopback, run once per upstream transport and once per client protocol:
 * HTTP/1.1 on a plain listener, and HTTP/2 (negotiated by ALPN) on a TLS one.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../src/config/config.ts";
import { type Balancer, type Log, startBalancer } from "../src/server.ts";
import type { TransportName } from "../src/types.ts";
import {
  backendsYaml,
  baseUrl,
  defaultPool,
  headerValues,
  parseRawResponse,
  rawRequest,
  type RawResponse,
  startBackend,
  startNamedBackend,
  startRawBackend,
  startTestBalancer,
  waitFor,
} from "./helpers.ts";
import { type CertificateFiles, makeTestCertificates } from "./test_certificates.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A balancer started for one client protocol, with a client that speaks it. */
interface ClientSide extends AsyncDisposable {
  readonly lb: Balancer;
  /** The balancer's base URL for this protocol, without a trailing slash. */
  readonly url: string;
  /** fetch over this protocol. */
  readonly fetch: typeof fetch;
  /**
   * One request, its response as on the wire (every header line kept): raw
   * HTTP/1.1 bytes on a new connection (`Connection: close` added unless
   * `headers` has a Connection field), or `curl --http2 --path-as-is` with
   * `Host` sent as `:authority` and none of curl's own headers.
   */
  raw(method: string, target: string, headers: [string, string][]): Promise<RawResponse>;
  /** GET `path`; disposing the exchange is the client going away. */
  open(path: string): Promise<Exchange>;
}

/** A request in flight from a client that disconnects when it is disposed. */
interface Exchange extends Disposable {
  /** Waits for the first bytes of the response body. */
  readSome(): Promise<void>;
}

/** How a test reaches the balancer: HTTP/1.1 in the clear, or HTTP/2 over TLS. */
interface ClientProtocol {
  readonly name: "http/1.1" | "h2";
  /** X-Forwarded-Proto as the backend must see it. */
  readonly scheme: "http" | "https";
  /** The received-protocol a proxy puts in Via for a request that came this way (RFC 9110 §7.6.3). */
  readonly via: string;
  /** Whether the client may send connection-specific fields; HTTP/2 forbids them (RFC 9113 §8.2.2). */
  readonly connectionHeaders: boolean;
  /** Starts a balancer with `yaml` (without `listen`) for this protocol's client. */
  start(yaml: string, log?: Log): Promise<ClientSide>;
}

const http11: ClientProtocol = {
  name: "http/1.1",
  scheme: "http",
  via: "1.1",
  connectionHeaders: true,
  start(yaml, log) {
    const lb = startTestBalancer(yaml, log);
    const port = lb.addr.port;
    return Promise.resolve({
      lb,
      url: baseUrl(lb),
      fetch,
      raw(method, target, headers) {
        const close = headers.some(([name]) => name.toLowerCase() === "connection")
          ? []
          : [["Connection", "close"]];
        const fields = [...headers, ...close].map(([name, value]) => `${name}: ${value}\r\n`);
        return rawRequest(port, `${method} ${target} HTTP/1.1\r\n${fields.join("")}\r\n`);
      },
      async open(path) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: app.test\r\n\r\n`));
        return {
          readSome: async () => void await conn.read(new Uint8Array(1024)),
          [Symbol.dispose]: () => conn.close(),
        };
      },
      [Symbol.asyncDispose]: () => lb[Symbol.asyncDispose](),
    });
  },
};

/** The test CA and one server certificate for localhost, made once for this file. */
let pki: Promise<{ ca: string; caPath: string; files: CertificateFiles }> | undefined;
function testPki() {
  return pki ??= (async () => {
    const certs = await makeTestCertificates();
    // The files serve every h2 test of this file; they go when it ends.
    globalThis.addEventListener("unload", () => Deno.removeSync(certs.dir, { recursive: true }));
    return { ca: certs.ca, caPath: certs.caPath, files: await certs.server("h2") };
  })();
}

const h2: ClientProtocol = {
  name: "h2",
  scheme: "https",
  via: "2",
  connectionHeaders: false,
  async start(yaml, log = () => {}) {
    const { ca, caPath, files } = await testPki();
    const config = parseConfig(
      `listen: { host: 127.0.0.1, port: 0, tls: { cert: ${files.cert}, key: ${files.key} } }\n${yaml}`,
      "test.yaml",
    );
    const lb = startBalancer(config, log, () => {});
    const url = `https://localhost:${lb.addr.port}`;
    const client = Deno.createHttpClient({ caCerts: [ca], http1: false, http2: true });
    const h2fetch: typeof fetch = (input, init) => fetch(input, { ...init, client });
    return {
      lb,
      url,
      fetch: h2fetch,
      raw: (method, target, headers) => curlHttp2(caPath, url, method, target, headers),
      open(path) {
        const abort = new AbortController();
        const response = h2fetch(`${url}${path}`, { signal: abort.signal });
        response.catch(() => {});
        return Promise.resolve({
          readSome: async () => void await (await response).body!.getReader().read(),
          // Cancelling the stream (RST_STREAM) is how an HTTP/2 client leaves one request.
          [Symbol.dispose]: () => abort.abort(),
        });
      },
      async [Symbol.asyncDispose]() {
        client.close();
        await lb[Symbol.asyncDispose]();
      },
    };
  },
};

/** One request with `curl --http2`, its response as curl got it. */
async function curlHttp2(
  caPath: string,
  url: string,
  method: string,
  target: string,
  headers: [string, string][],
): Promise<RawResponse> {
  const args = ["-sS", "--http2", "--cacert", caPath, "--path-as-is", "-D", "-"];
  if (method !== "GET") args.push("-X", method);
  for (const [name, value] of headers) args.push("-H", `${name}: ${value}`);
  const sent = new Set(headers.map(([name]) => name.toLowerCase()));
  for (const own of ["User-Agent", "Accept"]) {
    if (!sent.has(own.toLowerCase())) args.push("-H", `${own}:`);
  }
  args.push(`${url}${target}`);
  const { code, stdout, stderr } = await new Deno.Command("curl", {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`curl ${args.join(" ")}: ${decoder.decode(stderr)}`);
  assert.equal(decoder.decode(stdout.subarray(0, 7)), "HTTP/2 ", "curl negotiated HTTP/2");
  return parseRawResponse(stdout);
}

/** Header fields HTTP/2 forbids (RFC 9113 §8.2.2); TE is allowed there only as "trailers". */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/** Answers with what it received: method, raw target and headers. */
function echo(request: Request): Response {
  const target = request.url.slice(request.url.indexOf("/", "http://".length));
  return Response.json({ method: request.method, target, headers: [...request.headers] });
}

async function gzipBytes(text: string): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

for (const client of [http11, h2]) {
  for (const transport of ["http1", "fetch"] as TransportName[]) {
    const yaml = (urls: string[], extra = "") =>
      `transport: ${transport}\n${backendsYaml(urls)}${extra}`;
    const name = `${transport} over ${client.name}`;

    Deno.test(`${name}: method, path and query pass through byte-exact`, async () => {
      await using backend = startBackend(echo);
      await using side = await client.start(yaml([backend.url]));
      for (
        const [method, target] of [
          ["GET", "/a%2Fb;v=1/c?x=1&x=2&y=%C3%A9&z=%2f"],
          ["PURGE", "/cache/%E2%82%AC;jsessionid=9?"],
          ["DELETE", "/items/1?force&force=&=x"],
        ]
      ) {
        const response = await side.raw(method, target, [["Host", "app.test"]]);
        assert.equal(response.status, 200);
        const seen = JSON.parse(decoder.decode(response.body));
        assert.equal(seen.method, method);
        assert.equal(seen.target, target);
      }
    });

    Deno.test(`${name}: forwarding headers, Host unchanged, hop-by-hop removed on the way in`, async () => {
      await using backend = startBackend(echo);
      await using side = await client.start(yaml([backend.url]));
      const request: [string, string][] = [
        ["Host", "app.test:8443"],
        ["X-Forwarded-For", "203.0.113.7"],
        ["X-Multi", "one"],
        ["X-Multi", "two"],
        ["Connection", "close, X-Secret"],
        ["X-Secret", "s"],
        ["Keep-Alive", "timeout=5"],
        ["TE", "trailers"],
        ["Trailer", "X-T"],
        ["Proxy-Connection", "keep-alive"],
        ["Proxy-Authorization", "Basic eDp5"],
        ["Upgrade", "websocket"],
        ["Via", "1.0 edge"],
      ];
      // HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2): an h2 client sends the rest.
      const sent = client.connectionHeaders
        ? request
        : request.filter(([field]) => !CONNECTION_SPECIFIC.has(field.toLowerCase()));
      const response = await side.raw("GET", "/", sent);
      const headers = new Map<string, string>(JSON.parse(decoder.decode(response.body)).headers);
      assert.equal(headers.get("host"), "app.test:8443");
      assert.equal(headers.get("x-forwarded-for"), "203.0.113.7, 127.0.0.1");
      assert.equal(headers.get("x-forwarded-proto"), client.scheme);
      assert.equal(headers.get("x-forwarded-host"), "app.test:8443");
      // Via names the protocol the request came in on (RFC 9110 §7.6.3).
      assert.equal(headers.get("via"), `1.0 edge, ${client.via} deno-lb`);
      assert.equal(headers.get("x-multi"), "one, two");
      const hopByHop = [
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
        "proxy-authorization",
        "upgrade",
      ];
      // X-Secret is hop-by-hop only because Connection names it; over h2 it is end-to-end.
      if (client.connectionHeaders) hopByHop.unshift("x-secret");
      else assert.equal(headers.get("x-secret"), "s", "no Connection field names it over h2");
      for (const field of hopByHop) {
        assert.equal(headers.has(field), false, `${field} reached the backend`);
      }
    });

    Deno.test(`${name}: a valid X-Request-Id is kept, anything else replaced; both ends see it`, async () => {
      let seen: string | null = null;
      await using backend = startBackend((request) => {
        seen = request.headers.get("x-request-id");
        return new Response("ok", { headers: { "x-request-id": "from-the-backend" } });
      });
      await using side = await client.start(yaml([backend.url]));
      const valid = ["abc", "A-Z_a.z:09", "x".repeat(128)];
      for (const id of valid) {
        const response = await side.fetch(side.url, { headers: { "x-request-id": id } });
        await response.body?.cancel();
        assert.equal(seen, id);
        assert.equal(response.headers.get("x-request-id"), id);
      }
      const generated = new Set<string>();
      for (
        const id of [undefined, "", "has space", "x".repeat(129), "semi;colon", "\u00e9t\u00e9"]
      ) {
        const headers: HeadersInit = id === undefined ? {} : { "x-request-id": id };
        const response = await side.fetch(side.url, { headers });
        await response.body?.cancel();
        const sent = response.headers.get("x-request-id")!;
        assert.match(sent, /^[A-Za-z0-9._:-]{1,128}$/);
        assert.notEqual(sent, id);
        assert.equal(seen, sent, "the backend and the client get the same id");
        generated.add(sent);
      }
      assert.equal(generated.size, 6, "every generated id is new");
    });

    Deno.test(`${name}: X-LB-Explain never reaches a backend`, async () => {
      const seen: (string | null)[] = [];
      await using backend = startBackend((request) => {
        seen.push(request.headers.get("x-lb-explain"));
        return new Response("ok");
      });
      await using side = await client.start(
        yaml([backend.url], "admin: { listen: { port: 0 }, explain_from: [192.0.2.0/24] }\n"),
      );
      const response = await side.fetch(side.url, { headers: { "x-lb-explain": "1" } });
      await response.body?.cancel();
      assert.equal(response.headers.get("x-lb-decision"), null, "127.0.0.1 is not allowed here");
      assert.deepEqual(seen.filter((value) => value !== null), []);
    });

    Deno.test(`${name}: hop-by-hop removed on the way out, several Set-Cookie stay several`, async () => {
      await using backend = startRawBackend(async (conn) => {
        await conn.read(new Uint8Array(4096));
        await conn.write(encoder.encode(
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Internal\r\nX-Internal: 1\r\n" +
            "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\nUpgrade: h2c\r\n" +
            "Set-Cookie: a=1\r\n" +
            "Set-Cookie: b=2; Path=/\r\nX-End: e\r\n\r\nok",
        ));
      });
      await using side = await client.start(yaml([backend.url]));
      const response = await side.raw("GET", "/", [["Host", "app.test"]]);
      assert.equal(response.status, 200);
      assert.deepEqual(headerValues(response, "set-cookie"), ["a=1", "b=2; Path=/"]);
      assert.deepEqual(headerValues(response, "x-end"), ["e"]);
      for (
        const field of ["x-internal", "keep-alive", "proxy-authenticate", "trailer", "upgrade"]
      ) {
        assert.deepEqual(headerValues(response, field), [], `${field} reached the client`);
      }
      assert.equal(decoder.decode(response.body), "ok");
    });

    Deno.test(`${name}: sticky sessions set the cookie once and keep the client on its backend`, async () => {
      await using first = startNamedBackend();
      await using second = startNamedBackend();
      await using side = await client.start(
        `strategy: sticky\nsticky: { cookie: app_lb }\n${yaml([first.url, second.url])}`,
      );
      const initial = await side.fetch(side.url);
      const pinnedPort = await initial.text();
      const setCookie = initial.headers.get("set-cookie")!;
      assert.match(setCookie, /^app_lb=[0-9a-f]{8}; Path=\/; HttpOnly; SameSite=Lax$/);
      const cookie = setCookie.split(";")[0];
      for (let i = 0; i < 6; i++) {
        const response = await side.fetch(side.url, {
          headers: { cookie: `theme=dark; ${cookie}` },
        });
        assert.equal(await response.text(), pinnedPort);
        assert.equal(response.headers.get("set-cookie"), null);
      }
    });

    Deno.test(`${name}: redirects go back to the client, not followed`, async () => {
      await using backend = startBackend((request) =>
        new URL(request.url).pathname === "/old"
          ? new Response(null, { status: 302, headers: { location: "/new" } })
          : new Response("followed")
      );
      await using side = await client.start(yaml([backend.url]));
      const response = await side.fetch(`${side.url}/old`, { redirect: "manual" });
      await response.body?.cancel();
      assert.equal(response.status, 302);
      assert.equal(response.headers.get("location"), "/new");
    });

    Deno.test(`${name}: request bodies stream to the backend intact`, async () => {
      await using backend = startBackend(async (request) => {
        const bytes = new Uint8Array(await request.arrayBuffer());
        const digest = await crypto.subtle.digest("SHA-256", bytes);
        return Response.json({ length: bytes.length, digest: [...new Uint8Array(digest)] });
      });
      await using side = await client.start(yaml([backend.url]));
      const payload = crypto.getRandomValues(new Uint8Array(64 * 1024));
      const expected = [...new Uint8Array(await crypto.subtle.digest("SHA-256", payload))];
      const sized = await (await side.fetch(side.url, { method: "POST", body: payload })).json();
      assert.deepEqual(sized, { length: payload.length, digest: expected });
      const streamed = await (await side.fetch(side.url, {
        method: "PUT",
        body: new Blob([payload]).stream(),
      })).json();
      assert.deepEqual(streamed, { length: payload.length, digest: expected });
    });

    Deno.test(`${name}: an event stream's first event arrives while the backend is still sending`, async () => {
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
      await using side = await client.start(yaml([backend.url]));
      const response = await side.fetch(side.url);
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      assert.equal((await reader.read()).value, "data: first\n\n");
      release();
      let rest = "";
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        rest += chunk.value;
      }
      assert.equal(rest, "data: last\n\n");
    });

    Deno.test(`${name}: a 1 GiB download passes with the memory flat`, async () => {
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
      await using side = await client.start(yaml([backend.url]));
      const before = Deno.memoryUsage().rss;
      let peak = before;
      let received = 0;
      const response = await side.fetch(side.url);
      for await (const part of response.body!) {
        received += part.length;
        if ((received & 0x3ffffff) < part.length) peak = Math.max(peak, Deno.memoryUsage().rss);
      }
      assert.equal(received, total * chunk.length);
      const growthMiB = (peak - before) / 2 ** 20;
      assert.ok(growthMiB < 200, `RSS grew ${growthMiB.toFixed(0)} MiB for a 1024 MiB body`);
    });

    Deno.test(`${name}: a client that stops reading stops the backend too`, async () => {
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
      await using side = await client.start(yaml([backend.url]));
      const response = await side.fetch(side.url);
      const reader = response.body!.getReader();
      await reader.read();
      // The client reads no more: what the backend produced must level off at socket buffers
      // (and, over HTTP/2, flow-control windows).
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

    Deno.test(`${name}: no healthy backend gives 503 with Retry-After and a one-line reason`, async () => {
      await using backend = startBackend(() => new Response("ok"));
      await using side = await client.start(
        yaml([backend.url], "health_check: { interval: 3s }\n"),
      );
      for (const b of defaultPool(side.lb).balancer.backends) b.healthy = false;
      const response = await side.fetch(side.url);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "3");
      assert.equal(await response.text(), "503 Service Unavailable: no healthy backend\n");
    });

    Deno.test(`${name}: a refused connection is 502, and retried once on another backend`, async () => {
      const closed = startBackend(() => new Response("never"));
      const deadUrl = closed.url;
      await closed.close();
      await using alive = startBackend(() => new Response("alive"));
      {
        await using side = await client.start(yaml([deadUrl]));
        const response = await side.fetch(side.url);
        assert.equal(response.status, 502);
        assert.equal(
          await response.text(),
          "502 Bad Gateway: the backend refused the connection\n",
        );
      }
      const lines: string[] = [];
      await using side = await client.start(
        yaml([deadUrl, alive.url]),
        (line) => lines.push(line),
      );
      for (const method of ["POST", "GET", "POST"]) {
        const response = await side.fetch(side.url, {
          method,
          body: method === "POST" ? "x" : null,
        });
        assert.equal(response.status, 200, method);
        assert.equal(await response.text(), "alive");
      }
      assert.ok(lines.includes(`backend ${deadUrl} down: connection refused`), lines.join("\n"));
    });

    Deno.test(`${name}: a backend with no response headers in time gives 504`, async () => {
      const { promise: done, resolve: finish } = Promise.withResolvers<void>();
      await using backend = startRawBackend(async (conn) => {
        await conn.read(new Uint8Array(4096));
        await done;
      });
      await using side = await client.start(yaml([backend.url], "timeouts: { response: 200ms }\n"));
      const response = await side.fetch(side.url);
      finish();
      assert.equal(response.status, 504);
      assert.equal(
        await response.text(),
        "504 Gateway Timeout: the backend sent no response headers in time\n",
      );
    });

    Deno.test(`${name}: an invalid response gives 502`, async () => {
      await using backend = startRawBackend(async (conn) => {
        await conn.read(new Uint8Array(4096));
        await conn.write(encoder.encode("SMTP ready\r\n\r\n"));
      });
      await using side = await client.start(yaml([backend.url]));
      const response = await side.fetch(side.url);
      assert.equal(response.status, 502);
      assert.match(await response.text(), /^502 Bad Gateway: .+\n$/);
    });

    Deno.test(`${name}: a client that disconnects before the response aborts the upstream request`, async () => {
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
      await using side = await client.start(yaml([backend.url]));
      {
        using _exchange = await side.open("/wait");
        await arrived;
      }
      await upstreamAborted;
    });

    Deno.test(`${name}: a client that disconnects mid-body releases the upstream connection`, async () => {
      const { promise: cancelled, resolve: onCancel } = Promise.withResolvers<void>();
      await using backend = startBackend(() =>
        new Response(
          new ReadableStream({
            pull: (controller) => controller.enqueue(new Uint8Array(16 * 1024)),
            cancel: () => onCancel(),
          }, { highWaterMark: 0 }),
        )
      );
      await using side = await client.start(yaml([backend.url]));
      {
        using exchange = await side.open("/");
        await exchange.readSome();
      }
      await cancelled;
    });
  }

  Deno.test(`http1 over ${client.name}: a gzip body arrives byte-identical, and nothing is added that the client did not send`, async () => {
    const gzipped = await gzipBytes("hello, compressed world ".repeat(50));
    let seen: [string, string][] = [];
    await using backend = startBackend((request) => {
      seen = [...request.headers];
      return new Response(gzipped, {
        headers: { "content-encoding": "gzip", "content-type": "text/plain" },
      });
    });
    await using side = await client.start(`transport: http1\n${backendsYaml([backend.url])}`);
    const response = await side.raw("GET", "/file.txt", [
      ["Host", "app.test"],
      ["Accept-Encoding", "gzip"],
    ]);
    assert.deepEqual(headerValues(response, "content-encoding"), ["gzip"]);
    assert.deepEqual(headerValues(response, "content-length"), [String(gzipped.length)]);
    assert.deepEqual(response.body, gzipped);
    assert.deepEqual(seen.map(([field]) => field).sort(), [
      "accept-encoding",
      "host",
      "via",
      "x-forwarded-for",
      "x-forwarded-host",
      "x-forwarded-proto",
      "x-request-id",
    ]);
    assert.equal(new Map(seen).get("accept-encoding"), "gzip");

    const plain = await side.raw("GET", "/", [["Host", "app.test"]]);
    assert.equal(plain.status, 200);
    assert.equal(seen.some(([field]) => field === "accept-encoding"), false);
  });

  Deno.test(`fetch over ${client.name}: a body that fetch decoded goes out without the stale encoding headers`, async () => {
    const text = "hello, compressed world ".repeat(50);
    const gzipped = await gzipBytes(text);
    await using backend = startBackend(() =>
      new Response(gzipped, { headers: { "content-encoding": "gzip" } })
    );
    await using side = await client.start(`transport: fetch\n${backendsYaml([backend.url])}`);
    const response = await side.raw("GET", "/", [["Host", "app.test"], [
      "Accept-Encoding",
      "gzip",
    ]]);
    assert.deepEqual(headerValues(response, "content-encoding"), []);
    assert.equal(decoder.decode(response.body), text);
  });
}
