/**
 * Tests of command-line flag parsing and the help text.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CliError, HELP_TEXT, parseCliArgs } from "../src/cli.ts";

function cli_error(args: string[]): string {
  try {
    parseCliArgs(args);
  } catch (error) {
    assert.ok(error instanceof CliError, `expected a CliError, got ${error}`);
    return error.message;
  }
  assert.fail(`expected ${JSON.stringify(args)} to be rejected`);
}

Deno.test("no flags gives the defaults", () => {
  assert.deepEqual(parseCliArgs([]), { config: "config.yaml", check: false, help: false });
});

Deno.test("every flag, in both value spellings", () => {
  assert.deepEqual(parseCliArgs(["--config", "prod.yaml", "--port", "9000", "--check"]), {
    config: "prod.yaml",
    port: 9000,
    check: true,
    help: false,
  });
  assert.deepEqual(parseCliArgs(["--config=prod.yaml", "--port=9000"]), {
    config: "prod.yaml",
    port: 9000,
    check: false,
    help: false,
  });
  assert.equal(parseCliArgs(["--help"]).help, true);
  assert.equal(parseCliArgs(["-h"]).help, true);
});

Deno.test("a repeated flag keeps its last value", () => {
  assert.equal(parseCliArgs(["--port", "1", "--port", "2"]).port, 2);
});

Deno.test("port bounds 0 and 65535 are accepted", () => {
  assert.equal(parseCliArgs(["--port", "0"]).port, 0);
  assert.equal(parseCliArgs(["--port", "65535"]).port, 65535);
  assert.equal(parseCliArgs(["--port", "08080"]).port, 8080);
});

Deno.test("a port that is not an integer from 0 to 65535 is rejected", () => {
  for (const value of ["65536", "-1", "80.5", "8e3", "0x50", "abc", "", " 80", "99999999"]) {
    assert.equal(
      cli_error(["--port", value]),
      `--port: expected an integer from 0 to 65535, got ${JSON.stringify(value)}`,
    );
  }
});

Deno.test("unknown flags are rejected", () => {
  assert.equal(cli_error(["--prot", "80"]), "unknown flag --prot (see --help)");
  assert.equal(cli_error(["-p", "80"]), "unknown flag -p (see --help)");
  assert.equal(cli_error(["-hx"]), "unknown flag -x (see --help)");
});

Deno.test("a flag missing its value is rejected", () => {
  assert.equal(cli_error(["--config"]), "--config needs a value (see --help)");
  assert.equal(cli_error(["--port"]), "--port needs a value (see --help)");
  assert.equal(
    cli_error(["--config", "--check"]),
    "--config needs a value, got the flag --check (write --config=--check if you mean it)",
  );
  assert.equal(cli_error(["--config="]), '--config: expected a file path, got ""');
});

Deno.test("a boolean flag with a value is rejected", () => {
  assert.equal(cli_error(["--check=yes"]), "--check does not take a value, got --check=yes");
});

Deno.test("positional arguments are rejected", () => {
  assert.equal(cli_error(["config.yaml"]), 'unexpected argument "config.yaml" (see --help)');
  assert.equal(cli_error(["--", "x"]), 'unexpected argument "--" (see --help)');
});

Deno.test("the help text lists every flag with its meaning and default", () => {
  for (const flag of ["--config FILE", "--port N", "--check", "-h, --help"]) {
    assert.ok(HELP_TEXT.includes(flag), `help is missing ${flag}`);
  }
  assert.match(HELP_TEXT, /--config FILE .*\(default: config\.yaml\)/);
  assert.match(HELP_TEXT, /0-65535/);
  assert.match(HELP_TEXT, /default: the config's listen\.port/);
});
