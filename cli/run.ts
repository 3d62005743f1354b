// `oanix run`: one agent, its namespace built from the command line (or from the edge's registry
// entry for an agent id), its output on the terminal.
import type { Program } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn, type SpawnOptions } from "../runtime/process.ts";
import type { FileService } from "../runtime/types.ts";
import type { StdinReader } from "../runtime/wasi/host.ts";
import { LogsService } from "../services/logs.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import type { CapArgs } from "./caps.ts";
import { stderr, stdout } from "./output.ts";
import { UnreadableModule, loadProgramFile } from "./program-cache.ts";
import type { Source } from "./sources.ts";
import { UsageError, cacheDir } from "./usage.ts";

export { UsageError };

export interface MountArg {
  path: string;
  source: string;
  readOnly: boolean;
}

export interface RunArgs {
  module: string;
  mounts: MountArg[];
  env: Record<string, string>;
  timeoutMs?: number;
  memoryBytes?: number;
  trace: boolean;
  agent?: string;
  edge?: string;
  args: string[];
  /** --cap, --budget, --secret and --wallet as given: cli/caps.ts parses them, loaded only when there are any. */
  capFlags: Array<[flag: string, value: string]>;
}

/** The capability flags (their help and meaning are cli/caps.ts's). */
const CAP_FLAGS = new Set(["--cap", "--budget", "--secret", "--wallet"]);

/** One option of `oanix run`: its value's name (absent for a switch), its help, what it sets. */
export interface RunFlag {
  value?: string;
  help: string;
  apply(out: RunArgs, value: string, flag: string): void;
}

const positive = (v: string, flag: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} takes a positive number (got "${v}")`);
  return n;
};

const mount = (readOnly: boolean) => (out: RunArgs, spec: string, flag: string): void => {
  const eq = spec.indexOf("=");
  if (eq <= 0 || !spec.startsWith("/")) throw new UsageError(`${flag} takes /PATH=SOURCE (got "${spec}")`);
  out.mounts.push({ path: spec.slice(0, eq), source: spec.slice(eq + 1), readOnly });
};

/** The options of `oanix run`; other files add theirs here (the help lists them all). */
export const RUN_FLAGS: Record<string, RunFlag> = {
  "--mount": { value: "PATH=SOURCE", help: "mount SOURCE read-write at PATH", apply: mount(false) },
  "--ro": { value: "PATH=SOURCE", help: "mount SOURCE read-only at PATH (every write answers EROFS)", apply: mount(true) },
  "--env": {
    value: "KEY=VALUE", help: "set an environment variable for the agent (repeatable)",
    apply(out, kv) {
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new UsageError(`--env takes KEY=VALUE (got "${kv}")`);
      out.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    },
  },
  "--timeout": { value: "MS", help: "stop the agent after MS milliseconds of wall time (exit status 124)", apply: (o, v, f) => void (o.timeoutMs = positive(v, f)) },
  "--memory": { value: "MB", help: "cap the agent's linear memory at MB mebibytes (exit status 137)", apply: (o, v, f) => void (o.memoryBytes = positive(v, f) * 2 ** 20) },
  "--agent": {
    value: "ID", help: "mount what the edge's registry lists for agent ID (PUT /registry/ID)",
    apply(o, v) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(v)) throw new UsageError(`--agent takes an agent id (letters, digits, . _ -; got "${v}")`);
      o.agent = v;
    },
  },
  "--edge": { value: "URL", help: "the edge holding the registry (default $OANIX_EDGE or http://127.0.0.1:8787)", apply: (o, v) => void (o.edge = v) },
  "--trace": { help: "print each system call (arguments, result, errno) on stderr; or OANIX_TRACE=1", apply: (o) => void (o.trace = true) },
};

export function help(capsHelp: string): string {
  const opts = Object.entries(RUN_FLAGS).map(([name, f]) => {
    const left = `  ${name}${f.value ? ` ${f.value}` : ""}`;
    return `${left.padEnd(24)}${left.length >= 24 ? "\n" + " ".repeat(24) : ""}${f.help}`;
  });
  return `oanix run MODULE.wasm [options] [-- ARGS...]

Runs a WASI agent in a namespace of file services. Without mounts it sees /task, /workspace and
/logs in memory; each --mount or --ro replaces the default at its path or adds a new mount point.

Options:
${opts.join("\n")}
  -h, --help            show this help
${capsHelp}
Sources:
  mem:                  an empty in-memory tree
  dir:HOSTDIR           a host directory (no way out through .. or symlinks)
  task:SPEC.json        a task: spec.json (read-only), status, result.json
  http://HOST/w/NAME    an edge workspace (see edge/README.md); requests are signed with the key
                        in OANIX_KEY or ~/.config/oanix/key (created on first use), or use a
                        capability token from OANIX_TOKEN. A read-only mount never creates it.

A failing mount (refused, unreachable) is said once on stderr, naming the mount.

Exit status: the agent's own; 124 timeout, 134 trap, 137 memory limit, 153 output limit,
74 when files could not be flushed on exit (a remote write that did not land);
2 for a usage or setup error (missing module, invalid wasm, bad mount spec, bad key, a mount
that cannot be reached).
`;
}

export function parseRunArgs(argv: string[]): RunArgs {
  const out: RunArgs = { module: "", mounts: [], env: {}, trace: false, args: [], capFlags: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      out.args.push(...argv.slice(i + 1));
      break;
    }
    const flag = Object.hasOwn(RUN_FLAGS, a) ? RUN_FLAGS[a] : undefined;
    if (flag) {
      let v = "";
      if (flag.value) {
        const next = argv[++i];
        if (next === undefined) throw new UsageError(`${a} needs a value`);
        v = next;
      }
      flag.apply(out, v, a);
    } else if (CAP_FLAGS.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      out.capFlags.push([a, v]);
    } else if (a.startsWith("-")) throw new UsageError(`unknown option ${a} (try oanix run --help)`);
    else if (!out.module) out.module = a;
    else out.args.push(a);
  }
  if (!out.module) throw new UsageError("run needs a MODULE.wasm (try oanix run --help)");
  return out;
}

const say = (line: string): void => stderr(`oanix: ${line}\n`);

export async function runCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    stdout(help((await import("./caps.ts")).CAPS_HELP));
    return 0;
  }
  const a = parseRunArgs(argv);
  const capArgs = a.capFlags.length ? (await import("./caps.ts")).parseCapFlags(a.capFlags) : undefined;
  if (process.env.OANIX_TRACE === "1") a.trace = true;
  let program: Program;
  try {
    program = await loadProgramFile(a.module, cacheDir());
  } catch (e) {
    if (e instanceof UnreadableModule || e instanceof (await import("../runtime/modules.ts")).ProgramError) throw new UsageError(`${a.module}: ${e.message}`);
    throw e;
  }

  const mounts = [...a.mounts];
  if (a.agent) {
    // The registry's mounts, except where the command line mounts something at the same path.
    const { registryMounts } = await import("./registry.ts");
    const given = new Set(a.mounts.map((m) => normPath(m.path)));
    mounts.unshift(...(await registryMounts(a.agent, a.edge)).filter((m) => !given.has(normPath(m.path))));
  }
  const { ns, task } = await buildNamespace(mounts, a.agent ? `agent ${a.agent}: ` : "");

  // Any capability flag applies them (flags that need another, such as --wallet without --cap nostr, are usage errors there).
  const caps = capArgs ? await (await import("./cap-grants.ts")).applyCaps(ns, capArgs) : undefined;
  task?.setStatus("running");
  const options: SpawnOptions = {
    namespace: ns,
    name: a.module,
    args: a.args,
    env: a.env,
    stdin: nodeStdin(),
    limits: { wallTimeMs: a.timeoutMs, memoryBytes: a.memoryBytes },
    onStdout: stdout,
    onStderr: stderr,
    ...(a.trace ? { trace: (line: string) => stderr(`${line}\n`) } : {}),
  };
  const status = await spawn(program, options);
  caps?.close();
  if (a.mounts.length || a.agent) await (await import("./report.ts")).allSaid();
  task?.setStatus(status.code === 0 ? "succeeded" : "failed");
  if (status.message) say(status.message);
  if (task) {
    try {
      say(`/task/result.json: ${task.resultText().trim()}`);
    } catch {
      // The agent wrote no result.
    }
  }
  return status.code;
}

const DEFAULTS: Record<string, () => FileService> = {
  "/task": () => new TaskService({}),
  "/workspace": () => new MemService(),
  "/logs": () => new LogsService(),
};

const normPath = (p: string): string => "/" + p.split("/").filter(Boolean).join("/");

/**
 * The namespace: in-memory defaults where nothing is mounted, then the given mounts. Edge mounts
 * report their failures on stderr (once each) and are probed before the guest starts.
 */
async function buildNamespace(mounts: MountArg[], context: string): Promise<{ ns: Namespace; task?: TaskService }> {
  const ns = new Namespace();
  const mounted = new Set(mounts.map((m) => normPath(m.path)));
  for (const [path, make] of Object.entries(DEFAULTS)) if (!mounted.has(path)) ns.mount(path, make());
  if (!mounts.length) return { ns };
  const [{ openSource }, { reportingFailures }] = await Promise.all([import("./sources.ts"), import("./report.ts")]);
  const opened: Array<{ m: MountArg; src: Source }> = [];
  for (const m of mounts) opened.push({ m, src: await openSource(m.source, { readOnly: m.readOnly }) });

  let task: TaskService | undefined;
  const probes: Promise<void>[] = [];
  for (const { m, src } of opened) {
    let service = src.service;
    if (src.remote) {
      const label = `${context}${normPath(m.path)} (${src.remote.url})`;
      const { accessHint } = await import("./access.ts");
      service = reportingFailures(service, { label, say, hint: (e) => accessHint(e, src.remote!) });
      probes.push(src.remote.probe(service).catch((e: Error & { code?: string }) => {
        // Unreachable, or a read-only mount of a workspace that does not exist: nothing to run on.
        if (e.code === "ECONNREFUSED" || (e.code === "ENOENT" && m.readOnly)) throw new UsageError(`${label}: ${e.message}`);
        // A refusal was said by the reporter (the probe went through it); the guest meets it as an errno.
      }));
    }
    ns.mount(m.path, service, { access: m.readOnly ? "ro" : "rw" });
    if (src.task && normPath(m.path) === "/task") task = src.task;
  }
  try {
    await Promise.all(probes);
  } finally {
    await (await import("./report.ts")).allSaid();
  }
  return { ns, task };
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
