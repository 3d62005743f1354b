// The console page (`/`): who you are, the relay, your workspaces (browse, edit, upload, download,
// versions and their diff, fork), and agents run in this tab (browser/host.ts) on a workspace.
// Plain DOM, no framework: the page is a few forms and lists.
import { npubEncode } from "nostr-tools/nip19";
import { PAGE_AGENTS } from "../agents.ts";
import { createHost, type Host, type Spawned } from "../host.ts";
import { hexToBytes } from "@noble/hashes/utils.js";
import { finalizeEvent } from "nostr-tools/pure";
import { browserSecret, browserSigner } from "../key.ts";
import { nip07, nip07Sign, nip07Signer } from "../nip07.ts";
import type { Signer } from "../../services/nip98.ts";
import { diffLines } from "./diff.ts";
import { Edge, filePath } from "./edge.ts";
import { setupJobs, type SignEvent } from "./jobs.ts";
import { setupPlanning } from "./planning.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const errorBox = $("error");

/** Runs a UI action; a failure is shown on the page (role=alert), never thrown to the console. */
const act = (fn: () => Promise<void> | void) => async (ev?: Event): Promise<void> => {
  ev?.preventDefault();
  errorBox.textContent = "";
  try {
    await fn();
  } catch (e) {
    errorBox.textContent = e instanceof Error ? e.message : String(e);
  }
};

// --- identity: the browser's key, or a NIP-07 extension's (the person chooses; the choice is kept)
const SIGNER_KEY = "oanix.signer";
let signer: Signer = await browserSigner();
let signerKind: "browser" | "nip07" = "browser";
const edge = new Edge(signer);
$("npub").textContent = npubEncode(signer.pubkey);
$("copy-npub").addEventListener("click", act(async () => {
  try {
    await navigator.clipboard.writeText(npubEncode(signer.pubkey));
    $("copied").textContent = "copied";
  } catch {
    $("copied").textContent = "copy refused by the browser: select the key and copy it";
  }
}));

/** Signs as `kind` from now on: the workspaces listed, edited and mounted are that key's. */
async function useSigner(kind: "browser" | "nip07"): Promise<void> {
  const next = kind === "nip07" ? await nip07Signer() : await browserSigner();
  signer = edge.signer = next;
  signerKind = kind;
  $<HTMLSelectElement>("signer").value = kind;
  localStorage.setItem(SIGNER_KEY, kind);
  $("npub").textContent = npubEncode(next.pubkey);
  $("copied").textContent = "";
  void host?.then((h) => h.close(), () => {});
  host = null; // the next run starts a host that signs edge mounts as this key
  ws = "";
  $("ws-view").hidden = true;
  await listWorkspaces();
}

function offerNip07(): void {
  if (!nip07() || !$("signer-choice").hidden) return;
  $("signer-choice").hidden = false;
  $<HTMLSelectElement>("signer").value = signerKind;
}
$("signer").addEventListener("change", act(async () => {
  const choice = $<HTMLSelectElement>("signer");
  try {
    await useSigner(choice.value === "nip07" ? "nip07" : "browser");
  } catch (e) {
    choice.value = signerKind; // the extension refused: stay who we were
    throw e;
  }
}));

/** Signs a nostr event (a job request, a deletion) as whoever the page signs as now. */
const signEvent: SignEvent = async (t) =>
  signerKind === "nip07" ? nip07Sign(nip07()!, t, signer.pubkey) : finalizeEvent(t, hexToBytes(await browserSecret()));

// --- relay -------------------------------------------------------------------------------------
function watchRelay(): void {
  const status = $("relay");
  const ws = new WebSocket(new URL("/relay", location.href).href.replace(/^http/, "ws"));
  ws.onopen = () => {
    status.textContent = "connected";
    status.className = "good";
  };
  ws.onerror = () => {};
  ws.onclose = () => {
    status.textContent = "disconnected (retrying)";
    status.className = "bad";
    setTimeout(watchRelay, 5000);
  };
}
watchRelay();

// --- workspaces --------------------------------------------------------------------------------
let ws = "";
let cwd = "";
let mountChosen = false;
$("mount").addEventListener("change", () => (mountChosen = true));
let file = "";

async function listWorkspaces(select?: string): Promise<void> {
  const { workspaces } = await edge.json<{ workspaces: { name: string }[] }>("/w");
  const list = $<HTMLSelectElement>("ws-list");
  list.replaceChildren(...workspaces.map((w) => new Option(w.name, w.name)));
  if (!workspaces.length) list.append(new Option("(none yet: create one)", ""));
  if (select) list.value = select;
}

async function openWorkspace(name: string): Promise<void> {
  if (!name) throw new Error("create a workspace first");
  ws = name;
  await workspaceInfo();
  if (!mountChosen) $<HTMLSelectElement>("mount").value = "edge"; // runs go to the open workspace unless told otherwise
  $("ws-name").textContent = name;
  $("ws-view").hidden = false;
  $("file-view").hidden = true;
  await browse("");
}

async function workspaceInfo(): Promise<void> {
  const info = await edge.json<{ version: number; files: number; bytes: number; forkedFrom?: string }>(`/w/${encodeURIComponent(ws)}`);
  $("ws-info").textContent = `version ${info.version}, ${info.files} files, ${info.bytes} bytes${info.forkedFrom ? `, forked from ${info.forkedFrom}` : ""}`;
}

async function browse(dir: string): Promise<void> {
  const { entries } = await edge.json<{ entries: { name: string; type: string }[] }>(filePath(ws, dir));
  cwd = dir;
  $("cwd").textContent = "/" + dir;
  const items: HTMLLIElement[] = [];
  const item = (label: string, fn: () => Promise<void>): void => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", act(fn));
    li.append(b);
    items.push(li);
  };
  if (dir) item("../", () => browse(dir.split("/").slice(0, -1).join("/")));
  for (const e of entries) {
    const p = dir ? `${dir}/${e.name}` : e.name;
    item(e.type === "dir" ? e.name + "/" : e.name, () => (e.type === "dir" ? browse(p) : openFile(p)));
  }
  $("files").replaceChildren(...items);
}

async function openFile(path: string): Promise<void> {
  const text = await (await edge.fetch(filePath(ws, path))).text();
  file = path;
  $("file-path").textContent = "/" + path;
  $<HTMLTextAreaElement>("editor").value = text;
  $("saved").textContent = "";
  $("file-view").hidden = false;
  await versions();
}

interface VersionRow { version: number; action: string; size?: number; deleted?: boolean }

async function versions(): Promise<void> {
  const { entries } = await edge.json<{ entries: VersionRow[] }>(`/w/${encodeURIComponent(ws)}/versions?path=${encodeURIComponent(file)}&limit=50`);
  $("versions").replaceChildren(...entries.map((v) => {
    const tr = document.createElement("tr");
    for (const t of [String(v.version), v.deleted ? "deleted" : v.action, v.size === undefined || v.size === null ? "" : String(v.size)]) {
      const td = document.createElement("td");
      td.textContent = t;
      tr.append(td);
    }
    return tr;
  }));
  const live = entries.filter((v) => !v.deleted).map((v) => new Option(`v${v.version}`, String(v.version)));
  $("v-a").replaceChildren(...live.map((o) => o.cloneNode(true) as HTMLOptionElement));
  $("v-b").replaceChildren(...live);
  if (live.length > 1) $<HTMLSelectElement>("v-a").selectedIndex = 1; // previous → latest
  $("diff").textContent = "";
}

$("ws-open").addEventListener("click", act(() => openWorkspace($<HTMLSelectElement>("ws-list").value)));
$("ws-create").addEventListener("submit", act(async () => {
  const name = $<HTMLInputElement>("ws-new").value.trim();
  await edge.fetch(`/w/${encodeURIComponent(name)}`, { method: "POST", body: "" });
  await listWorkspaces(name);
  await openWorkspace(name);
}));
$("edit").addEventListener("submit", act(async () => {
  $("saved").textContent = "saving…";
  await edge.fetch(filePath(ws, file), { method: "PUT", body: $<HTMLTextAreaElement>("editor").value });
  await Promise.all([versions(), workspaceInfo()]);
  $("saved").textContent = `saved ${new Date().toLocaleTimeString()}`;
}));
$("download").addEventListener("click", act(async () => {
  const blob = await (await edge.fetch(filePath(ws, file))).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = file.split("/").pop() ?? "file";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}));
$("upload").addEventListener("submit", act(async () => {
  const f = $<HTMLInputElement>("upload-file").files?.[0];
  if (!f) throw new Error("choose a file to upload");
  const p = cwd ? `${cwd}/${f.name}` : f.name;
  await edge.fetch(filePath(ws, p), { method: "PUT", body: new Uint8Array(await f.arrayBuffer()) });
  await Promise.all([browse(cwd), workspaceInfo()]);
}));
$("mkfile").addEventListener("submit", act(async () => {
  const name = $<HTMLInputElement>("new-file").value.trim();
  const p = [cwd, name].filter(Boolean).join("/");
  await edge.fetch(filePath(ws, p) + "?parents=1", { method: "PUT", body: "" });
  await browse(cwd);
  await openFile(p);
}));
$("fork").addEventListener("submit", act(async () => {
  const to = $<HTMLInputElement>("fork-to").value.trim();
  await edge.fetch(`/w/${encodeURIComponent(ws)}/fork`, { method: "POST", body: JSON.stringify({ to }), headers: { "content-type": "application/json" } });
  await listWorkspaces(to);
  await openWorkspace(to);
}));
$("diff-go").addEventListener("click", act(async () => {
  const at = (v: string) => edge.fetch(filePath(ws, file) + `?v=${v}`).then((r) => r.text());
  const [a, b] = await Promise.all([at($<HTMLSelectElement>("v-a").value), at($<HTMLSelectElement>("v-b").value)]);
  const d = diffLines(a, b);
  const out = $("diff");
  if (!d) return void (out.textContent = "the versions are too large to compare here");
  out.replaceChildren(...d.map((l) => {
    const s = document.createElement("span");
    s.className = l.op === "-" ? "del" : l.op === "+" ? "add" : "";
    s.textContent = `${l.op} ${l.text}\n`;
    return s;
  }));
}));

// --- agents ------------------------------------------------------------------------------------
const DEMO_FILES = { "README.md": "# demo\nA workspace in memory, for the demo agent.\n", "notes/todo.txt": "count the words\nin these notes\n" };
const agent = $<HTMLSelectElement>("agent");
agent.replaceChildren(...PAGE_AGENTS.map((a) => new Option(a, a)));
let dropped: { name: string; bytes: Uint8Array } | null = null;
let running: Spawned | null = null;
let host: Promise<Host> | null = null;

function useWasm(f: File): void {
  void f.arrayBuffer().then((b) => {
    dropped = { name: f.name, bytes: new Uint8Array(b) };
    const o = new Option(`${f.name} (dropped)`, "dropped");
    agent.querySelector('option[value="dropped"]')?.remove();
    agent.append(o);
    agent.value = "dropped";
  });
}
const drop = $("drop");
drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const f = e.dataTransfer?.files[0];
  if (f) useWasm(f);
});
$<HTMLInputElement>("wasm-file").addEventListener("change", (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) useWasm(f);
});

$("run").addEventListener("submit", act(async () => {
  if (running) return;
  const name = agent.value;
  const wasm = name === "dropped" && dropped ? dropped.bytes : new URL(`/agents/${name}.wasm`, location.href);
  const mountKind = $<HTMLSelectElement>("mount").value;
  if (mountKind === "edge" && !ws) throw new Error("open a workspace first, or run on memory or OPFS");
  const workspace = mountKind === "edge" ? `${location.origin}/w/${ws}` : mountKind === "opfs" ? `opfs:${$<HTMLInputElement>("opfs-name").value.trim()}` : DEMO_FILES;
  const mounts: Record<string, string | Record<string, string>> = { "/workspace": workspace };
  if (name === "demo") mounts["/task"] = { "spec.json": JSON.stringify({ kind: "wordcount", root: "/workspace", top: 10 }) };
  const args = $<HTMLInputElement>("args").value.split(/\s+/).filter(Boolean);
  const out = $("stdout");
  const err = $("stderr");
  const status = $("status");
  out.textContent = err.textContent = "";
  status.className = "";
  status.textContent = "starting…";
  host ??= createHost({ signer: signerKind === "nip07" ? signer : "browser" });
  const h = await host.catch((e) => {
    host = null;
    throw e;
  });
  running = h.spawn(wasm, {
    name, args, mounts, timeoutMs: Number($<HTMLInputElement>("timeout").value) || undefined,
    onStdout: (t) => out.append(t), onStderr: (t) => err.append(t),
  });
  status.textContent = "running…";
  $<HTMLButtonElement>("kill").disabled = false;
  $<HTMLButtonElement>("run-go").disabled = true;
  try {
    const r = await running.done;
    status.textContent = `exit ${r.code}${r.reason === "exit" ? "" : ` (${r.reason}${r.message ? `: ${r.message}` : ""})`} in ${r.durationMs.toFixed(1)} ms`;
    status.className = r.code === 0 ? "good" : "bad";
    if (mountKind === "edge" && ws) await Promise.all([browse(cwd), workspaceInfo()]);
  } finally {
    running = null;
    $<HTMLButtonElement>("kill").disabled = true;
    $<HTMLButtonElement>("run-go").disabled = false;
  }
}));
$("kill").addEventListener("click", () => running?.kill());

setupJobs({ $, act, signEvent, relayUrl: new URL("/relay", location.href).href.replace(/^http/, "ws") });
setupPlanning({
  $, act, edge,
  async openArtifact(name, path) {
    await listWorkspaces(name);
    await openWorkspace(name);
    await openFile(path);
    $("file-view").scrollIntoView();
  },
});

// An extension may put window.nostr there after this script runs: look again once the page has loaded.
offerNip07();
if (document.readyState !== "complete") addEventListener("load", offerNip07, { once: true });
await act(async () => {
  if (!nip07() || localStorage.getItem(SIGNER_KEY) !== "nip07") return listWorkspaces();
  await useSigner("nip07").catch(async (e: unknown) => {
    await listWorkspaces(); // the extension said no: carry on as the browser's key, and say why
    throw e;
  });
})();
document.body.dataset.ready = "1";
