/**
 * Command-line flags of the balancer: parsing, validation and the help text.
 *
 * @module
 */

import { parseArgs } from "node:util";

/**
 * What the command line asked for.
 *
 * @example
 * ```ts
 * const options: CliOptions = { config: "config.yaml", check: false, help: false };
 * ```
 */
export interface CliOptions {
  /** Path of the YAML config file. */
  config: string;
  /** Overrides `listen.port` from the config when set. */
  port?: number;
  /** Validate the config, print a summary and exit. */
  check: boolean;
  /** Print {@linkcode HELP_TEXT} and exit. */
  help: boolean;
}

/**
 * A command line that could not be understood; the message says which flag and why.
 *
 * @example
 * ```ts
 * try {
 *   parseCliArgs(["--prot", "80"]);
 * } catch (error) {
 *   if (error instanceof CliError) console.error(error.message); // unknown flag --prot (see --help)
 * }
 * ```
 */
export class CliError extends Error {
  override readonly name = "CliError";
}

/**
 * The `--help` text: every flag with its meaning and default.
 *
 * @example
 * ```ts
 * console.log(HELP_TEXT);
 * ```
 */
export const HELP_TEXT = `Usage: deno task start [options]

An HTTP load balancer configured by a YAML file.

Options:
  --config FILE  Config file to load (default: config.yaml)
  --port N       Listen on port N (0-65535) instead of the config's listen.port
                 (default: the config's listen.port, itself 8080 when unset)
  --check        Validate the config, print a summary (one line, and one more
                 per pool and route when it has them) and exit
                 (exit code 0 if valid, 2 if not; default: off)
  -h, --help     Show this help and exit (default: off)`;

const OPTIONS = {
  config: { type: "string" },
  port: { type: "string" },
  check: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * Parses the balancer's command-line flags (e.g. `Deno.args`). Throws
 * {@linkcode CliError} on an unknown flag, a positional argument, a missing
 * value or an invalid port. A repeated flag keeps its last value.
 *
 * @example
 * ```ts
 * parseCliArgs(["--config", "prod.yaml", "--port=9000"]);
 * // { config: "prod.yaml", check: false, help: false, port: 9000 }
 * parseCliArgs([]); // { config: "config.yaml", check: false, help: false }
 * ```
 */
export function parseCliArgs(args: string[]): CliOptions {
  // Non-strict parsing yields tokens for everything, so this module words every error itself.
  const { tokens } = parseArgs({
    args,
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: { config?: string; port?: string; check?: boolean; help?: boolean } = {};
  for (const token of tokens) {
    if (token.kind === "positional") {
      throw new CliError(`unexpected argument ${JSON.stringify(token.value)} (see --help)`);
    }
    if (token.kind === "option-terminator") {
      throw new CliError('unexpected argument "--" (see --help)');
    }
    if (!Object.hasOwn(OPTIONS, token.name)) {
      throw new CliError(`unknown flag ${token.rawName} (see --help)`);
    }
    const name = token.name as keyof typeof OPTIONS;
    if (OPTIONS[name].type === "boolean") {
      if (token.value !== undefined) {
        throw new CliError(
          `${token.rawName} does not take a value, got ${token.rawName}=${token.value}`,
        );
      }
      values[name as "check" | "help"] = true;
      continue;
    }
    const flag = `--${name}`;
    if (token.value === undefined) throw new CliError(`${flag} needs a value (see --help)`);
    if (!token.inlineValue && /^-[-a-zA-Z]/.test(token.value)) {
      throw new CliError(
        `${flag} needs a value, got the flag ${token.value} (write ${flag}=${token.value} if you mean it)`,
      );
    }
    values[name as "config" | "port"] = token.value;
  }

  const config = values.config ?? "config.yaml";
  if (config === "") throw new CliError('--config: expected a file path, got ""');
  const options: CliOptions = { config, check: values.check ?? false, help: values.help ?? false };
  if (values.port !== undefined) options.port = parsePort(values.port);
  return options;
}

function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port <= 65535)) {
    throw new CliError(`--port: expected an integer from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return port;
}
