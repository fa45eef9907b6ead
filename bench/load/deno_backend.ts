/**
 * The fallback backend when nginx is not installed: one process serving every
 * scenario on each port given on the command line. `POST /post` reads the
 * whole body before it answers.
 *
 * `deno run --allow-net=127.0.0.1 bench/load/deno_backend.ts 9001 9002 9003`
 *
 * @module
 */

import { largeBody, SCENARIOS, SMALL_BODY } from "./scenarios.ts";

const LARGE_BODY = largeBody();

async function handle(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (path === SCENARIOS.small.path) return new Response(SMALL_BODY);
  if (path === SCENARIOS.large.path) return new Response(LARGE_BODY);
  if (path === SCENARIOS.post.path) {
    await request.arrayBuffer();
    return new Response(SMALL_BODY);
  }
  return new Response("not found", { status: 404 });
}

for (const port of Deno.args.map(Number)) {
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handle);
}
