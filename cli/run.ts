// `oanix run`: one agent, its namespace built from the command line, its output on the terminal.
import { readFileSync } from "node:fs";
import { ProgramError, loadProgram } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn } from "../runtime/process.ts";
import type { StdinReader } from "../runtime/wasi/host.ts";
import { LogsService } from "../services/logs.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import { UsageError, openSource } from "./sources.ts";
import { CAPS_HELP, CAP_FLAGS, addCapFlag, applyCaps, emptyCapArgs, type CapArgs } from "./caps.ts";

export { UsageError };

export const HELP = `oanix run MODULE.wasm [options] [-- ARGS...]

Runs a WASI agent in a namespace of file services. Without mounts it sees /task, /workspace and
/logs in memory; each --mount or --ro replaces the default at its path or adds a new mount point.

Options:
  --mount PATH=SOURCE   mount SOURCE read-write at PATH
  --ro PATH=SOURCE      mount SOURCE read-only at PATH (every write answers EROFS)
  --env KEY=VALUE       set an environment variable for the agent (repeatable)
  --timeout MS          stop the agent after MS milliseconds of wall time (exit status 124)
  --memory MB           cap the agent's linear memory at MB mebibytes (exit status 137)
  -h, --help            show this help
${CAPS_HELP}
Sources:
  mem:                  an empty in-memory tree
  dir:HOSTDIR           a host directory (no way out through .. or symlinks)
  task:SPEC.json        a task: spec.json (read-only), status, result.json
  http://HOST/w/NAME    an edge workspace (see edge/README.md); requests are signed with the key
                        in OANIX_KEY or ~/.config/oanix/key (created on first use), or use a
                        capability token from OANIX_TOKEN

Exit status: the agent's own; 124 timeout, 134 trap, 137 memory limit, 153 output limit,
74 when files could not be flushed on exit (a remote write that did not land);
2 for a usage or setup error (missing module, invalid wasm, bad mount spec).
`;

interface RunArgs {
  module: string;
  mounts: { path: string; source: string; readOnly: boolean }[];
  env: Record<string, string>;
  timeoutMs?: number;
  memoryBytes?: number;
  args: string[];
  caps: CapArgs;
}

export function parseRunArgs(argv: string[]): RunArgs {
  const out: RunArgs = { module: "", mounts: [], env: {}, args: [], caps: emptyCapArgs() };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const positive = (v: string, flag: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} takes a positive number (got "${v}")`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      out.args.push(...argv.slice(i + 1));
      break;
    }
    if (a === "--mount" || a === "--ro") {
      const spec = value(i++, a);
      const eq = spec.indexOf("=");
      if (eq <= 0 || !spec.startsWith("/")) throw new UsageError(`${a} takes /PATH=SOURCE (got "${spec}")`);
      out.mounts.push({ path: spec.slice(0, eq), source: spec.slice(eq + 1), readOnly: a === "--ro" });
    } else if (a === "--env") {
      const kv = value(i++, a);
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new UsageError(`--env takes KEY=VALUE (got "${kv}")`);
      out.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (CAP_FLAGS.has(a)) addCapFlag(out.caps, a, value(i++, a));
    else if (a === "--timeout") out.timeoutMs = positive(value(i++, a), a);
    else if (a === "--memory") out.memoryBytes = positive(value(i++, a), a) * 2 ** 20;
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a} (try oanix run --help)`);
    else if (!out.module) out.module = a;
    else out.args.push(a);
  }
  if (!out.module) throw new UsageError("run needs a MODULE.wasm (try oanix run --help)");
  return out;
}

export async function runCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(HELP);
    return 0;
  }
  const a = parseRunArgs(argv);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(a.module);
  } catch {
    throw new UsageError(`${a.module}: cannot read the module`);
  }
  let program;
  try {
    program = await loadProgram(bytes);
  } catch (e) {
    if (e instanceof ProgramError) throw new UsageError(`${a.module}: ${e.message}`);
    throw e;
  }

  const ns = new Namespace();
  const defaults: Record<string, () => import("../runtime/types.ts").FileService> = {
    "/task": () => new TaskService({}),
    "/workspace": () => new MemService(),
    "/logs": () => new LogsService(),
  };
  const mounted = new Set(a.mounts.map((m) => "/" + m.path.split("/").filter(Boolean).join("/")));
  for (const [path, make] of Object.entries(defaults)) if (!mounted.has(path)) ns.mount(path, make());
  let task: TaskService | undefined;
  for (const m of a.mounts) {
    const src = openSource(m.source, { readOnly: m.readOnly });
    ns.mount(m.path, src.service, { access: m.readOnly ? "ro" : "rw" });
    if (src.task && m.path.replace(/\/+$/, "") === "/task") task = src.task;
  }

  const caps = applyCaps(ns, a.caps);
  task?.setStatus("running");
  const status = await spawn(program, {
    namespace: ns,
    name: a.module,
    args: a.args,
    env: a.env,
    stdin: nodeStdin(),
    limits: { wallTimeMs: a.timeoutMs, memoryBytes: a.memoryBytes },
    onStdout: (b) => process.stdout.write(b),
    onStderr: (b) => process.stderr.write(b),
  });
  caps.close();
  task?.setStatus(status.code === 0 ? "succeeded" : "failed");
  if (status.message) process.stderr.write(`oanix: ${status.message}\n`);
  if (task) {
    try {
      process.stderr.write(`oanix: /task/result.json: ${task.resultText().trim()}\n`);
    } catch {
      // The agent wrote no result.
    }
  }
  return status.code;
}

/** stdin read only when the guest asks, so an idle pipe never blocks the run. */
function nodeStdin(): StdinReader {
  let it: AsyncIterator<Buffer> | null = null;
  let pending = new Uint8Array(0);
  let ended = false;
  return async (max) => {
    if (!pending.length && !ended) {
      it ??= process.stdin[Symbol.asyncIterator]();
      const r = await it.next();
      if (r.done) ended = true;
      else pending = new Uint8Array(r.value);
    }
    const out = pending.subarray(0, max);
    pending = pending.subarray(out.length);
    return out;
  };
}
