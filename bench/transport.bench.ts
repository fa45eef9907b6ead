/**
 * One upstream round trip per transport against a loopback backend, with a
 * 16-byte response: what forwarding costs on top of the backend itself.
 * Plain `fetch` with its default client is the baseline.
 *
 * @module
 */

import { FetchTransport } from "../src/internal/fetch_transport.ts";
import { Http1Transport } from "../src/internal/http1_transport.ts";
import { RequestContext } from "../src/request_context.ts";
import { newBackend } from "../src/load_balancer.ts";
import type { Transport } from "../src/transport.ts";
import type { UpstreamRequest } from "../src/types.ts";

const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  () => new Response("sixteen bytes ok"),
);
const url = `http://127.0.0.1:${server.addr.port}`;
const backend = newBackend({ url, weight: 1, transport: "http1" });
const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
} as Deno.ServeHandlerInfo;
const timeouts = { connectTimeoutMs: 2000, responseTimeoutMs: 30_000 };
const transports: Record<string, Transport> = {
  http1: new Http1Transport(timeouts),
  fetch: new FetchTransport(timeouts),
};
const upstream = (): UpstreamRequest => ({
  method: "GET",
  target: "/",
  headers: [["host", "bench.test"]],
  body: null,
});

Deno.bench({
  name: "fetch, default client",
  group: "round trip",
  baseline: true,
  fn: async () => {
    await (await fetch(url)).arrayBuffer();
  },
});

for (const [name, transport] of Object.entries(transports)) {
  Deno.bench({
    name: `${name} transport`,
    group: "round trip",
    fn: async () => {
      using ctx = RequestContext.open(new Request(url), info);
      const response = await transport.send(ctx, backend, upstream());
      await new Response(response.body).arrayBuffer();
    },
  });
}

globalThis.addEventListener("unload", () => {
  for (const transport of Object.values(transports)) transport.close();
  void server.shutdown();
});
