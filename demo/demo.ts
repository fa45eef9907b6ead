/**
 * `deno task demo`: three small backends on 127.0.0.1:9001-9003 and the
 * balancer in front of them with the shipped config.yaml. Ctrl-C stops all.
 *
 * @module
 */

import { loadConfig } from "../src/config/config.ts";
import { exitOnSignals, startBalancer } from "../src/server.ts";

for (const port of [9001, 9002, 9003]) {
  Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (request) => {
    const { pathname } = new URL(request.url);
    return new Response(`hello from backend ${port}, you asked for ${pathname}\n`);
  });
}

const config = await loadConfig("config.yaml");
exitOnSignals(startBalancer(config));
console.error(`demo: try  curl localhost:${config.listen.port}  a few times; Ctrl-C stops it`);
