/**
 * CIDR blocks, IPv4 and IPv6, and matching client addresses against them.
 * An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) matches IPv4 blocks.
 *
 * @module
 */

/**
 * One address block: the network's bytes (4 or 16) and the prefix length.
 *
 * @example
 * ```ts
 * const block: Cidr = parseCidr("10.0.0.0/8")!; // { bytes: [10, 0, 0, 0], prefix: 8 }
 * ```
 */
export interface Cidr {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/**
 * Parses `10.0.0.0/8`, `::1/128` or a bare address (a block of one). Returns
 * undefined when the text is not a block.
 *
 * @example
 * ```ts
 * parseCidr("127.0.0.0/8"); // { bytes: Uint8Array [127, 0, 0, 0], prefix: 8 }
 * parseCidr("fd00::/8")?.prefix; // 8
 * parseCidr("127.0.0.0/33"); // undefined
 * ```
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const bytes = parseAddress(slash === -1 ? text : text.slice(0, slash));
  if (bytes === undefined) return undefined;
  const bits = bytes.length * 8;
  if (slash === -1) return { bytes, prefix: bits };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return undefined;
  return { bytes, prefix: Number(prefixText) };
}

/**
 * Whether `address` (as Deno reports a client, e.g. `127.0.0.1` or `::1`)
 * lies in any of `blocks`.
 *
 * @example
 * ```ts
 * const loopback = [parseCidr("127.0.0.0/8")!, parseCidr("::1/128")!];
 * inAnyCidr("127.0.0.1", loopback); // true
 * inAnyCidr("::ffff:127.0.0.2", loopback); // true
 * inAnyCidr("192.0.2.1", loopback); // false
 * ```
 */
export function inAnyCidr(address: string, blocks: readonly Cidr[]): boolean {
  const bytes = parseAddress(address);
  if (bytes === undefined) return false;
  const plain = unmapIpv4(bytes);
  return blocks.some((block) => contains(block, plain));
}

function contains(block: Cidr, bytes: Uint8Array): boolean {
  if (block.bytes.length !== bytes.length) return false;
  let bits = block.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((block.bytes[i] & mask) !== (bytes[i] & mask)) return false;
  }
  return true;
}

/** `::ffff:a.b.c.d` as the 4 bytes of `a.b.c.d`; any other address unchanged. */
function unmapIpv4(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16 || bytes[10] !== 0xff || bytes[11] !== 0xff) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  return bytes.subarray(12);
}

function parseAddress(text: string): Uint8Array | undefined {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^(0|[1-9]\d{0,2})$/.test(parts[i]) || Number(parts[i]) > 255) return undefined;
    bytes[i] = Number(parts[i]);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 1 || halves[1] === "" ? [] : halves[1].split(":");
  const groups: number[] = [];
  const parts = [...head, ...tail];
  // An IPv4 tail (`::ffff:127.0.0.1`) may only end the address, never precede `::`.
  const ipv4At = halves.length === 1 || tail.length > 0 ? parts.length - 1 : -1;
  for (const [index, part] of parts.entries()) {
    if (index === ipv4At && part.includes(".")) {
      const ipv4 = parseIpv4(part);
      if (ipv4 === undefined) return undefined;
      groups.push((ipv4[0] << 8) | ipv4[1], (ipv4[2] << 8) | ipv4[3]);
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  const headGroups = groups.length - (halves.length === 2 ? groupCount(tail) : 0);
  const missing = 8 - groups.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const full = [
    ...groups.slice(0, headGroups),
    ...new Array(halves.length === 2 ? missing : 0).fill(0),
    ...groups.slice(headGroups),
  ];
  const bytes = new Uint8Array(16);
  full.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** 16-bit groups a list of IPv6 parts stands for: an IPv4 tail counts two. */
function groupCount(parts: string[]): number {
  return parts.reduce((count, part) => count + (part.includes(".") ? 2 : 1), 0);
}
