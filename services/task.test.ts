import { describe, expect, it } from "vitest";
import { Namespace } from "../runtime/namespace.ts";
import type { FileHandle } from "../runtime/types.ts";
import { TaskService } from "./task.ts";
import { code, dec, enc, message } from "../test/helpers.ts";

function readAll(t: TaskService, name: string): string {
  const h = t.open(name, { read: true });
  const out = dec(h.read(1 << 20));
  h.close();
  return out;
}

function writeResult(t: TaskService, text: string): void {
  const h = t.open("result.json", { write: true, create: true, truncate: true });
  h.write(enc(text));
  h.close();
}

describe("TaskService", () => {
  const spec = { prompt: "sum 1..10", inputs: [1, 2], nested: { ok: true } };

  it("serves spec.json as pretty JSON and status as one word", async () => {
    const t = new TaskService(spec);
    expect(readAll(t, "spec.json")).toBe(JSON.stringify(spec, null, 2) + "\n");
    expect(JSON.parse(readAll(t, "/spec.json"))).toEqual(spec);
    expect(readAll(t, "status")).toBe("queued\n");
    expect(t.status).toBe("queued");
    expect(t.spec).toEqual(spec);
    expect(t.readdir("").map((e) => e.name)).toEqual(["spec.json", "status"]);
    expect(t.stat("spec.json").size).toBe(JSON.stringify(spec, null, 2).length + 1);
    expect(t.stat("").type).toBe("dir");
  });

  it("refuses task writes to spec.json and status with EACCES and keeps them intact", async () => {
    const t = new TaskService(spec);
    for (const name of ["spec.json", "status"]) {
      expect(await code(() => t.open(name, { write: true }))).toBe("EACCES");
      expect(await code(() => t.open(name, { read: true, truncate: true }))).toBe("EACCES");
      expect(await code(() => t.open(name, { append: true }))).toBe("EACCES");
      expect(await code(() => t.open(name, { write: true, create: true }))).toBe("EACCES");
      expect(await code(() => t.remove(name))).toBe("EACCES");
      expect(await code(() => t.rename(name, "x"))).toBe("EACCES");
      expect(await code(() => t.setTimes(name, 1n, 1n))).toBe("EACCES");
      const h = t.open(name, { read: true });
      expect(await code(() => h.write(enc("x")))).toBe("EACCES");
      expect(await code(() => h.truncate(0))).toBe("EACCES");
    }
    expect(await message(() => t.open("spec.json", { write: true }))).toMatch(/spec\.json.*host/);
    expect(await message(() => t.open("status", { write: true }))).toMatch(/status.*host/);
    expect(JSON.parse(readAll(t, "spec.json"))).toEqual(spec);
    expect(readAll(t, "status")).toBe("queued\n");
  });

  it("lets the host set the status, which readers see live", async () => {
    const t = new TaskService(spec);
    const h = t.open("status", { read: true });
    t.setStatus("running");
    expect(dec(h.read(100, 0))).toBe("running\n");
    const before = t.stat("status").mtimeNs;
    t.setStatus("succeeded");
    expect(t.status).toBe("succeeded");
    expect(dec(h.read(100, 0))).toBe("succeeded\n");
    expect(t.stat("status").mtimeNs >= before).toBe(true);
    expect(await code(() => t.setStatus("done" as never))).toBe("EINVAL");
    expect(await code(() => t.setStatus("Running" as never))).toBe("EINVAL");
    expect(t.status).toBe("succeeded");
    t.setStatus("failed");
    expect(readAll(t, "status")).toBe("failed\n");
  });

  it("takes result.json from the task and parses it for the host", async () => {
    const t = new TaskService(spec);
    expect(await code(() => t.result())).toBe("ENOENT");
    expect(await code(() => t.open("result.json", { read: true }))).toBe("ENOENT");
    writeResult(t, '{"answer": 55}');
    expect(t.result()).toEqual({ answer: 55 });
    expect(t.readdir("").map((e) => e.name)).toEqual(["result.json", "spec.json", "status"]);
    expect(readAll(t, "result.json")).toBe('{"answer": 55}');
    // Overwrite with a shorter value: truncate leaves no tail behind.
    writeResult(t, "[1]");
    expect(t.result()).toEqual([1]);
    // Positional writes and appends.
    const h = t.open("result.json", { write: true, read: true });
    h.write(enc("[2"), 0);
    expect(t.resultText()).toBe("[2]");
    const a = t.open("result.json", { append: true });
    a.write(enc("\n"), 0);
    expect(t.resultText()).toBe("[2]\n");
    expect(a.position).toBe(4);
    h.truncate(1);
    expect(await code(() => t.result())).toBe("EINVAL");
    expect(await message(() => t.result())).toMatch(/^EINVAL: result\.json is not valid JSON: /);
    expect(await code(() => t.open("result.json", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
    t.remove("result.json");
    expect(await code(() => t.result())).toBe("ENOENT");
    expect(t.readdir("").map((e) => e.name)).toEqual(["spec.json", "status"]);
    expect(await code(() => t.open("result.json", { read: true, create: true, directory: true }))).toBe("ENOENT");
  });

  it("refuses other files with EACCES", async () => {
    const t = new TaskService(spec);
    expect(await code(() => t.open("notes.txt", { write: true, create: true }))).toBe("EACCES");
    expect(await message(() => t.open("notes.txt", { write: true, create: true }))).toContain("notes.txt");
    expect(await code(() => t.open("notes.txt", { read: true }))).toBe("ENOENT");
    expect(await code(() => t.mkdir("out"))).toBe("EACCES");
    expect(await code(() => t.mkdir("status"))).toBe("EEXIST");
    expect(await code(() => t.symlink("spec.json", "s"))).toBe("EACCES");
    expect(await code(() => t.link("spec.json", "s"))).toBe("EACCES");
    expect(await code(() => t.stat("spec.json/x"))).toBe("ENOTDIR");
    expect(await code(() => t.open("a/b", { write: true, create: true }))).toBe("ENOENT");
    writeResult(t, "{}");
    expect(await code(() => t.rename("result.json", "other.json"))).toBe("EACCES");
    expect(await code(() => t.rename("result.json", "status"))).toBe("EACCES");
    t.rename("result.json", "./result.json");
    expect(t.result()).toEqual({});
    expect(t.readdir("").map((e) => e.name)).toEqual(["result.json", "spec.json", "status"]);
    expect(await code(() => t.readdir("status"))).toBe("ENOTDIR");
    expect(await code(() => t.remove(""))).toBe("EBUSY");
  });

  it("bounds result.json and loses nothing on a refused write", async () => {
    const t = new TaskService(spec, { maxResultBytes: 10 });
    writeResult(t, '{"a":1}');
    const h = t.open("result.json", { write: true });
    expect(await code(() => h.write(enc("0123456789X"), 0))).toBe("EFBIG");
    expect(await code(() => h.truncate(11))).toBe("EFBIG");
    expect(t.result()).toEqual({ a: 1 });
  });

  it("checks the spec and the handle state", async () => {
    expect(await code(() => new TaskService(undefined))).toBe("EINVAL");
    expect(await code(() => new TaskService({ n: 1n }))).toBe("EINVAL");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(await code(() => new TaskService(cyclic))).toBe("EINVAL");
    const t = new TaskService("just a string", { status: "running" });
    expect(readAll(t, "spec.json")).toBe('"just a string"\n');
    expect(t.status).toBe("running");
    const h = t.open("status", { read: true });
    h.close();
    expect(await code(() => h.read(1))).toBe("EBADF");
    // Handle modes are checked by the Namespace that opens them (runtime/handle.ts).
    const r = new Namespace().mount("/task", t).open("/task/result.json", { read: true, create: true }) as FileHandle;
    expect(await code(() => r.write(enc("x")))).toBe("EBADF");
    const d = t.open("", { read: true });
    expect(d.stat().type).toBe("dir");
    expect(await code(() => d.read(1))).toBe("EISDIR");
  });

  it("keeps inos stable and distinct", async () => {
    const t = new TaskService(spec);
    writeResult(t, "1");
    const inos = ["", "spec.json", "status", "result.json"].map((p) => t.stat(p).ino);
    expect(new Set(inos).size).toBe(4);
    t.setStatus("running");
    expect(t.stat("status").ino).toBe(inos[2]);
    const old = t.open("result.json", { read: true });
    t.remove("result.json");
    writeResult(t, "2");
    expect(t.stat("result.json").ino).not.toBe(inos[3]);
    // The removed file lives on for its open handle.
    expect(dec(old.read(10))).toBe("1");
  });
});
