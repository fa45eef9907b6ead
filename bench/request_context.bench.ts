/**
 * What one request pays for its RequestContext: open and dispose, with and
 * without a pooled buffer, against creating the same Request alone.
 *
 * @module
 */

import { RequestContext } from "../src/request_context.ts";

const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
} as Deno.ServeHandlerInfo;

Deno.bench({
  name: "new Request alone",
  group: "request context",
  baseline: true,
  fn: () => void new Request("http://lb.test/"),
});

Deno.bench({
  name: "open + dispose",
  group: "request context",
  fn: () => {
    using _ctx = RequestContext.open(new Request("http://lb.test/"), info);
  },
});

Deno.bench({
  name: "open + pooled buffer + dispose",
  group: "request context",
  fn: () => {
    using ctx = RequestContext.open(new Request("http://lb.test/"), info);
    ctx.buffer();
  },
});
