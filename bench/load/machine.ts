/**
 * What the load benchmark ran on: the machine, and which external tools are
 * installed with their versions.
 *
 * @module
 */

/** Versions of the external tools found; a missing tool is undefined. */
export interface Tools {
  wrk?: string;
  hey?: string;
  haproxy?: string;
  nginx?: string;
}

/** The machine, for the report and the JSON file. */
export interface Machine {
  nproc: number;
  cpuModel: string;
  kernel: string;
  deno: string;
}

/** Finds wrk, hey, haproxy and nginx on the PATH. */
export async function detectTools(): Promise<Tools> {
  const [wrk, hey, haproxy, nginx] = await Promise.all([
    version("wrk", ["--version"], /^wrk (?:\S+\/)?(\S+)/m),
    version("hey", ["-h"], /^hey (\S+)/m),
    version("haproxy", ["-v"], /HAProxy version (\S+)/),
    version("nginx", ["-v"], /nginx\/(\S+)/),
  ]);
  return { wrk, hey, haproxy, nginx };
}

/** The tool's version, "installed" when it prints none, undefined when it is missing. */
async function version(
  command: string,
  args: string[],
  pattern: RegExp,
): Promise<string | undefined> {
  try {
    const output = await new Deno.Command(command, { args, stdin: "null" }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    return pattern.exec(text)?.[1] ?? "installed";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Cores, CPU model, kernel and Deno version. */
export async function machineInfo(): Promise<Machine> {
  const cpuinfo = await readOr("/proc/cpuinfo");
  return {
    nproc: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1].trim() ?? "unknown",
    kernel: (await readOr("/proc/sys/kernel/osrelease")).trim() || "unknown",
    deno: Deno.version.deno,
  };
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}
