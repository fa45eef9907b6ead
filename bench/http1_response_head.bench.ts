/**
 * Response-head parsing with every framing and field check, against decoding
 * the same head to a string and splitting it with no check at all: the
 * difference is what refusing a desynchronising response costs.
 *
 * @module
 */

import { findHeadEnd, parseResponseHead } from "../src/internal/http1_response_head.ts";

const head = new TextEncoder().encode(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 16:00:00 GMT\r\n" +
    "Content-Type: text/html; charset=utf-8\r\nContent-Length: 5120\r\nConnection: keep-alive\r\n" +
    "Cache-Control: no-cache\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\n\r\n",
);
const decoder = new TextDecoder();

Deno.bench({
  name: "decode and split lines",
  group: "response head",
  baseline: true,
  fn: () => {
    const text = decoder.decode(head);
    const lines = text.slice(0, text.indexOf("\r\n\r\n")).split("\r\n");
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      void [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    }
  },
});

Deno.bench({
  name: "findHeadEnd + parseResponseHead",
  group: "response head",
  fn: () => {
    const end = findHeadEnd(head, 0, 0, head.length);
    void parseResponseHead(head, 0, end);
  },
});
