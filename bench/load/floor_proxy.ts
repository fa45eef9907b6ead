/**
 * The floor: the cheapest HTTP forwarder on this runtime, for the load
 * benchmark to measure the balancer against (never imported by the
 * product). Deno.serve takes the requests; each backend has a stack of idle
 * Deno.connect connections; the request head goes out in one write and its
 * body is streamed after it; the response is read into the connection's one
 * 64 KiB buffer until its head ends and parsed from one decode; a body that arrived whole
 * is answered as bytes, a longer one streamed; backends are taken in turn.
 * No header rules, health checks, retries, limits or telemetry.
 *
 * `deno run --allow-net floor_proxy.ts PORT BACKEND_PORT...`
 *
 * @module
 */

const [port, ...backendPorts] = Deno.args.map(Number);
/** A kept-alive backend connection and the buffer its responses are read into. */
interface Upstream {
  conn: Deno.TcpConn;
  buffer: Uint8Array;
}
const idle: Upstream[][] = backendPorts.map(() => []);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEAD_BUFFER = 64 * 1024;
let next = 0;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

/** The offset of the blank line that ends a head in `buffer[0, filled)`, or -1. */
function headEnd(buffer: Uint8Array, filled: number): number {
  for (let i = 3; i < filled; i++) {
    if (buffer[i] === 10 && buffer[i - 1] === 13 && buffer[i - 2] === 10 && buffer[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

async function forward(request: Request): Promise<Response> {
  const backend = next;
  next = (next + 1) % backendPorts.length;
  const upstream = idle[backend].pop() ?? {
    conn: await Deno.connect({ hostname: "127.0.0.1", port: backendPorts[backend] }),
    buffer: new Uint8Array(HEAD_BUFFER),
  };
  const { conn, buffer } = upstream;
  const url = request.url;
  let head = `${request.method} ${url.slice(url.indexOf("/", 8))} HTTP/1.1\r\n` +
    `host: 127.0.0.1:${backendPorts[backend]}\r\n`;
  for (const [name, value] of request.headers) {
    if (name !== "host" && name !== "connection") head += `${name}: ${value}\r\n`;
  }
  const chunked = request.body !== null && !request.headers.has("content-length");
  await writeAll(
    conn,
    encoder.encode(`${head}${chunked ? "transfer-encoding: chunked\r\n" : ""}\r\n`),
  );
  if (request.body !== null) {
    for await (const chunk of request.body) {
      if (chunked) await writeAll(conn, encoder.encode(`${chunk.length.toString(16)}\r\n`));
      await writeAll(conn, chunk);
      if (chunked) await writeAll(conn, encoder.encode("\r\n"));
    }
    if (chunked) await writeAll(conn, encoder.encode("0\r\n\r\n"));
  }
  let filled = 0;
  let end = -1;
  while (end === -1) {
    const read = await conn.read(buffer.subarray(filled));
    if (read === null) {
      conn.close();
      return new Response("backend closed", { status: 502 });
    }
    filled += read;
    end = headEnd(buffer, filled);
  }
  const lines = decoder.decode(buffer.subarray(0, end - 4)).split("\r\n");
  const status = Number(lines[0].slice(9, 12));
  const headers = new Headers();
  let length = 0;
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    const name = lines[i].slice(0, colon).toLowerCase();
    const value = lines[i].slice(colon + 1).trim();
    if (name === "content-length") length = Number(value);
    else if (name !== "connection" && name !== "keep-alive") headers.set(name, value);
  }
  const arrived = filled - end;
  if (arrived >= length) {
    const bytes = buffer.slice(end, end + length);
    idle[backend].push(upstream);
    return new Response(bytes, { status, headers });
  }
  let left = length - arrived;
  const first = buffer.slice(end, filled);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(first);
    },
    async pull(controller) {
      const chunk = new Uint8Array(Math.min(left, HEAD_BUFFER));
      const read = await conn.read(chunk);
      if (read === null) {
        conn.close();
        controller.error(new Error("backend closed mid-body"));
        return;
      }
      left -= read;
      controller.enqueue(chunk.subarray(0, read));
      if (left === 0) {
        idle[backend].push(upstream);
        controller.close();
      }
    },
  });
  headers.set("content-length", String(length));
  return new Response(body, { status, headers });
}

Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, forward);
