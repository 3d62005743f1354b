// The runtime is platform-neutral: the demo agent runs inside workerd (Cloudflare's runtime),
// statically imported as a compiled module (workerd forbids compiling bytes at run time), with a
// workspace that answers through Promises, so the guest suspends through JSPI there too.
import { describe, expect, it } from "vitest";
import demo from "../agents/build/demo.wasm";
import { LogsService } from "../services/logs.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import { loadProgram } from "./modules.ts";
import { Namespace } from "./namespace.ts";
import { spawn } from "./process.ts";
import type { FileService } from "./types.ts";

function promising(s: MemService): FileService {
  return {
    open: async (p, f) => s.open(p, f), stat: async (p) => s.stat(p), lstat: async (p) => s.lstat(p),
    readdir: async (p) => s.readdir(p), mkdir: async (p) => s.mkdir(p), remove: async (p) => s.remove(p),
    rename: async (a, b) => s.rename(a, b),
  };
}

describe("runtime in workerd", () => {
  it("runs the demo agent over a live namespace", async () => {
    expect(typeof WebAssembly.Suspending).toBe("function");
    const task = new TaskService({ kind: "wordcount", root: "/workspace", top: 2 });
    const ws = new MemService({ "a.txt": "edge edge worker\n", "b.txt": "worker edge\n" });
    const logs = new LogsService();
    const ns = new Namespace().mount("/task", task).mount("/workspace", promising(ws)).mount("/logs", logs);
    let stdout = "";
    const st = await spawn(await loadProgram(demo), { namespace: ns, onStdout: (b) => void (stdout += new TextDecoder().decode(b)) });
    expect(st).toMatchObject({ code: 0, reason: "exit" });
    expect(task.result()).toMatchObject({ ok: true, files: 2, words: 5, top: [["edge", 3], ["worker", 2]] });
    expect(ws.stat("manifest.json").type).toBe("file");
    expect(stdout.length).toBeGreaterThan(0);
    expect(logs.events().some((e) => (e as { event?: string }).event === "exit")).toBe(true);
  });
});
