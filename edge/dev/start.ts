// `npm start`: the local edge. Runs the Worker with `wrangler dev`, offline, on 127.0.0.1:8787
// (`--port N` or PORT=N for another), with state persisted in .wrangler/state (`--state DIR` for
// another; it survives restarts, and one edge at a time may use it), then prints what is there:
// workspaces, the relay, and how to mount a workspace, and runs the demo agent.
// The demo runs for whichever key is in use (another HOME, OANIX_KEY, a second person on the
// checkout): the `demo` workspace belongs to the first key that started the edge; any other key
// gets its own `demo-<first 8 hex digits of its pubkey>`, seeded from agents/demo-workspace.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { ROOT, startEdge } from "./launch.ts";
import { buildPrograms } from "./build-programs.ts";
import { loadKey } from "../../services/key.ts";
import { RemoteService } from "../../services/remote.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function portArg(): number {
  const raw = arg("--port") ?? process.env.PORT;
  const port = raw === undefined ? 8787 : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`oanix edge: bad port ${raw}`);
    process.exit(2);
  }
  return port;
}

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

/** The demo workspace for this key: `demo` if it is free or yours, else one of your own. */
export function demoName(workspaces: Array<{ name: string; owner: string }>, pubkey: string): string {
  const demo = workspaces.find((w) => w.name === "demo");
  return !demo || demo.owner === pubkey ? "demo" : `demo-${pubkey.slice(0, 8)}`;
}

async function seedDemo(url: string, name: string, signer: ReturnType<typeof loadKey>): Promise<void> {
  const fs = new RemoteService(`${url}/w/${name}`, { signer });
  const src = join(ROOT, "agents", "demo-workspace");
  for (const f of files(src)) {
    const rel = relative(src, f).split("\\").join("/");
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) await fs.mkdir(parts.slice(0, i).join("/")).catch(() => {});
    const h = await fs.open(rel, { write: true, create: true, truncate: true });
    await h.write(readFileSync(f));
    await h.close();
  }
}

async function main(): Promise<void> {
  const port = portArg();
  try {
    buildPrograms();
  } catch (e) {
    console.error(`oanix edge: ${(e as Error).message}`);
    process.exit(1);
  }
  let signer: ReturnType<typeof loadKey>;
  try {
    signer = loadKey();
  } catch (e) {
    console.error(`oanix edge: ${(e as Error).message}`);
    process.exit(2);
  }
  const persistTo = resolve(arg("--state") ?? join(ROOT, ".wrangler", "state"));
  let edge;
  try {
    edge = await startEdge({ port, persistTo, adminPubkeys: [signer.pubkey], stdio: "inherit" });
  } catch (e) {
    console.error(`oanix edge: ${(e as Error).message}`);
    process.exit(1);
  }
  const stop = () => void edge.stop().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);

  const list = async () => {
    const u = `${edge.url}/w?all=1`;
    const r = await fetch(u, { headers: { authorization: await signer.authorize(u, "GET") } });
    return ((await r.json()) as { workspaces: Array<{ name: string; owner: string; forkedFrom?: string }> }).workspaces;
  };
  let workspaces = await list();
  const demo = demoName(workspaces, signer.pubkey);
  if (!workspaces.some((w) => w.name === demo)) {
    await seedDemo(edge.url, demo, signer);
    workspaces = await list();
  }
  let relay = "";
  try {
    const r = await fetch(`${edge.url}/relay`, { headers: { accept: "application/nostr+json" } });
    const info = (await r.json()) as { name?: string; supported_nips?: number[] };
    relay = `${info.name ?? "relay"} (NIPs ${(info.supported_nips ?? []).join(", ")})`;
  } catch {
    relay = "not answering";
  }
  const ws = edge.url.replace(/^http/, "ws");
  console.log(`
OANIX local edge on ${edge.url} (offline; state in ${relative(process.cwd(), persistTo) || persistTo})
  console       ${edge.url}/ (in a browser; the library is ${edge.url}/oanix.js, see browser/README.md)
  your key      ${signer.pubkey} (${process.env.OANIX_KEY ? "OANIX_KEY" : "~/.config/oanix/key"})
  relay         ${ws}/relay — ${relay}
  workspaces    ${workspaces.length ? "" : "(none)"}
${workspaces.map((w) => `    ${w.name.padEnd(24)} owner ${w.owner.slice(0, 12)}…${w.owner === signer.pubkey ? " (you)" : ""}${w.forkedFrom ? ` fork of ${w.forkedFrom}` : ""}`).join("\n")}
  your demo     ${demo}${demo === "demo" ? "" : " (demo belongs to another key)"}
  mount one     npx oanix run agents/build/demo.wasm --mount /workspace=${edge.url}/w/${demo} --mount /task=task:agents/demo-task.json
  read-only     --ro /workspace=${edge.url}/w/${demo}
  from a shell  npx oanix ws ls ${demo}${edge.port === 8787 ? "" : ` --edge ${edge.url}`}
  HTTP API      edge/README.md (NIP-98 signed requests or capability tokens)
Ctrl-C stops it; the state stays for next time.
`);
  // The demo: the word-count agent runs here, its /workspace mounted live from the edge.
  console.log(`Running the demo agent with /workspace mounted from ${edge.url}/w/${demo}:`);
  const agent = spawn(process.execPath, [
    join(ROOT, "cli/oanix.mjs"), "run", join(ROOT, "agents/build/demo.wasm"),
    "--mount", `/workspace=${edge.url}/w/${demo}`, "--mount", `/task=task:${join(ROOT, "agents/demo-task.json")}`,
  ], { stdio: "inherit" });
  const code = await new Promise<number | null>((r) => agent.on("exit", r));
  console.log(code === 0 ? "Demo done: /workspace/manifest.json is now in the edge workspace.\n" : `Demo agent exited with ${code}.\n`);
}

if (import.meta.main) await main();
