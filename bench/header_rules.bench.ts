/**
 * Cost of the header rules on a typical browser request and backend
 * response, against reading the same headers unchanged.
 *
 * @module
 */

import { clientHeaders, upstreamHeaders } from "../src/internal/header_rules.ts";
import type { HeaderPairs } from "../src/types.ts";

const requestHeaders = new Headers({
  host: "app.example.com",
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
  accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "accept-encoding": "gzip, deflate, br",
  "accept-language": "en-US,en;q=0.9",
  cookie: "session=abc123; lb_backend=1a2b3c4d",
  connection: "keep-alive",
});
const responseHeaders: HeaderPairs = [
  ["content-type", "text/html; charset=utf-8"],
  ["content-length", "5120"],
  ["cache-control", "no-cache"],
  ["date", "Fri, 27 Nov 2026 16:00:00 GMT"],
  ["keep-alive", "timeout=5"],
  ["connection", "keep-alive"],
  ["set-cookie", "a=1; Path=/"],
  ["set-cookie", "b=2; Path=/"],
];
const client = {
  address: "127.0.0.1",
  proto: "http" as const,
  requestId: "9f86d081-1",
  authority: "lb.test",
};

Deno.bench({
  name: "iterate request headers",
  group: "request headers",
  baseline: true,
  fn: () => void [...requestHeaders],
});
Deno.bench({
  name: "upstreamHeaders",
  group: "request headers",
  fn: () => void upstreamHeaders(requestHeaders, client),
});
Deno.bench({
  name: "copy response header pairs",
  group: "response headers",
  baseline: true,
  fn: () => void responseHeaders.slice(),
});
Deno.bench({
  name: "clientHeaders",
  group: "response headers",
  fn: () => void clientHeaders(responseHeaders),
});
