/** The request body wrapper: replay of kept bytes, no keeping past retries.max_body, the size limit. */

import assert from "node:assert/strict";
import { BodyTooLarge, ReplayableBody } from "../src/resilience/replayable_body.ts";

const encoder = new TextEncoder();

function source(chunks: string[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks.map((chunk) => encoder.encode(chunk)));
}

async function text(stream: ReadableStream<Uint8Array> | null): Promise<string> {
  return await new Response(stream).text();
}

Deno.test("replayable body: a body within the kept size replays whole, read partly or fully", async () => {
  const body = new ReplayableBody(source(["ab", "cd", "ef"]), { maxBody: 100, keep: 10 });
  const first = body.stream()!.getReader();
  assert.equal(new TextDecoder().decode((await first.read()).value), "ab");
  first.releaseLock(); // the attempt failed after one chunk
  assert.equal(body.replayable, true);
  assert.equal(await text(body.stream()), "abcdef");
  assert.equal(await text(body.stream()), "abcdef", "and again, from what was kept");
});

Deno.test("replayable body: past the kept size it streams on but cannot be replayed", async () => {
  const body = new ReplayableBody(source(["abcd", "efgh", "ij"]), { maxBody: 100, keep: 6 });
  assert.equal(await text(body.stream()), "abcdefghij");
  assert.equal(body.replayable, false);
  assert.throws(() => body.stream(), /cannot be replayed/);
});

Deno.test("replayable body: an older attempt's stream fails once a newer one took over", async () => {
  const body = new ReplayableBody(source(["ab", "cd"]), { maxBody: 100, keep: 10 });
  const old = body.stream()!;
  const fresh = body.stream()!;
  await assert.rejects(text(old), /newer attempt/);
  assert.equal(await text(fresh), "abcd");
});

Deno.test("replayable body: crossing max_body ends the stream in BodyTooLarge", async () => {
  const body = new ReplayableBody(source(["abcd", "efgh"]), { maxBody: 6, keep: 100 });
  await assert.rejects(text(body.stream()), BodyTooLarge);
  assert.equal(body.tooLarge, true);
  assert.equal(body.replayable, false);
});

Deno.test("replayable body: no body, no stream", () => {
  assert.equal(new ReplayableBody(null, { maxBody: 1, keep: 1 }).stream(), null);
});
