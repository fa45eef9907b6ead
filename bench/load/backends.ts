/**
 * The three backends every setup forwards to, each answering every scenario
 * (see `scenarios.ts`): one nginx process with three `server` blocks, or, when
 * nginx is not installed, one Deno process listening on three ports.
 *
 * @module
 */

import { startNginx } from "./nginx.ts";
import { freePort, type ManagedProcess, type Supervisor, waitForPort } from "./processes.ts";
import { largeBody, SCENARIOS, SMALL_BODY } from "./scenarios.ts";

/** The running backends. */
export interface Backends {
  /** For the report, e.g. "nginx 1.22.1, 3 servers in 1 worker". */
  description: string;
  ports: number[];
  process: ManagedProcess;
}

const BACKEND_COUNT = 3;

/** Starts nginx backends when `nginxVersion` is set, else Deno ones. */
export async function startBackends(
  supervisor: Supervisor,
  dir: string,
  nginxVersion: string | undefined,
): Promise<Backends> {
  const ports = Array.from({ length: BACKEND_COUNT }, freePort);
  const process = nginxVersion === undefined
    ? startDenoBackends(supervisor, ports)
    : await startNginxBackends(supervisor, dir, ports);
  await Promise.all(ports.map((port) => waitForPort(process, port)));
  const description = nginxVersion === undefined
    ? `Deno.serve (nginx not installed), ${BACKEND_COUNT} ports in 1 process`
    : `nginx ${nginxVersion}, ${BACKEND_COUNT} servers in 1 worker`;
  return { description, ports, process };
}

async function startNginxBackends(
  supervisor: Supervisor,
  dir: string,
  ports: number[],
): Promise<ManagedProcess> {
  const www = `${dir}/www`;
  await Deno.mkdir(www, { mode: 0o755 });
  await Deno.writeTextFile(`${www}/small.bin`, SMALL_BODY, { mode: 0o644 });
  await Deno.writeFile(`${www}/large.bin`, largeBody(), { mode: 0o644 });
  return await startNginx(supervisor, dir, "backends", [
    "sendfile on;",
    "tcp_nopush on;",
    "keepalive_requests 1000000;",
    "client_body_buffer_size 128k;",
    "client_max_body_size 1m;",
    "default_type application/octet-stream;",
    ...ports.flatMap((port) => nginxServer(port, www)),
  ]);
}

/**
 * One backend server. `/post` must read the whole body before answering, as
 * an application would: a plain `return` answers at once and discards the
 * body afterwards. `mirror` reads the body first (its subrequest is a no-op);
 * the static handler then refuses the POST with 405, which `error_page` turns
 * into the 16-byte answer of `/small`.
 */
function nginxServer(port: number, www: string): string[] {
  return [
    "server {",
    `  listen 127.0.0.1:${port};`,
    `  location = ${SCENARIOS.small.path} { return 200 "${SMALL_BODY}"; }`,
    `  location = ${SCENARIOS.large.path} { alias ${www}/large.bin; }`,
    `  location = ${SCENARIOS.post.path} {`,
    "    mirror /read-body;",
    `    error_page 405 =200 ${SCENARIOS.small.path};`,
    `    alias ${www}/small.bin;`,
    "  }",
    "  location = /read-body { internal; return 204; }",
    "}",
  ];
}

function startDenoBackends(supervisor: Supervisor, ports: number[]): ManagedProcess {
  const script = new URL("./deno_backend.ts", import.meta.url).pathname;
  return supervisor.spawn("backends", Deno.execPath(), [
    "run",
    "--allow-net=127.0.0.1",
    script,
    ...ports.map(String),
  ]);
}
