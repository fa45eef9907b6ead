/** Unit tests of CIDR parsing and matching, IPv4 and IPv6. */

import assert from "node:assert/strict";
import { inAnyCidr, parseCidr } from "../src/admin/cidr.ts";

function blocks(...texts: string[]) {
  return texts.map((text) => {
    const block = parseCidr(text);
    assert.ok(block, text);
    return block;
  });
}

Deno.test("cidr: parses IPv4 and IPv6 blocks and bare addresses", () => {
  assert.deepEqual(parseCidr("10.1.2.0/24"), { bytes: new Uint8Array([10, 1, 2, 0]), prefix: 24 });
  assert.equal(parseCidr("192.0.2.7")?.prefix, 32);
  assert.equal(parseCidr("::1")?.prefix, 128);
  assert.deepEqual(parseCidr("fe80::/10")?.bytes.slice(0, 2), new Uint8Array([0xfe, 0x80]));
  assert.deepEqual(
    parseCidr("1:2:3:4:5:6:7:8/64")?.bytes,
    new Uint8Array([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]),
  );
  assert.deepEqual(
    parseCidr("::ffff:10.0.0.1")?.bytes.slice(10),
    new Uint8Array([255, 255, 10, 0, 0, 1]),
  );
});

Deno.test("cidr: rejects what is not a block", () => {
  for (
    const text of [
      "",
      "10.0.0.0/33",
      "10.0.0.0/",
      "10.0.0/8",
      "256.0.0.0/8",
      "01.0.0.0/8",
      "10.0.0.0/-1",
      "::1/129",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7::8",
      "12345::",
      "1.2.3.4::",
      "localhost",
    ]
  ) {
    assert.equal(parseCidr(text), undefined, text);
  }
});

Deno.test("cidr: matches addresses by prefix, IPv4-mapped IPv6 as IPv4", () => {
  const loopback = blocks("127.0.0.0/8", "::1/128");
  assert.equal(inAnyCidr("127.0.0.1", loopback), true);
  assert.equal(inAnyCidr("127.255.1.2", loopback), true);
  assert.equal(inAnyCidr("::1", loopback), true);
  assert.equal(inAnyCidr("::ffff:127.0.0.1", loopback), true);
  assert.equal(inAnyCidr("128.0.0.1", loopback), false);
  assert.equal(inAnyCidr("::2", loopback), false);
  assert.equal(inAnyCidr("", loopback), false);
  const odd = blocks("10.0.0.0/9", "2001:db8::/33", "0.0.0.0/0");
  assert.equal(inAnyCidr("10.127.0.1", odd.slice(0, 1)), true);
  assert.equal(inAnyCidr("10.128.0.1", odd.slice(0, 1)), false);
  assert.equal(inAnyCidr("2001:db8:7fff::1", odd.slice(1, 2)), true);
  assert.equal(inAnyCidr("2001:db8:8000::1", odd.slice(1, 2)), false);
  assert.equal(inAnyCidr("203.0.113.9", odd.slice(2)), true, "/0 matches every IPv4 address");
  assert.equal(inAnyCidr("2001:db8::1", odd.slice(2)), false, "but no IPv6 one");
});
