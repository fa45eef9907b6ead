/**
 * Command-line entry point: `deno task start [--config FILE] [--port N] [--check]`.
 *
 * @module
 */

import { HELP_TEXT, parseCliArgs } from "./src/cli.ts";
import {
  ConfigError,
  formatAddress,
  listenClash,
  loadConfig,
  summarizeConfig,
} from "./src/config/config.ts";
import { exitOnSignals, startBalancer } from "./src/server.ts";

/** Runs the command; resolves to an exit status, or undefined while the balancer serves. */
async function main(args: string[]): Promise<number | undefined> {
  let options;
  try {
    options = parseCliArgs(args);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${HELP_TEXT}`);
    return 2;
  }
  if (options.help) {
    console.log(HELP_TEXT);
    return 0;
  }
  let config;
  try {
    config = await loadConfig(options.config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 2;
  }
  if (options.port !== undefined) config.listen.port = options.port;
  if (listenClash(config.listen, config.admin.listen) !== undefined) {
    const admin = formatAddress(config.admin.listen!);
    console.error(
      `--port: ${config.listen.port} is the admin listener's port (admin.listen ${admin})`,
    );
    return 2;
  }
  if (options.check) {
    console.log(summarizeConfig(config));
    return 0;
  }
  try {
    const balancer = startBalancer(config);
    balancer.reloader.watch(options.config, (next) => {
      if (options.port !== undefined) next.listen.port = options.port;
    });
    exitOnSignals(balancer);
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
  return undefined;
}

const status = await main(Deno.args);
if (status !== undefined) Deno.exit(status);
