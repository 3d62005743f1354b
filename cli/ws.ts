// `oanix ws`: workspaces on an edge over its HTTP API (edge/README.md), signed with the CLI key
// (NIP-98, services/nip98.ts) or OANIX_TOKEN, so nobody hand-signs requests. One line on stderr
// for a failure (exit 1) or a usage error (exit 2); --json prints the edge's answer as JSON.
import { createWriteStream, readFileSync, renameSync, rmSync } from "node:fs";
import { basename } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decodeFrame, encodeFrame, FRAME_TYPE } from "../services/remote-wire.ts";
import { edgeCredential } from "./credentials.ts";
import { stdout } from "./output.ts";
import { EdgeClient, edgeError, edgeOrigin } from "./edge-client.ts";
import { CommandError, UsageError } from "./usage.ts";

interface Sub {
  usage: string;
  help: string;
  /** Options this subcommand takes besides --edge, --json, --help; true = takes a value. */
  opts?: Record<string, boolean>;
  min: number;
  max: number;
  run(c: Ctx): Promise<void>;
}

interface Ctx {
  edge: EdgeClient;
  args: string[];
  opts: Record<string, string>;
  json: boolean;
  out(bytes: string | Uint8Array): void;
  /** Prints the answer: as JSON with --json, else the human lines. */
  show(answer: unknown, human: () => string): void;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** "NAME/PATH" (PATH may be empty) → the workspace and the percent-encoded path. */
function target(spec: string, needPath = false): { name: string; path: string; url: string } {
  const slash = spec.indexOf("/");
  const name = slash < 0 ? spec : spec.slice(0, slash);
  const path = slash < 0 ? "" : spec.slice(slash + 1).split("/").filter(Boolean).join("/");
  if (!NAME.test(name)) throw new UsageError(`"${spec}": a workspace is NAME or NAME/PATH (NAME: letters, digits, . _ -)`);
  if (needPath && !path) throw new UsageError(`"${spec}": name a file, as in ${name}/notes.txt`);
  return { name, path, url: `/w/${name}/f/${path.split("/").map(encodeURIComponent).join("/")}` };
}

const wsName = (s: string): string => {
  if (!NAME.test(s)) throw new UsageError(`"${s}": not a workspace name (letters, digits, . _ -)`);
  return s;
};

const int = (v: string, flag: string): number => {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} takes a whole number (got "${v}")`);
  return Number(v);
};

/** A time from the edge (ms since the epoch, or decimal ns as a string) as ISO 8601. */
const date = (t: unknown): string => {
  const ms = typeof t === "number" ? t : typeof t === "string" && /^\d+$/.test(t) ? (t.length > 15 ? Number(BigInt(t) / 1_000_000n) : Number(t)) : NaN;
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.\d+Z$/, "Z") : typeof t === "string" ? t : "-";
};
const short = (hex: unknown): string => (typeof hex === "string" && hex.length > 16 ? `${hex.slice(0, 12)}…` : String(hex ?? "-"));

type Entry = { name: string; type: string; stat?: { size?: number; mtime?: string } };

const SUBS: Record<string, Sub> = {
  create: {
    usage: "create NAME", help: "create a workspace (your key owns it)", min: 1, max: 1,
    async run(c) {
      const name = wsName(c.args[0]!);
      const r = await c.edge.json<{ created: boolean; owner: string }>("POST", `/w/${name}`, { body: {} });
      c.show(r, () => `${r.created ? "created" : "already yours:"} ${name} (owner ${r.owner})`);
    },
  },
  ls: {
    usage: "ls [NAME[/PATH]]", help: "list your workspaces, or a directory in one", min: 0, max: 1, opts: { "--all": false },
    async run(c) {
      if (!c.args[0]) {
        const r = await c.edge.json<{ workspaces: Array<{ name: string; owner?: string; created?: number; forkedFrom?: string }> }>("GET", `/w${"--all" in c.opts ? "?all=1" : ""}`);
        c.show(r, () => r.workspaces.map((w) => `${w.name.padEnd(24)} ${date(w.created)}  owner ${short(w.owner)}${w.forkedFrom ? `  fork of ${w.forkedFrom}` : ""}`).join("\n"));
        return;
      }
      const t = target(c.args[0]);
      const res = await c.edge.fetch("GET", t.url);
      if (!res.ok) throw await edgeError(res, `ls ${c.args[0]}`);
      if ((res.headers.get("content-type") ?? "").startsWith("application/json")) {
        const r = (await res.json()) as { entries: Entry[] };
        c.show(r, () => r.entries.map((e) => `${e.type === "dir" ? "d" : e.type === "symlink" ? "l" : "-"} ${String(e.stat?.size ?? 0).padStart(10)}  ${e.name}${e.type === "dir" ? "/" : ""}`).join("\n"));
      } else {
        await res.body?.cancel();
        const size = Number(res.headers.get("content-length") ?? 0);
        c.show({ path: "/" + t.path, type: "file", size }, () => `- ${String(size).padStart(10)}  ${t.path}`);
      }
    },
  },
  cat: {
    usage: "cat NAME/PATH", help: "print a file", min: 1, max: 1,
    async run(c) {
      const t = target(c.args[0]!, true);
      const res = await c.edge.fetch("GET", t.url);
      if (!res.ok) throw await edgeError(res, `cat ${c.args[0]}`);
      if ((res.headers.get("content-type") ?? "").startsWith("application/json")) {
        await res.body?.cancel();
        throw new CommandError(`cat ${c.args[0]}: EISDIR: a directory (use oanix ws ls)`);
      }
      await copyOut(res, c.out);
    },
  },
  put: {
    usage: "put NAME/PATH [LOCALFILE | -]", help: "write a file from a local file or stdin (parents are created)", min: 1, max: 2,
    async run(c) {
      const t = target(c.args[0]!, true);
      const src = c.args[1] ?? "-";
      let body: Uint8Array;
      try {
        body = src === "-" ? await readStdin() : readFileSync(src);
      } catch {
        throw new UsageError(`${src}: cannot read the file`);
      }
      const res = await c.edge.fetch("PUT", `${t.url}?parents=1`, { body });
      if (!res.ok) throw await edgeError(res, `put ${c.args[0]}`);
      const r = (await res.json()) as { path: string; stat: { size: number; version?: number } };
      c.show(r, () => `${t.name}${r.path}: ${r.stat.size} bytes, version ${r.stat.version ?? "-"}`);
    },
  },
  get: {
    usage: "get NAME/PATH [LOCALFILE | -]", help: "copy a file to a local file (default: its name) or stdout", min: 1, max: 2,
    async run(c) {
      const t = target(c.args[0]!, true);
      const dest = c.args[1] ?? basename(t.path);
      const res = await c.edge.fetch("GET", t.url);
      if (!res.ok) throw await edgeError(res, `get ${c.args[0]}`);
      if ((res.headers.get("content-type") ?? "").startsWith("application/json")) {
        await res.body?.cancel();
        throw new CommandError(`get ${c.args[0]}: EISDIR: a directory`);
      }
      if (dest === "-") return copyOut(res, c.out);
      // Written beside the destination, then renamed: a failed download leaves no half file.
      const tmp = `${dest}.oanix-${process.pid}.part`;
      try {
        await pipeline(Readable.fromWeb(res.body! as import("node:stream/web").ReadableStream), createWriteStream(tmp));
        renameSync(tmp, dest);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw new CommandError(`get ${c.args[0]}: ${dest}: ${(e as Error).message}`);
      }
      c.show({ path: "/" + t.path, file: dest, size: Number(res.headers.get("content-length") ?? 0) }, () => "");
    },
  },
  rm: {
    usage: "rm NAME/PATH", help: "remove a file or an empty directory", min: 1, max: 1,
    async run(c) {
      const t = target(c.args[0]!, true);
      await c.edge.json("DELETE", t.url);
      c.show({ removed: "/" + t.path }, () => "");
    },
  },
  mv: {
    usage: "mv NAME/FROM NAME/TO", help: "rename atomically inside one workspace", min: 2, max: 2,
    async run(c) {
      const from = target(c.args[0]!, true);
      const toSpec = c.args[1]!;
      const dest = target(toSpec, true);
      if (dest.name !== from.name) throw new UsageError(`mv works inside one workspace ("${from.name}" and "${dest.name}"); copy with get and put`);
      const to = dest.path;
      const res = await c.edge.fetch("POST", `/w/${from.name}/batch`, {
        body: encodeFrame({ ops: [{ op: "rename", from: from.path, to }], atomic: true }, []),
        headers: { "content-type": FRAME_TYPE },
      });
      if (!res.ok) throw await edgeError(res, `mv ${c.args[0]}`);
      const f = decodeFrame(new Uint8Array(await res.arrayBuffer()));
      const r = (f.header as { results: Array<{ ok: boolean; error?: { code: string; message: string } }> }).results[0];
      if (!r?.ok) throw new CommandError(`mv ${c.args[0]} ${toSpec}: ${r?.error?.message ?? "refused"}`);
      c.show({ from: "/" + from.path, to: "/" + to }, () => "");
    },
  },
  versions: {
    usage: "versions NAME[/PATH] [--limit N]", help: "the version log, or one path's history", min: 1, max: 1, opts: { "--limit": true },
    async run(c) {
      const t = target(c.args[0]!);
      const q = new URLSearchParams();
      if (t.path) q.set("path", t.path);
      if (c.opts["--limit"] !== undefined) q.set("limit", String(int(c.opts["--limit"], "--limit")));
      const r = await c.edge.json<{ version: number; entries: Array<Record<string, unknown>> }>("GET", `/w/${t.name}/versions${q.size ? `?${q}` : ""}`);
      c.show(r, () => r.entries.map((v) => {
        const { version, time, actor, action, path, ...rest } = v;
        const extra = Object.entries(rest).filter(([, x]) => x !== null && x !== undefined && x !== false).map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : String(x)}`);
        return [String(version).padStart(6), date(time), short(actor), action, path ?? "", ...extra].join("  ");
      }).join("\n"));
    },
  },
  snapshot: {
    usage: "snapshot NAME [LABEL]", help: "name the current version LABEL; without LABEL, list the snapshots", min: 1, max: 2,
    async run(c) {
      const name = wsName(c.args[0]!);
      if (c.args[1] === undefined) {
        const r = await c.edge.json<{ snapshots: Array<{ name: string; version: number; time?: string }> }>("GET", `/w/${name}/snapshots`);
        c.show(r, () => r.snapshots.map((s) => `${s.name.padEnd(24)} version ${s.version}  ${date(s.time)}`).join("\n"));
        return;
      }
      const r = await c.edge.json<{ name: string; version: number }>("POST", `/w/${name}/snapshots`, { body: { name: c.args[1] } });
      c.show(r, () => `${name}: snapshot ${r.name} = version ${r.version}`);
    },
  },
  fork: {
    usage: "fork NAME TO [--version N | --snapshot LABEL]", help: "a new workspace TO (yours) holding NAME's tree", min: 2, max: 2, opts: { "--version": true, "--snapshot": true },
    async run(c) {
      const name = wsName(c.args[0]!), to = wsName(c.args[1]!);
      if (c.opts["--version"] !== undefined && c.opts["--snapshot"] !== undefined) throw new UsageError("fork takes --version or --snapshot, not both");
      const body: Record<string, unknown> = { to };
      if (c.opts["--version"] !== undefined) body.version = int(c.opts["--version"], "--version");
      if (c.opts["--snapshot"] !== undefined) body.snapshot = c.opts["--snapshot"];
      const r = await c.edge.json<{ name: string; version: number; files: number }>("POST", `/w/${name}/fork`, { body });
      c.show(r, () => `${to}: fork of ${name}@${r.version} (${r.files} entries)`);
    },
  },
  grant: {
    usage: "grant NAME [--prefix PATH] [--rights r|rw] [--expires SECONDS] [--pubkey HEX|npub]",
    help: "give a key (--pubkey) rights, or mint a capability token (printed once); owner only", min: 1, max: 1,
    opts: { "--prefix": true, "--rights": true, "--expires": true, "--pubkey": true },
    async run(c) {
      const name = wsName(c.args[0]!);
      const rights = c.opts["--rights"] ?? "r";
      if (rights !== "r" && rights !== "rw") throw new UsageError(`--rights is r or rw (got "${rights}")`);
      const body: Record<string, unknown> = { prefix: (c.opts["--prefix"] ?? "").split("/").filter(Boolean).join("/"), rights };
      if (c.opts["--expires"] !== undefined) body.expiresIn = int(c.opts["--expires"], "--expires");
      if (c.opts["--pubkey"] !== undefined) body.pubkey = await pubkeyHex(c.opts["--pubkey"]);
      const r = await c.edge.json<{ id: string; token?: string; expires?: number }>("POST", `/w/${name}/grants`, { body });
      c.show(r, () => `grant ${r.id}: ${rights} on /${body.prefix} until ${date(r.expires)}${r.token ? `\ntoken ${r.token}` : ""}`);
    },
  },
  grants: {
    usage: "grants NAME", help: "the grants of a workspace (owner only)", min: 1, max: 1,
    async run(c) {
      const name = wsName(c.args[0]!);
      const r = await c.edge.json<{ grants: Array<Record<string, unknown>> }>("GET", `/w/${name}/grants`);
      c.show(r, () => r.grants.map((g) => `${String(g.id).padEnd(20)} ${String(g.write ? "rw" : "r").padEnd(3)} /${String(g.prefix ?? "")}  until ${date(g.expires)}${g.pubkey ? `  key ${short(g.pubkey)}` : "  token"}${g.revoked ? "  revoked" : ""}`).join("\n"));
    },
  },
  revoke: {
    usage: "revoke NAME ID", help: "revoke a grant (owner only)", min: 2, max: 2,
    async run(c) {
      const name = wsName(c.args[0]!);
      const r = await c.edge.json("DELETE", `/w/${name}/grants/${encodeURIComponent(c.args[1]!)}`);
      c.show(r, () => `revoked ${c.args[1]}`);
    },
  },
  audit: {
    usage: "audit NAME [--after SEQ] [--verify]", help: "the audit log (a hash chain); --verify recomputes it", min: 1, max: 1, opts: { "--after": true, "--verify": false },
    async run(c) {
      const name = wsName(c.args[0]!);
      if ("--verify" in c.opts) {
        const r = await c.edge.json<{ ok: boolean; entries?: number; brokenAt?: number; reason?: string }>("GET", `/w/${name}/audit/verify`);
        c.show(r, () => (r.ok ? `audit chain of ${name}: intact (${r.entries} entries)` : `audit chain of ${name}: BROKEN at ${r.brokenAt}: ${r.reason}`));
        if (!r.ok) throw new CommandError(`audit ${name}: the chain is broken at ${r.brokenAt}`);
        return;
      }
      const after = c.opts["--after"] !== undefined ? `?after=${int(c.opts["--after"], "--after")}` : "";
      const r = await c.edge.json<{ entries: Array<Record<string, unknown>> }>("GET", `/w/${name}/audit${after}`);
      c.show(r, () => r.entries.map((e) => `${String(e.seq).padStart(5)}  ${date(e.time)}  ${short(e.actor)}  ${e.action}  ${typeof e.detail === "string" ? e.detail : JSON.stringify(e.detail)}`).join("\n"));
    },
  },
};

const COMMON = "  --edge URL   the edge (default $OANIX_EDGE or http://127.0.0.1:8787)\n  --json       print the edge's answer as JSON\n  -h, --help   show this help\n";

export function help(): string {
  return `oanix ws SUBCOMMAND [options]

Workspaces on an edge, over its HTTP API (edge/README.md). Requests are signed with your key
(OANIX_KEY or ~/.config/oanix/key) or carry OANIX_TOKEN. PATHs are inside the workspace.

${Object.values(SUBS).map((s) => `  oanix ws ${s.usage}\n      ${s.help}`).join("\n")}

Options for every subcommand:
${COMMON}
Exit status: 0 done; 1 the edge refused or could not be reached (one line on stderr);
2 a usage error.
`;
}

export async function wsCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    stdout(help());
    return name === undefined ? 2 : 0;
  }
  const sub = Object.hasOwn(SUBS, name) ? SUBS[name]! : undefined;
  if (!sub) throw new UsageError(`ws: unknown subcommand "${name}" (try oanix ws --help)`);
  const takes: Record<string, boolean> = { "--edge": true, "--json": false, ...sub.opts };
  const args: string[] = [], opts: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--help" || a === "-h") {
      stdout(`oanix ws ${sub.usage}\n\n${sub.help}\n\nOptions:\n${COMMON}`);
      return 0;
    }
    if (a === "--") {
      args.push(...rest.slice(i + 1));
      break;
    }
    if (a.startsWith("--") && a.length > 2) {
      if (!Object.hasOwn(takes, a)) throw new UsageError(`ws ${name}: unknown option ${a} (try oanix ws ${name} --help)`);
      if (takes[a]) {
        const v = rest[++i];
        if (v === undefined) throw new UsageError(`${a} needs a value`);
        opts[a] = v;
      } else opts[a] = "";
    } else if (a !== "-" && a.startsWith("-")) throw new UsageError(`ws ${name}: unknown option ${a}`);
    else args.push(a);
  }
  if (args.length < sub.min || args.length > sub.max) throw new UsageError(`usage: oanix ws ${sub.usage}`);
  const json = "--json" in opts;
  const edge = new EdgeClient(edgeOrigin(opts["--edge"]), edgeCredential());
  edge.label = [name, ...args].join(" ");
  const out = stdout;
  await sub.run({
    edge, args, opts, json, out,
    show(answer, human) {
      if (json) return out(JSON.stringify(answer) + "\n");
      const text = human();
      if (text) out(text.endsWith("\n") ? text : text + "\n");
    },
  });
  return 0;
}

async function pubkeyHex(s: string): Promise<string> {
  if (/^[0-9a-f]{64}$/i.test(s)) return s.toLowerCase();
  if (s.startsWith("npub1")) {
    const { decode } = await import("nostr-tools/nip19");
    try {
      const d = decode(s);
      if (d.type === "npub") return d.data;
    } catch {
      // fall through
    }
  }
  throw new UsageError(`--pubkey takes 64 hex digits or an npub (got "${s}")`);
}

async function copyOut(res: Response, out: (b: Uint8Array) => void): Promise<void> {
  if (!res.body) return;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    out(value);
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
