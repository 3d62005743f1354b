// The `oanix` command: dispatches to one file per command, imported only when that command runs
// (a plain `oanix run` never loads the edge client, nostr or the key). Exit status: the command's
// own; 2 for a usage or setup error and 1 for a failure, each with one line on stderr.
import { stderr, stdout } from "./output.ts";
import { CommandError, UsageError } from "./usage.ts";

interface Command {
  command(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  run: () => import("./run.ts").then((m) => ({ command: m.runCommand })),
  ws: () => import("./ws.ts").then((m) => ({ command: m.wsCommand })),
  serve: () => import("./serve.ts").then((m) => ({ command: m.serveCommand })),
  job: () => import("./job.ts").then((m) => ({ command: m.jobCommand })),
  wallet: () => import("./wallet.ts").then((m) => ({ command: m.walletCommand })),
  plan: () => import("./plan.ts").then((m) => ({ command: m.planCommand })),
};

const HELP = `oanix COMMAND [options]

Commands:
  run MODULE.wasm   run a WASI agent in a namespace of file services (oanix run --help)
  ws SUBCOMMAND     workspaces on an edge: create, ls, cat, put, get, rm, mv, versions, snapshot,
                    fork, grant, grants, revoke, audit (oanix ws --help)
  serve             serve NIP-90 jobs by running agents (oanix serve --help)
  job               ask for a NIP-90 job and print its result (oanix job --help)
  wallet            a local NIP-47 wallet-connect wallet with a ledger file (oanix wallet --help)
  plan "IDEA"       a planning run: phases as agents, review loops, the kill test (oanix plan --help)

Environment: OANIX_KEY (your nostr secret key; default ~/.config/oanix/key), OANIX_EDGE (the edge,
default http://127.0.0.1:8787), OANIX_TOKEN (a capability token), OANIX_TRACE=1 (print syscalls),
OANIX_CACHE_DIR (default ~/.cache/oanix).
`;

const [cmd, ...rest] = process.argv.slice(2);
let code: number;
try {
  const load = cmd === undefined ? undefined : Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (load) code = await (await load()).command(rest);
  else if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    stdout(HELP);
    code = cmd === undefined ? 2 : 0;
  } else throw new UsageError(`unknown command "${cmd}" (try oanix --help)`);
} catch (e) {
  if (e instanceof UsageError) code = 2;
  else if (e instanceof CommandError) code = 1;
  else throw e;
  stderr(`oanix: ${e.message}\n`);
}
// Output is written synchronously (cli/output.ts): stop now, even if stdin is still open.
process.exit(code);
