// The relay alone in workerd, for the relay benches that compare builds or layouts: a Worker whose
// only route is /relay (relay/http.ts), bundled by wrangler from any source tree (this checkout, or
// an older commit unpacked with `git archive`), run by Miniflare with local SQLite Durable Objects
// on disk, rate limits off (the peer has none). Not the whole edge Worker: an older tree needs only
// its relay/ and services/ to build.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare, convertV4MiniflareOptions, type V4MiniflareOptions } from "miniflare";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export const NO_RATE_LIMITS = { messagesPerSecond: 0, eventsPerSecondPerPubkey: 0, messagesPerSecondPerIp: 0, maxConnectionsPerIp: 0 };

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** Unpacks commit `ref` of this repository into `dir` (with this checkout's node_modules) and returns it. */
export function unpackCommit(ref: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const tar = execFileSync("git", ["-C", ROOT, "archive", ref], { maxBuffer: 1 << 30 });
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

export interface RelayWorkerd {
  relayUrl: string;
  /** The workerd processes Miniflare started for it (CPU time from /proc: cpuOf). */
  pids: number[];
  stop(): Promise<void>;
}

/** The workerd processes that are children of this process. */
function workerdChildren(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").includes("workerd") && readFileSync(`/proc/${d}/status`, "utf8").includes(`PPid:\t${process.pid}\n`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** CPU seconds (user + system) each thread of the processes `pids` has used so far, by thread. */
export function threadCpu(pids: number[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of pids) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
        out.set(`${pid}/${tid}`, (Number(f[11]) + Number(f[12])) / 100); // USER_HZ
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

/** What the threads used between two readings of threadCpu: in all, and the busiest one (seconds). */
export function cpuBetween(a: Map<string, number>, b: Map<string, number>): { total: number; busiest: number } {
  let total = 0;
  let busiest = 0;
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    total += d;
    busiest = Math.max(busiest, d);
  }
  return { total, busiest };
}

/**
 * Bundles and starts the relay of source tree `tree`. `storageShards` adds the storage-shard
 * binding (trees from before sharding have no such class); `vars` become plain-text bindings
 * (RELAY_SHARDS, …).
 */
export async function startRelayWorkerd(opts: { tree?: string; dir: string; storageShards?: boolean; vars?: Record<string, string> }): Promise<RelayWorkerd> {
  const tree = opts.tree ?? ROOT;
  const gen = join(opts.dir, `relay-only-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(gen, { recursive: true });
  const classes = opts.storageShards ? ["NostrRelay", "RelayStorageShard"] : ["NostrRelay"];
  writeFileSync(
    join(gen, "worker.ts"),
    `import { ${classes.join(", ")}, handleRelayRequest } from ${JSON.stringify(join(tree, "relay/index.ts"))};
export { ${classes.join(", ")} };
export default { fetch: (req: Request, env: { RELAY: DurableObjectNamespace<NostrRelay> }) => handleRelayRequest(req, env.RELAY) };
`,
  );
  const bindings = [`[[durable_objects.bindings]]\nname = "RELAY"\nclass_name = "NostrRelay"`];
  if (opts.storageShards) bindings.push(`[[durable_objects.bindings]]\nname = "RELAY_STORAGE"\nclass_name = "RelayStorageShard"`);
  writeFileSync(
    join(gen, "wrangler.toml"),
    `name = "relay-bench"\nmain = "worker.ts"\ncompatibility_date = "2026-11-01"\n\n[[rules]]\ntype = "CompiledWasm"\nglobs = ["**/*.wasm"]\nfallthrough = true\n\n${bindings.join("\n\n")}\n\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ${JSON.stringify(classes)}\n`,
  );
  const dist = join(gen, "dist");
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "-c", join(gen, "wrangler.toml"), "--outdir", dist], {
      cwd: tree,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`bundling ${tree} failed (${code}):\n${out}`))));
  });
  if (!existsSync(join(dist, "worker.js"))) throw new Error(`bundling ${tree}: no worker.js in ${dist}`);
  const port = await freePort();
  // Miniflare 5 takes a new option shape; the v4 one (as wrangler hands it out) is converted.
  const v4 = {
    name: "relay-bench",
    compatibilityDate: "2026-11-01",
    host: "127.0.0.1",
    port,
    defaultPersistRoot: join(opts.dir, `state-${port}`),
    modulesRoot: dist,
    modules: [
      { type: "ESModule", path: join(dist, "worker.js") },
      ...readdirSync(dist)
        .filter((f) => f.endsWith(".wasm"))
        .map((f) => ({ type: "CompiledWasm", path: join(dist, f) })),
    ],
    durableObjects: Object.fromEntries(classes.map((c) => [c === "NostrRelay" ? "RELAY" : "RELAY_STORAGE", { className: c, useSQLite: true }])),
    bindings: { RELAY_CONFIG: JSON.stringify(NO_RATE_LIMITS), ...(opts.vars ?? {}) },
  } as unknown as V4MiniflareOptions;
  const before = new Set(workerdChildren());
  const mf = new Miniflare(convertV4MiniflareOptions(v4));
  await mf.ready;
  const pids = workerdChildren().filter((p) => !before.has(p));
  return { relayUrl: `ws://127.0.0.1:${port}/relay`, pids, stop: () => mf.dispose() };
}
