#!/usr/bin/env node
// The `oanix` command. Exit status: the guest's own, 124 (timeout), 134 (trap), 137 (memory),
// 153 (output limit), 2 for a usage or setup error (one line on stderr).
import { HELP, UsageError, runCommand } from "./run.ts";
import { planCommand } from "./plan.ts";

const [cmd, ...rest] = process.argv.slice(2);
let code: number;
try {
  if (cmd === "run") code = await runCommand(rest);
  else if (cmd === "plan") code = await planCommand(rest);
  else if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(HELP);
    code = cmd === undefined ? 2 : 0;
  } else throw new UsageError(`unknown command "${cmd}" (try oanix --help)`);
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  process.stderr.write(`oanix: ${e.message}\n`);
  code = 2;
}
// Let buffered output reach the terminal, then stop even if stdin is still open.
await new Promise((r) => process.stdout.write("", r));
process.exit(code);
