// The demo agent does real work on real files: its counts are checked against an independent
// computation in JavaScript, and each bad input the spec allows ends with exit 2 and a message.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadProgram } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn } from "../runtime/process.ts";
import { LogsService } from "../services/logs.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";

const wasm = join(import.meta.dirname, "build/demo.wasm");
const program = () => {
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run npm run build:agents`);
  return loadProgram(readFileSync(wasm));
};

const FILES: Record<string, string> = {
  "README.md": "The agent reads its task.\nIt writes results, and it logs.\n",
  "notes/plan.txt": "Plan: read, count, write.\nDon't stop — count again!",
  "notes/deep/x.txt": "the THE The tHe\n",
};

/** Words as the demo defines them, for ASCII text: letters/digits, apostrophes inside words. */
function expected(files: Record<string, string>, top: number) {
  const counts = new Map<string, number>();
  let words = 0, bytes = 0, lines = 0;
  for (const text of Object.values(files)) {
    bytes += new TextEncoder().encode(text).length;
    lines += (text.match(/\n/g)?.length ?? 0) + (text.length && !text.endsWith("\n") ? 1 : 0);
    for (const w of text.match(/[A-Za-z0-9]+(?:['’][A-Za-z0-9]+)*/g) ?? []) {
      words++;
      const k = w.toLowerCase();
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top);
  return { files: Object.keys(files).length, bytes, lines, words, top: ranked };
}

async function runDemo(spec: unknown, files = FILES, specRaw?: string) {
  const task = new TaskService(spec ?? {});
  const ws = new MemService(files);
  const logs = new LogsService();
  const ns = new Namespace().mount("/workspace", ws).mount("/logs", logs);
  if (specRaw !== undefined) ns.mount("/task", new MemService({ "spec.json": specRaw }));
  else if (spec !== undefined) ns.mount("/task", task);
  let stderr = "";
  const st = await spawn(await program(), { namespace: ns, onStderr: (b) => void (stderr += new TextDecoder().decode(b)) });
  return { st, task, ws, logs, stderr };
}

describe("demo agent", () => {
  it("counts files, bytes, lines and words like an independent count, and writes a manifest", async () => {
    const { st, task, ws, logs } = await runDemo({ kind: "wordcount", root: "/workspace", top: 4 });
    expect(st.code).toBe(0);
    expect(task.result()).toMatchObject({ ok: true, ...expected(FILES, 4) });
    const manifest = JSON.parse(new TextDecoder().decode(ws.readFile("manifest.json")));
    const paths = JSON.stringify(manifest);
    for (const p of Object.keys(FILES)) expect(paths).toContain(p);
    const events = logs.events().map((e) => (e as { event: string }).event);
    expect(events[0]).toBe("start");
    expect(events.filter((e) => e === "file")).toHaveLength(3);
  });

  it("exits 2 with a message when the spec is missing, invalid or unknown", async () => {
    const missing = await runDemo(undefined);
    expect(missing.st.code).toBe(2);
    expect(missing.stderr).toMatch(/spec\.json.*ENOENT/);
    const invalid = await runDemo(null, FILES, "{ not json");
    expect(invalid.st.code).toBe(2);
    expect(invalid.stderr).toMatch(/demo: .*JSON/i);
    const unknown = await runDemo({ kind: "summarise" });
    expect(unknown.st.code).toBe(2);
    expect(unknown.stderr).toMatch(/kind/);
    expect(unknown.task.result()).toMatchObject({ ok: false });
  });

  it("fails with exit 1 and an ok:false result when the workspace is read-only, changing nothing", async () => {
    const task = new TaskService({ kind: "wordcount" });
    const ws = new MemService(FILES);
    const ns = new Namespace().mount("/task", task).mount("/workspace", ws, { access: "ro" });
    const st = await spawn(await program(), { namespace: ns });
    expect(st.code).toBe(1);
    expect(task.result()).toMatchObject({ ok: false });
    expect(ws.readdir("").map((e) => e.name).sort()).toEqual(["README.md", "notes"]);
  });
});
