/** Test helpers: real backends and balancers on ports the OS chooses, and a raw HTTP client. */

import { DEFAULT_POOL, parseConfig } from "../src/config/config.ts";
import type { Pool } from "../src/pools/pool.ts";
import { type Balancer, startBalancer } from "../src/server.ts";

/** A Deno.serve backend on 127.0.0.1 and a port the OS chose. */
export interface TestBackend extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts a backend answering with `handler`, on `port` (0 = any free port). */
export function startBackend(
  handler: Deno.ServeHandler,
  port = 0,
): TestBackend {
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, handler);
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.shutdown();
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A backend holding requests to one path until released. */
export interface HoldingBackend extends TestBackend {
  /** Resolves once a request to the held path arrived. */
  readonly arrived: Promise<void>;
  /** Lets the held requests be answered. */
  release(): void;
}

/** Starts a backend answering `answer`; requests to `path` wait until `release()`. */
export function startHoldingBackend(path: string, answer: string): HoldingBackend {
  const held = Promise.withResolvers<void>();
  const arrival = Promise.withResolvers<void>();
  const backend = startBackend(async (request) => {
    if (new URL(request.url).pathname === path) {
      arrival.resolve();
      await held.promise;
    }
    return new Response(answer);
  });
  return { ...backend, arrived: arrival.promise, release: held.resolve };
}

/** A backend that answers with its own port, for checking the distribution. */
export function startNamedBackend(port = 0): TestBackend {
  const backend: TestBackend = startBackend(() => new Response(String(backend.port)), port);
  return backend;
}

/** A raw TCP backend: `onConnection` gets each accepted connection. */
export interface RawBackend extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
}

export function startRawBackend(onConnection: (conn: Deno.Conn) => Promise<void>): RawBackend {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const conn of listener) {
      const handled = onConnection(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* already closed */ }
        connections.delete(handled);
      });
      connections.add(handled);
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(connections);
    },
  };
}

/**
 * Builds a config from YAML text (listen defaults to 127.0.0.1 and port 0) and
 * starts it; stderr lines go to `log`, access-log lines to `accessLog`.
 */
export function startTestBalancer(
  yaml: string,
  log: (line: string) => void = () => {},
  accessLog: (line: string) => void = () => {},
): Balancer {
  const config = parseConfig(`listen: { host: 127.0.0.1, port: 0 }\n${yaml}`, "test.yaml");
  return startBalancer(config, log, accessLog);
}

/** The balancer's base URL. */
export function baseUrl(balancer: Balancer): string {
  return `http://127.0.0.1:${balancer.addr.port}`;
}

/** YAML for a list of backends. */
export function backendsYaml(urls: string[]): string {
  return `backends:\n${urls.map((url) => `  - url: ${url}\n`).join("")}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A response read off the wire, for checks that fetch would hide. */
export interface RawResponse {
  status: number;
  /** Header lines as sent, names lowercased, in order. */
  headers: [string, string][];
  body: Uint8Array;
}

/**
 * Sends `request` bytes on a new connection to `port` and reads the whole
 * response, which must end with the connection (send `Connection: close`).
 */
export async function rawRequest(port: number, request: string | Uint8Array): Promise<RawResponse> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(typeof request === "string" ? encoder.encode(request) : request);
  const bytes = new Uint8Array(await new Response(conn.readable).arrayBuffer());
  return parseRawResponse(bytes);
}

/** Splits a complete HTTP/1.1 response (Content-Length, chunked or close-delimited). */
export function parseRawResponse(bytes: Uint8Array): RawResponse {
  let end = -1;
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      end = i;
      break;
    }
  }
  if (end === -1) throw new Error(`no complete response head in ${bytes.length} bytes`);
  const [statusLine, ...lines] = decoder.decode(bytes.subarray(0, end)).split("\r\n");
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  let body = bytes.subarray(end + 4);
  if (headers.some(([name, value]) => name === "transfer-encoding" && value === "chunked")) {
    body = decodeChunked(body);
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

function decodeChunked(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  while (true) {
    const lineEnd = bytes.indexOf(10, offset);
    const size = parseInt(decoder.decode(bytes.subarray(offset, lineEnd)), 16);
    if (size === 0) break;
    parts.push(bytes.subarray(lineEnd + 1, lineEnd + 1 + size));
    offset = lineEnd + 1 + size + 2;
  }
  return concat(parts);
}

/** The bytes of `parts`, one after the other. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Every value of header `name` in a raw response. */
export function headerValues(response: RawResponse, name: string): string[] {
  return response.headers.filter(([n]) => n === name).map(([, value]) => value);
}

/** Polls `condition` every 20 ms until it holds, failing after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family: its type, help text and samples. */
export interface MetricFamily {
  type: string;
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Parses the Prometheus text format (0.0.4) strictly: every sample must
 * belong to a family declared by `# HELP` and `# TYPE` before it (histograms
 * through `_bucket`, `_sum` and `_count`), label values must be quoted and
 * escaped, values must be numbers. Throws on anything else.
 */
export function parsePrometheus(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  let current: { name: string; family: MetricFamily } | undefined;
  for (const [index, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment !== null) {
      const [, kind, name, rest] = comment;
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      let family = families.get(name);
      if (family === undefined) {
        family = { type: "untyped", help: "", samples: [] };
        families.set(name, family);
      } else if (current?.name !== name) {
        throw new Error(`family declared twice, ${where}`);
      }
      if (kind === "HELP") family.help = rest;
      else if (["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) {
        family.type = rest;
      } else throw new Error(`bad type, ${where}`);
      current = { name, family };
      continue;
    }
    if (line === "" || line.startsWith("#")) throw new Error(`unexpected line, ${where}`);
    const sample = parseSample(line, where);
    if (current === undefined) throw new Error(`sample before any family, ${where}`);
    const suffixes = current.family.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    if (!suffixes.some((suffix) => sample.name === current!.name + suffix)) {
      throw new Error(`sample outside its family ${current.name}, ${where}`);
    }
    current.family.samples.push(sample);
  }
  return families;
}

function parseSample(line: string, where: string): Sample {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
  if (match === null) throw new Error(`bad sample, ${where}`);
  const [, name, labelText, valueText] = match;
  const labels: Record<string, string> = {};
  if (labelText !== undefined) {
    let rest = labelText.slice(1, -1);
    while (rest !== "") {
      const pair = /^([^=]+)="((?:[^"\\]|\\[\\"n])*)"(,|$)/.exec(rest);
      if (pair === null || !LABEL_NAME.test(pair[1])) throw new Error(`bad labels, ${where}`);
      if (pair[1] in labels) throw new Error(`label repeated, ${where}`);
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      rest = rest.slice(pair[0].length);
    }
  }
  const value = valueText === "+Inf"
    ? Infinity
    : valueText === "-Inf"
    ? -Infinity
    : valueText === "NaN"
    ? NaN
    : Number(valueText);
  if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`bad value, ${where}`);
  return { name, labels, value };
}

/**
 * The value of the one sample named `name` whose labels include `labels`;
 * throws when there is none or more than one.
 */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name.replace(/_(bucket|sum|count)$/, "")) ?? families.get(name);
  const matches = (family?.samples ?? []).filter((sample) =>
    sample.name === name &&
    Object.entries(labels).every(([label, value]) => sample.labels[label] === value)
  );
  if (matches.length !== 1) {
    throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  }
  return matches[0].value;
}

/** GETs `url` and parses the body as JSON; fails on a non-2xx status. */
export async function getJson<T = unknown>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return await response.json() as T;
}

/** The admin API's base URL; the balancer must have an admin section. */
export function adminUrl(balancer: Balancer): string {
  if (balancer.adminAddr === null) throw new Error("the balancer has no admin listener");
  return `http://127.0.0.1:${balancer.adminAddr.port}`;
}

/** YAML for an admin listener on a free loopback port, with `extra` keys (indented by two). */
export function adminYaml(extra = ""): string {
  return `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n${extra}`;
}

/** A child process whose piped output is gathered as text while it runs. */
export interface GatheringProcess {
  readonly child: Deno.ChildProcess;
  /** Everything written to stdout so far ("" when stdout is not piped). */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves once both streams ended. */
  readonly drained: Promise<void>;
  /** Kills the child if it still runs (a failed check leaves it running), then waits for its output to end. */
  finish(): Promise<void>;
}

/**
 * Spawns `command` with `args` (and `env` besides the test's own),
 * gathering stderr (and stdout when `stdout` is "piped").
 */
export function spawnGathering(
  command: string,
  args: string[],
  stdout: "piped" | "null" = "null",
  env: Record<string, string> = {},
): GatheringProcess {
  const child = new Deno.Command(command, { args, stdout, stderr: "piped", env }).spawn();
  const text = { stdout: "", stderr: "" };
  const gather = (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void (text[key] += chunk) }),
    );
  const streams = [gather(child.stderr, "stderr")];
  if (stdout === "piped") streams.push(gather(child.stdout, "stdout"));
  const drained = Promise.all(streams).then(() => {});
  return {
    child,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    drained,
    async finish() {
      try {
        child.kill("SIGKILL");
      } catch { /* it has exited */ }
      await Promise.all([drained, child.status]);
    },
  };
}

/** The `default` pool of a balancer: the top-level `backends`. */
export function defaultPool(balancer: Balancer): Pool {
  const pool = balancer.proxy.pools.get(DEFAULT_POOL);
  if (pool === undefined) throw new Error("the balancer has no default pool");
  return pool;
}

/** Writes `text` the way editors do: a temporary file renamed over the config. */
export async function writeConfig(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

/** The first of `paths` that is a file: where a tool from Debian's packages is installed, if it is. */
export function installedAt(...paths: string[]): string | undefined {
  return paths.find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}
