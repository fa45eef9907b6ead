/**
 * `deno task demo`: three small backends on 127.0.0.1:9001-9003 and the
 * balancer in front of them with the shipped config.yaml: two pools (web and
 * api) behind path and host routes, a redirect, a fixed `/healthz`, and the
 * admin dashboard. It prints the URLs to try. Ctrl-C stops all.
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
const proxy = `localhost:${config.listen.port}`;
const admin = config.admin.listen === null
  ? ""
  : `\n  dashboard:  http://127.0.0.1:${config.admin.listen.port}/`;
console.error(`demo: try these; Ctrl-C stops it
  curl ${proxy}/                          # the web pool, 9001 and 9002 in turn
  curl ${proxy}/api/users                 # the api pool (9003), as /users
  curl -H 'Host: api.localhost' ${proxy}/ # the api pool by host
  curl -i ${proxy}/docs/guide             # a 301 redirect to /
  curl ${proxy}/healthz                   # answered by the balancer itself
  curl -H 'X-LB-Explain: 1' -sI ${proxy}/api/x | grep -i x-lb-decision${admin}`);
