// `npm start`: the local edge. Runs the Worker with `wrangler dev`, offline, on 127.0.0.1:8787
// (`--port N` or PORT=N for another), with state persisted in .wrangler/state (it survives
// restarts), then prints what is there: workspaces, the relay, and how to mount a workspace.
// On first start it seeds a `demo` workspace (agents/demo-workspace) owned by the CLI key.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT, startEdge } from "./launch.ts";
import { buildPrograms } from "./build-programs.ts";
import { loadKey } from "../../services/key.ts";
import { RemoteService } from "../../services/remote.ts";

function portArg(): number {
  const i = process.argv.indexOf("--port");
  const raw = i >= 0 ? process.argv[i + 1] : process.env.PORT;
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

async function seedDemo(url: string, signer: ReturnType<typeof loadKey>): Promise<void> {
  const fs = new RemoteService(`${url}/w/demo`, { signer });
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
  const signer = loadKey();
  const persistTo = join(ROOT, ".wrangler", "state");
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
    const r = await fetch(u, { headers: { authorization: signer.authorize(u, "GET") } });
    return ((await r.json()) as { workspaces: Array<{ name: string; owner: string; forkedFrom?: string }> }).workspaces;
  };
  let workspaces = await list();
  if (!workspaces.length) {
    await seedDemo(edge.url, signer);
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
  mount one     node cli/oanix.ts run agents/build/demo.wasm --mount /workspace=${edge.url}/w/demo --mount /task=task:agents/demo-task.json
  read-only     --ro /workspace=${edge.url}/w/demo
  HTTP API      edge/README.md (NIP-98 signed requests or capability tokens)
Ctrl-C stops it; the state stays for next time.
`);
  // The demo: the word-count agent runs here, its /workspace mounted live from the edge.
  console.log(`Running the demo agent with /workspace mounted from ${edge.url}/w/demo:`);
  const demo = spawn(process.execPath, [
    join(ROOT, "cli/oanix.ts"), "run", join(ROOT, "agents/build/demo.wasm"),
    "--mount", `/workspace=${edge.url}/w/demo`, "--mount", `/task=task:${join(ROOT, "agents/demo-task.json")}`,
  ], { stdio: "inherit" });
  const code = await new Promise<number | null>((r) => demo.on("exit", r));
  console.log(code === 0 ? "Demo done: /workspace/manifest.json is now in the edge workspace.\n" : `Demo agent exited with ${code}.\n`);
}

await main();
