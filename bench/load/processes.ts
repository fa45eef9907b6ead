/**
 * Child processes of the load benchmark: every one is spawned through a
 * {@linkcode Supervisor}, which logs its stderr to a file and can stop all of
 * them at the end, on an error or on Ctrl-C, so none is left behind.
 *
 * @module
 */

/** A long-running child (backend, balancer, HAProxy, nginx). */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Where its stderr goes. */
  readonly logPath: string;
  /** Resolves when it exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL (with its children) if it is still running 5 s later. */
  stop(): Promise<void>;
}

/** What a bounded command printed. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
}

const STOP_GRACE_MS = 5000;

/**
 * Spawns children and remembers the running ones until they are stopped.
 * Once {@linkcode Supervisor.stopAll} was called it spawns nothing more.
 */
export class Supervisor {
  readonly #running = new Set<{ stop(): Promise<void> }>();
  #closed = false;

  /** `logDir` receives one `<name>.log` per spawned process. */
  constructor(readonly logDir: string) {}

  /** Starts a long-running process; its stdout is discarded, its stderr logged. */
  spawn(name: string, command: string, args: string[], cwd?: string): ManagedProcess {
    this.#assertOpen();
    const child = new Deno.Command(command, {
      args,
      cwd,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const logPath = `${this.logDir}/${name}.log`;
    const logged = Deno.open(logPath, { write: true, create: true, truncate: true })
      .then((file) => child.stderr.pipeTo(file.writable))
      .catch(() => {});
    const exited = child.status.then(async (status) => {
      await logged;
      return status;
    });
    const managed: ManagedProcess = {
      name,
      pid: child.pid,
      logPath,
      exited,
      stop: async () => {
        await stopChild(child, exited);
        this.#running.delete(managed);
      },
    };
    this.#running.add(managed);
    exited.then(() => this.#running.delete(managed));
    return managed;
  }

  /** Runs a command to completion, killing it after `timeoutMs`. */
  async run(command: string, args: string[], timeoutMs: number): Promise<CommandOutput> {
    this.#assertOpen();
    const child = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const entry = { stop: () => stopChild(child, child.status) };
    this.#running.add(entry);
    const timer = setTimeout(() => signalQuietly(() => child.kill("SIGKILL")), timeoutMs);
    try {
      const output = await child.output();
      const decoder = new TextDecoder();
      return { stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
    } finally {
      clearTimeout(timer);
      this.#running.delete(entry);
    }
  }

  /** Stops every process still running and refuses to start new ones. */
  async stopAll(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#running].map((process) => process.stop()));
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error("stopping: no new process is started");
  }
}

async function stopChild(
  child: Deno.ChildProcess,
  exited: Promise<Deno.CommandStatus>,
): Promise<void> {
  const children = childPids(child.pid);
  signalQuietly(() => child.kill("SIGTERM"));
  if (await settlesWithin(exited, STOP_GRACE_MS)) return;
  signalQuietly(() => child.kill("SIGKILL"));
  for (const pid of children) signalQuietly(() => Deno.kill(pid, "SIGKILL"));
  await exited;
}

function signalQuietly(send: () => void): void {
  try {
    send();
  } catch {
    // it exited already
  }
}

/**
 * The processes that do a proxy's work: its children when it has some
 * (nginx's workers, not its master), else itself.
 */
export function workingPids(pid: number): number[] {
  const children = childPids(pid);
  return children.length > 0 ? children : [pid];
}

/** The direct children of `pid` (e.g. nginx's workers), from /proc. */
function childPids(pid: number): number[] {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`);
    return text.trim().split(/\s+/).filter((item) => item !== "").map(Number);
  } catch {
    return [];
  }
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

/**
 * Waits until 127.0.0.1:`port` accepts connections. Throws, quoting the end of
 * the process's log, when it exits first or `timeoutMs` passes.
 */
export async function waitForPort(
  process: ManagedProcess,
  port: number,
  timeoutMs = 15_000,
): Promise<void> {
  let exited = false;
  process.exited.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  while (!exited && Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(50);
    }
  }
  const why = exited ? "exited" : `did not listen on port ${port} within ${timeoutMs} ms`;
  throw new Error(`${process.name} ${why}: ${await logTail(process.logPath)}`);
}

/** The last lines of a log file, on one line, for error messages. */
export async function logTail(path: string, lines = 5): Promise<string> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return text === "" ? "(empty log)" : text.split("\n").slice(-lines).join(" | ");
  } catch {
    return "(no log)";
  }
}
