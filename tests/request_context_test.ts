/** Unit tests of RequestContext: what it owns is given back on every path. */

import assert from "node:assert/strict";
import { BufferPool } from "../src/internal/buffer_pool.ts";
import { RequestContext } from "../src/request_context.ts";

const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
} as Deno.ServeHandlerInfo;

function tracked(): { released: string[]; resource: (name: string) => Disposable } {
  const released: string[] = [];
  return { released, resource: (name) => ({ [Symbol.dispose]: () => void released.push(name) }) };
}

Deno.test("RequestContext: success gives buffers and resources back and aborts pending work", () => {
  const pool = new BufferPool(1024, 4);
  const { released, resource } = tracked();
  let signal: AbortSignal;
  {
    using ctx = RequestContext.open(new Request("http://lb.test/"), info, { buffers: pool });
    signal = ctx.signal;
    ctx.buffer();
    ctx.buffer();
    ctx.own(resource("lease"));
    assert.equal(pool.idle, 0);
    assert.equal(ctx.clientAddress, "127.0.0.1");
  }
  assert.equal(pool.idle, 2);
  assert.deepEqual(released, ["lease"]);
  assert.equal(signal.aborted, true);
});

Deno.test("RequestContext: an error thrown in the block still releases everything", () => {
  const pool = new BufferPool(1024, 4);
  const { released, resource } = tracked();
  assert.throws(() => {
    using ctx = RequestContext.open(new Request("http://lb.test/"), info, { buffers: pool });
    ctx.buffer();
    ctx.own(resource("lease"));
    throw new Error("upstream broke");
  }, /upstream broke/);
  assert.equal(pool.idle, 1);
  assert.deepEqual(released, ["lease"]);
});

Deno.test("RequestContext: a client disconnect aborts its signal", () => {
  const client = new AbortController();
  using ctx = RequestContext.open(new Request("http://lb.test/", { signal: client.signal }), info);
  assert.equal(ctx.signal.aborted, false);
  client.abort();
  assert.equal(ctx.signal.aborted, true);
});

Deno.test("RequestContext: handOff moves resources to the response body's lifetime", () => {
  const pool = new BufferPool(1024, 4);
  const { released, resource } = tracked();
  let moved: DisposableStack;
  let signal: AbortSignal;
  {
    using ctx = RequestContext.open(new Request("http://lb.test/"), info, { buffers: pool });
    signal = ctx.signal;
    ctx.buffer();
    ctx.own(resource("lease"));
    moved = ctx.handOff();
  }
  assert.equal(pool.idle, 0, "the body still holds the buffer");
  assert.deepEqual(released, []);
  assert.equal(signal.aborted, false, "the body may still stream");
  moved.dispose();
  assert.equal(pool.idle, 1);
  assert.deepEqual(released, ["lease"]);
  assert.equal(signal.aborted, true);
});
