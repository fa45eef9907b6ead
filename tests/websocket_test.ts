/**
 * WebSocket proxying through a real balancer with Deno's WebSocket client
 * and raw sockets: messages both ways, the handshake's headers and
 * subprotocol, a refused upgrade, close codes, bounded backpressure, the
 * tunnel timeout, the drain, the metrics and the access log.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseConfig } from "../src/config/config.ts";
import {
  adminUrl,
  adminYaml,
  backendsYaml,
  baseUrl,
  defaultPool,
  parsePrometheus,
  rawRequest,
  sampleValue,
  startBackend,
  startTestBalancer,
  type TestBackend,
  waitFor,
} from "./helpers.ts";

/** What the echo backend saw of the handshake. */
interface Handshake {
  headers: Record<string, string>;
  path: string;
}

/** A backend that echoes every message and records each handshake and close. */
function startEchoBackend(): TestBackend & { handshakes: Handshake[]; closes: string[] } {
  const handshakes: Handshake[] = [];
  const closes: string[] = [];
  const backend = startBackend((request) => {
    if (request.headers.has("x-refuse")) return new Response("no upgrade", { status: 403 });
    if (request.headers.get("upgrade") !== "websocket") return new Response("ok"); // a probe
    handshakes.push({
      headers: Object.fromEntries(request.headers),
      path: new URL(request.url).pathname,
    });
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) =>
      p.trim()
    );
    const { socket, response } = Deno.upgradeWebSocket(request, {
      ...(offered.includes("json") ? { protocol: "json" } : {}),
    });
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (event.data === "close please") socket.close(4002, "as asked");
      else socket.send(event.data);
    };
    socket.onclose = (event) => closes.push(`${event.code} ${event.reason}`);
    return response;
  });
  return Object.assign(backend, { handshakes, closes });
}

function wsUrl(lb: { addr: Deno.NetAddr }, path = "/chat"): string {
  return `ws://127.0.0.1:${lb.addr.port}${path}`;
}

/** Opens a WebSocket and resolves once it is open. */
async function connect(url: string, options?: WebSocketOptions): Promise<WebSocket> {
  const socket = new WebSocket(url, options);
  socket.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error("the WebSocket did not open"));
  });
  return socket;
}

function nextMessage(socket: WebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve) => socket.onmessage = (event) => resolve(event.data));
}

function closeOf(socket: WebSocket): Promise<CloseEvent> {
  return new Promise((resolve) => socket.addEventListener("close", resolve, { once: true }));
}

Deno.test("websocket: text and binary both ways, in order; headers and subprotocol pass the handshake", async () => {
  await using backend = startEchoBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]));
  const socket = await connect(wsUrl(lb), {
    protocols: ["chat", "json"],
    headers: {
      cookie: "session=7",
      authorization: "Bearer t",
      origin: "https://app.test",
      "x-custom": "1",
    },
  });
  assert.equal(socket.protocol, "json", "the subprotocol the backend chose");
  const seen: (string | ArrayBuffer)[] = [];
  const all = new Promise<void>((resolve) => {
    socket.onmessage = (event) => {
      seen.push(event.data);
      if (seen.length === 3) resolve();
    };
  });
  socket.send("héllo");
  socket.send(new Uint8Array([0, 1, 2, 255]));
  socket.send("third");
  await all;
  assert.equal(seen[0], "héllo");
  assert.deepEqual([...new Uint8Array(seen[1] as ArrayBuffer)], [0, 1, 2, 255]);
  assert.equal(seen[2], "third");
  const closed = closeOf(socket);
  socket.close(4001, "bye");
  await closed;
  await waitFor(() => backend.closes.length === 1, "the backend's close");
  assert.equal(
    backend.closes[0],
    "4001 bye",
    "the client's close code and reason reach the backend",
  );
  const [handshake] = backend.handshakes;
  assert.equal(handshake.path, "/chat");
  assert.equal(handshake.headers.cookie, "session=7");
  assert.equal(handshake.headers.authorization, "Bearer t");
  assert.equal(handshake.headers.origin, "https://app.test");
  assert.equal(handshake.headers["x-custom"], "1");
  assert.equal(handshake.headers["x-forwarded-for"], "127.0.0.1");
  assert.match(handshake.headers["sec-websocket-protocol"], /chat, ?json/);
});

Deno.test("websocket: the backend's close code reaches the client; a refused upgrade is passed as it is", async () => {
  await using backend = startEchoBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]));
  const socket = await connect(wsUrl(lb));
  const closed = closeOf(socket);
  socket.send("close please");
  const event = await closed;
  assert.equal(`${event.code} ${event.reason}`, "4002 as asked");
  const refused = await rawRequest(
    lb.addr.port,
    "GET /chat HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Refuse: 1\r\n\r\n",
  );
  assert.equal(refused.status, 403);
  assert.equal(new TextDecoder().decode(refused.body), "no upgrade");
});

Deno.test("websocket: any other upgrade is 501", async () => {
  await using backend = startEchoBackend();
  await using lb = startTestBalancer(backendsYaml([backend.url]));
  const answer = await rawRequest(
    lb.addr.port,
    "GET / HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" +
      "HTTP2-Settings: AAMAAABkAAQAAP__\r\nConnection: close\r\n\r\n",
  );
  assert.equal(answer.status, 501);
  assert.match(new TextDecoder().decode(answer.body), /does not switch to h2c/);
});

Deno.test("websocket: a client that stops reading stops the backend; memory stays bounded", async () => {
  const chunk = new Uint8Array(64 * 1024).fill(7);
  const count = 400;
  let sent = 0;
  await using backend = startBackend((request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => {
      for (let i = 0; i < count; i++) socket.send(chunk);
      sent = count;
    };
    return response;
  });
  await using lb = startTestBalancer(backendsYaml([backend.url]));
  // A raw client: the handshake, then no reading at all for a while.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: lb.addr.port });
  await conn.write(new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  ));
  await waitFor(() => sent === count && lb.proxy.tunnels.size === 1, "the backend flooding");
  const [open] = lb.proxy.tunnels;
  await waitFor(() => open.tunnel.record.messagesOut > 0, "the first messages forwarded");
  // Let the pump fill what it may, then check it stopped well short of everything.
  const before = open.tunnel.record.messagesOut;
  await waitFor(async () => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return open.tunnel.record.messagesOut === before || open.tunnel.record.messagesOut < count / 2;
  }, "the pump pausing");
  assert.ok(
    open.tunnel.record.messagesOut < count / 2,
    `${open.tunnel.record.messagesOut} forwarded unread`,
  );
  // Now read everything: every message arrives.
  let bytes = 0;
  const buffer = new Uint8Array(256 * 1024);
  while (bytes < count * chunk.byteLength) {
    const read = await conn.read(buffer);
    if (read === null) break;
    bytes += read;
  }
  assert.ok(bytes >= count * chunk.byteLength, `${bytes} bytes read`);
  assert.equal(open.tunnel.record.messagesOut, count);
  conn.close();
  await open.tunnel.closed;
});

Deno.test("websocket: a silent tunnel closes after timeouts.tunnel with 1001", async () => {
  await using backend = startEchoBackend();
  await using lb = startTestBalancer(`timeouts: { tunnel: 300ms }\n${backendsYaml([backend.url])}`);
  const socket = await connect(wsUrl(lb));
  const event = await closeOf(socket);
  assert.equal(event.code, 1001);
  await waitFor(() => backend.closes.length === 1, "the backend's side closed too");
});

Deno.test("websocket: a drain closes open tunnels with 1001 after timeouts.drain; metrics and the access log", async () => {
  await using backend = startEchoBackend();
  const lines: string[] = [];
  const lb = startTestBalancer(
    `timeouts: { drain: 300ms }\n${backendsYaml([backend.url])}${adminYaml()}`,
    () => {},
    (line) => lines.push(line),
  );
  const socket = await connect(wsUrl(lb));
  const echoed = nextMessage(socket);
  socket.send("ping");
  assert.equal(await echoed, "ping");
  const metrics = parsePrometheus(await (await fetch(`${adminUrl(lb)}/metrics`)).text());
  assert.equal(sampleValue(metrics, "lb_websockets_open", { backend: backend.url }), 1);
  const closed = closeOf(socket);
  const started = performance.now();
  const stopped = lb.shutdown();
  const event = await closed;
  assert.equal(event.code, 1001);
  assert.ok(performance.now() - started >= 250, "after the drain time");
  await stopped;
  await waitFor(() => lines.length === 1, "the access-log line");
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.status, 101);
  assert.equal(entry.backend, backend.url);
  assert.deepEqual(entry.websocket, {
    messages_in: 1,
    messages_out: 1,
    bytes_in: 4,
    bytes_out: 4,
    close_code: 1001,
  });
  assert.equal(await fetch(baseUrl(lb)).catch(() => undefined), undefined, "stopped");
});

Deno.test("websocket: a reload that removes the backend closes its tunnels with 1001 after the drain; a backend going away closes the client with its code", async () => {
  await using first = startEchoBackend();
  await using second = startEchoBackend();
  await using lb = startTestBalancer(`timeouts: { drain: 200ms }\n${backendsYaml([first.url])}`);
  const socket = await connect(wsUrl(lb));
  const removed = closeOf(socket);
  lb.reloader.apply(parseConfig(
    `listen: { host: 127.0.0.1, port: 0 }\ntimeouts: { drain: 200ms }\n${
      backendsYaml([second.url])
    }`,
    "test.yaml",
  ));
  assert.equal((await removed).code, 1001);

  const other = await connect(wsUrl(lb));
  const gone = closeOf(other);
  await second.close();
  const event = await gone;
  assert.equal(event.code, 1001, "Deno.serve's shutdown sends 1001, and the client gets that code");
});

Deno.test("websocket: a handshake without a key is 400, holding nothing; a backend at its limit is 503", async () => {
  await using backend = startEchoBackend();
  await using lb = startTestBalancer(
    `limits: { max_in_flight: 1, queue: 0 }\n${backendsYaml([backend.url])}`,
  );
  const answer = await rawRequest(
    lb.addr.port,
    "GET /chat HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\n\r\n",
  );
  assert.equal(answer.status, 400);
  assert.match(new TextDecoder().decode(answer.body), /not a WebSocket handshake/);
  const [target] = defaultPool(lb).backends;
  await waitFor(() => target.inFlight === 0, "the slot given back");
  const socket = await connect(wsUrl(lb));
  assert.equal(target.inFlight, 1, "an open tunnel holds its slot");
  const busy = await rawRequest(
    lb.addr.port,
    "GET /chat HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  assert.equal(busy.status, 503);
  const closed = closeOf(socket);
  socket.close(1000);
  await closed;
  await waitFor(() => target.inFlight === 0, "the tunnel's slot given back");
});
