import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import { FsError, fsError } from "../runtime/errors.ts";
import type { DirEntry, FileHandle, FileService, OpenFlags, Stat } from "../runtime/types.ts";
import { CowService } from "./cow.ts";
import { DirService } from "./dir.ts";
import { MapService } from "./map.ts";
import { MemService } from "./mem.ts";
import { code, dec, enc } from "../test/helpers.ts";

/** A service whose every answer is a Promise (like a remote one), over a MemService. */
class AsyncService implements FileService {
  readonly inner: FileService;
  calls = 0;
  constructor(inner: FileService) {
    this.inner = inner;
  }
  async #call<T>(fn: () => T | Promise<T>): Promise<T> {
    this.calls++;
    await new Promise((r) => setTimeout(r, 0));
    return fn();
  }
  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const h = await this.#call(() => this.inner.open(path, flags));
    const call = <T>(fn: () => T | Promise<T>) => this.#call(fn);
    return {
      get position() {
        return h.position;
      },
      set position(v: number) {
        h.position = v;
      },
      read: (n, o) => call(() => h.read(n, o)),
      write: (d, o) => call(() => h.write(d, o)),
      stat: () => call(() => h.stat()),
      truncate: (s) => call(() => h.truncate(s)),
      sync: () => call(() => h.sync()),
      close: () => call(() => h.close()),
      setTimes: (a, m) => call(() => h.setTimes!(a, m)),
    };
  }
  stat(p: string): Promise<Stat> {
    return this.#call(() => this.inner.stat(p));
  }
  lstat(p: string): Promise<Stat> {
    return this.#call(() => this.inner.lstat!(p));
  }
  readdir(p: string): Promise<DirEntry[]> {
    return this.#call(() => this.inner.readdir(p));
  }
  mkdir(p: string): Promise<void> {
    return this.#call(() => this.inner.mkdir(p));
  }
  remove(p: string): Promise<void> {
    return this.#call(() => this.inner.remove(p));
  }
  rename(a: string, b: string): Promise<void> {
    return this.#call(() => this.inner.rename(a, b));
  }
  symlink(t: string, p: string): Promise<void> {
    return this.#call(() => this.inner.symlink!(t, p));
  }
  readlink(p: string): Promise<string> {
    return this.#call(() => this.inner.readlink!(p));
  }
  link(a: string, b: string): Promise<void> {
    return this.#call(() => this.inner.link!(a, b));
  }
  setTimes(p: string, a: bigint | undefined, m: bigint | undefined, o?: { nofollow?: boolean }): Promise<void> {
    return this.#call(() => this.inner.setTimes!(p, a, m, o));
  }
}


async function read(svc: FileService, p: string): Promise<string> {
  const h = await svc.open(p, { read: true });
  const parts: string[] = [];
  for (;;) {
    const b = await h.read(1 << 16);
    if (b.length === 0) break;
    parts.push(dec(b));
  }
  await h.close();
  return parts.join("");
}

async function write(svc: FileService, p: string, text: string): Promise<void> {
  const h = await svc.open(p, { write: true, create: true, truncate: true });
  await h.write(enc(text));
  await h.close();
}

type Snapshot = Record<string, string>;

/** Everything in a service: files as "file:<text>", directories as "dir", symlinks as "link:<target>". */
async function snapshot(svc: FileService, dir = "", out: Snapshot = {}): Promise<Snapshot> {
  for (const e of await svc.readdir(dir)) {
    const p = dir === "" ? e.name : `${dir}/${e.name}`;
    const st = await svc.lstat!(p);
    if (st.type === "dir") {
      out[p] = "dir";
      await snapshot(svc, p, out);
    } else if (st.type === "symlink") out[p] = `link:${await svc.readlink!(p)}`;
    else out[p] = `file:${await read(svc, p)}`;
  }
  return out;
}

const seed = () =>
  new MemService({
    "README.md": "readme",
    "src/a.ts": "export const a = 1;\n",
    "src/b.ts": "export const b = 2;\n",
    "src/lib/deep.ts": "deep",
    "docs/guide.md": "guide",
  });

type Mode = "sync" | "async";
const modes: Mode[] = ["sync", "async"];

function setup(mode: Mode, lowerMem = seed()) {
  const lower: FileService = mode === "sync" ? lowerMem : new AsyncService(lowerMem);
  return { lowerMem, lower, cow: new CowService(lower) };
}

describe("CowService answers in kind", () => {
  it("stays synchronous over a sync lower", () => {
    const { cow, lowerMem } = setup("sync");
    const st = cow.stat("src/a.ts");
    expect(st instanceof Promise).toBe(false);
    const h = cow.open("src/a.ts", { write: true }) as FileHandle;
    expect(h instanceof Promise).toBe(false);
    expect(h.write(enc("X"), 0)).toBe(1);
    expect(cow.readdir("src") instanceof Promise).toBe(false);
    expect(cow.diff()).toEqual([{ path: "src/a.ts", change: "modified", type: "file" }]);
    cow.commit();
    expect(dec(lowerMem.readFile("src/a.ts"))).toBe("Xxport const a = 1;\n");
  });

  it("answers with Promises over an async lower", async () => {
    const { cow } = setup("async");
    const st = cow.stat("src/a.ts");
    expect(st instanceof Promise).toBe(true);
    expect((await st).size).toBe(20);
    expect(cow.open("README.md", { read: true }) instanceof Promise).toBe(true);
  });
});

describe.each(modes)("CowService over a %s lower", (mode) => {
  it("reads through and copies up on write, leaving the lower alone", async () => {
    const { cow, lowerMem } = setup(mode);
    expect(await read(cow, "src/a.ts")).toBe("export const a = 1;\n");
    await write(cow, "src/a.ts", "changed");
    expect(await read(cow, "src/a.ts")).toBe("changed");
    expect(dec(lowerMem.readFile("src/a.ts"))).toBe("export const a = 1;\n");
    // Appending copies the old content up first.
    const h = await cow.open("src/b.ts", { append: true });
    await h.write(enc("// more\n"));
    await h.close();
    expect(await read(cow, "src/b.ts")).toBe("export const b = 2;\n// more\n");
    // A read-write open without writing is no change.
    await (await cow.open("docs/guide.md", { read: true, write: true })).close();
    await write(cow, "src/lib/new.ts", "new");
    expect(await cow.diff()).toEqual([
      { path: "src/a.ts", change: "modified", type: "file" },
      { path: "src/b.ts", change: "modified", type: "file" },
      { path: "src/lib/new.ts", change: "added", type: "file" },
    ]);
    expect(await snapshot(lowerMem)).toEqual(await snapshot(seed()));
  });

  it("removes with tombstones and merges directory listings", async () => {
    const { cow, lowerMem } = setup(mode);
    await write(cow, "src/c.ts", "c");
    await cow.remove("src/a.ts");
    expect((await cow.readdir("src")).map((e) => e.name)).toEqual(["b.ts", "c.ts", "lib"]);
    expect(await code(() => cow.stat("src/a.ts"))).toBe("ENOENT");
    expect(await code(() => cow.remove("src/a.ts"))).toBe("ENOENT");
    expect(await code(() => cow.remove("src"))).toBe("ENOTEMPTY");
    await cow.remove("src/lib/deep.ts");
    await cow.remove("src/lib");
    await cow.mkdir("src/lib");
    // A directory made again where one was removed starts empty.
    expect(await cow.readdir("src/lib")).toEqual([]);
    // Re-creating a removed file shows only the new one.
    await write(cow, "src/a.ts", "again");
    expect(await read(cow, "src/a.ts")).toBe("again");
    expect(await cow.diff()).toEqual([
      { path: "src/a.ts", change: "modified", type: "file" },
      { path: "src/c.ts", change: "added", type: "file" },
      { path: "src/lib/deep.ts", change: "deleted", type: "file" },
    ]);
    expect(lowerMem.readdir("src/lib").map((e) => e.name)).toEqual(["deep.ts"]);
  });

  it("renames files and whole directories, keeping inos", async () => {
    const { cow, lowerMem } = setup(mode);
    const inoA = (await cow.stat("src/a.ts")).ino;
    const inoDeep = (await cow.stat("src/lib/deep.ts")).ino;
    await cow.rename("src/a.ts", "a-moved.ts");
    expect((await cow.stat("a-moved.ts")).ino).toBe(inoA);
    expect(await read(cow, "a-moved.ts")).toBe("export const a = 1;\n");
    await cow.rename("src", "source");
    expect(await code(() => cow.stat("src"))).toBe("ENOENT");
    expect(await snapshot(cow)).toEqual({
      "README.md": "file:readme",
      "a-moved.ts": "file:export const a = 1;\n",
      docs: "dir",
      "docs/guide.md": "file:guide",
      source: "dir",
      "source/b.ts": "file:export const b = 2;\n",
      "source/lib": "dir",
      "source/lib/deep.ts": "file:deep",
    });
    expect((await cow.stat("source/lib/deep.ts")).ino).toBe(inoDeep);
    // A new directory where the old one was is empty.
    await cow.mkdir("src");
    expect(await cow.readdir("src")).toEqual([]);
    expect(await snapshot(lowerMem)).toEqual(await snapshot(seed()));
    expect(await code(() => cow.rename("source", "source/inner"))).toBe("EINVAL");
    expect(await code(() => cow.rename("README.md", "docs"))).toBe("EISDIR");
    expect(await code(() => cow.rename("docs", "README.md"))).toBe("ENOTDIR");
    expect(await code(() => cow.rename("source", "docs"))).toBe("ENOTEMPTY");
    expect(await code(() => cow.rename("nope", "x"))).toBe("ENOENT");
    expect(await code(() => cow.rename("README.md", "nodir/x"))).toBe("ENOENT");
    // Rename over an existing file replaces it.
    await cow.rename("README.md", "docs/guide.md");
    expect(await read(cow, "docs/guide.md")).toBe("readme");
    expect(await code(() => cow.stat("README.md"))).toBe("ENOENT");
  });

  it("lets handles see each other's writes across a copy-up", async () => {
    const { cow } = setup(mode);
    const reader = await cow.open("src/a.ts", { read: true });
    expect(dec(await reader.read(6))).toBe("export");
    const writer = await cow.open("src/a.ts", { write: true });
    await writer.write(enc("EXPORT CONST"), 0);
    // The reader keeps its position and now reads the upper copy.
    expect(reader.position).toBe(6);
    expect(dec(await reader.read(6))).toBe(" CONST");
    expect(reader.position).toBe(12);
    const inoReader = (await reader.stat()).ino;
    expect(inoReader).toBe((await writer.stat()).ino);
    expect(inoReader).toBe((await cow.stat("src/a.ts")).ino);
    await reader.close();
    await writer.close();
    expect(await code(() => reader.read(1))).toBe("EBADF");
    const ro = await cow.open("README.md", { read: true });
    expect(await code(() => ro.write(enc("x")))).toBe("EBADF");
  });

  it("copies a file up once when two writers race for it", async () => {
    const { cow } = setup(mode);
    const first = (async () => {
      const h = await cow.open("src/a.ts", { write: true });
      await h.write(enc("AAAAAA"), 0);
      return h;
    })();
    const second = cow.open("src/a.ts", { write: true });
    const [a, b] = await Promise.all([first, second]);
    await b.write(enc("B"), 19);
    expect(await read(cow, "src/a.ts")).toBe("AAAAAA const a = 1;B");
    await a.close();
    await b.close();
  });

  it("follows symlinks over the merged view", async () => {
    const lowerMem = seed();
    lowerMem.symlink("src/a.ts", "link-a");
    lowerMem.symlink("src", "srcdir");
    lowerMem.symlink("../README.md", "docs/up");
    const { cow } = setup(mode, lowerMem);
    expect(await read(cow, "link-a")).toBe("export const a = 1;\n");
    await write(cow, "src/a.ts", "new a");
    // The link shows the overlay's target, not the lower's stale copy.
    expect(await read(cow, "link-a")).toBe("new a");
    expect(await read(cow, "srcdir/a.ts")).toBe("new a");
    expect(await read(cow, "docs/up")).toBe("readme");
    expect((await cow.lstat("link-a")).type).toBe("symlink");
    expect((await cow.stat("link-a")).type).toBe("file");
    expect(await cow.readlink("link-a")).toBe("src/a.ts");
    expect(await code(() => cow.open("link-a", { read: true, nofollow: true }))).toBe("ELOOP");
    expect(await code(() => cow.readlink("README.md"))).toBe("EINVAL");
    // Writing through a link writes its target.
    await write(cow, "srcdir/b.ts", "via link");
    expect(await read(cow, "src/b.ts")).toBe("via link");
    await cow.symlink("docs/guide.md", "g");
    expect(await read(cow, "g")).toBe("guide");
    await cow.symlink("loop", "loop");
    expect(await code(() => cow.stat("loop"))).toBe("ELOOP");
    // A dangling link: create makes its target.
    await cow.symlink("docs/later.md", "later");
    await write(cow, "later", "made");
    expect(await read(cow, "docs/later.md")).toBe("made");
    expect(await code(() => cow.open("later", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
    // Renaming a link moves the link.
    await cow.rename("link-a", "link-b");
    expect(await read(cow, "link-b")).toBe("new a");
    const changes = await cow.diff();
    expect(changes).toContainEqual({ path: "link-b", change: "added", type: "symlink" });
    expect(changes).toContainEqual({ path: "link-a", change: "deleted", type: "symlink" });
  });

  it("answers errors with the right codes and changes nothing", async () => {
    const { cow } = setup(mode);
    expect(await code(() => cow.open("nope", { read: true }))).toBe("ENOENT");
    expect(await code(() => cow.open("nodir/x", { write: true, create: true }))).toBe("ENOENT");
    expect(await code(() => cow.open("README.md/x", { read: true }))).toBe("ENOTDIR");
    expect(await code(() => cow.open("src", { write: true }))).toBe("EISDIR");
    expect(await code(() => cow.open("README.md", { read: true, directory: true }))).toBe("ENOTDIR");
    expect(await code(() => cow.open("README.md", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
    expect(await code(() => cow.mkdir("src"))).toBe("EEXIST");
    expect(await code(() => cow.mkdir("a/b"))).toBe("ENOENT");
    expect(await code(() => cow.readdir("README.md"))).toBe("ENOTDIR");
    expect(await code(() => cow.remove(""))).toBe("EBUSY");
    expect(await code(() => cow.symlink("x", "README.md"))).toBe("EEXIST");
    expect(await code(() => cow.link("src", "l"))).toBe("EPERM");
    expect(await cow.diff()).toEqual([]);
    const d = await cow.open("src", { read: true, directory: true });
    expect((await d.stat()).type).toBe("dir");
  });

  it("keeps times on copy-up and sets them through the overlay", async () => {
    const { cow, lowerMem } = setup(mode);
    lowerMem.setTimes("src/a.ts", 11n, 22n);
    await write(cow, "src/b.ts", "x");
    const h = await cow.open("src/a.ts", { read: true, write: true });
    expect(await cow.stat("src/a.ts")).toMatchObject({ atimeNs: 11n, mtimeNs: 22n });
    await h.close();
    await cow.setTimes("README.md", 5n, 6n);
    expect(await cow.stat("README.md")).toMatchObject({ atimeNs: 5n, mtimeNs: 6n });
    expect(lowerMem.stat("README.md").mtimeNs).not.toBe(6n);
    const r = await cow.open("docs/guide.md", { read: true });
    await r.setTimes!(7n, 8n);
    expect(await cow.stat("docs/guide.md")).toMatchObject({ atimeNs: 7n, mtimeNs: 8n });
    expect(dec(await r.read(5))).toBe("guide");
  });

  it("hard-links by copying the file up once", async () => {
    const { cow } = setup(mode);
    await cow.link("README.md", "README.copy");
    expect((await cow.stat("README.copy")).ino).toBe((await cow.stat("README.md")).ino);
    await write(cow, "README.copy", "shared");
    expect(await read(cow, "README.md")).toBe("shared");
  });

  it("commits onto a writable lower, after which the cow is clean", async () => {
    const { cow, lowerMem } = setup(mode);
    await write(cow, "src/a.ts", "A");
    await cow.remove("src/lib/deep.ts");
    await cow.remove("src/lib");
    await cow.mkdir("out");
    await write(cow, "out/x.txt", "x");
    await cow.rename("docs", "documents");
    await cow.symlink("out/x.txt", "x-link");
    await cow.remove("README.md");
    await cow.mkdir("README.md"); // a file replaced by a directory
    const view = await snapshot(cow);
    const inoX = (await cow.stat("out/x.txt")).ino;
    const inoA = (await cow.stat("src/a.ts")).ino;
    await cow.commit();
    expect(await snapshot(lowerMem)).toEqual(view);
    expect(await snapshot(cow)).toEqual(view);
    expect(await cow.diff()).toEqual([]);
    expect((await cow.stat("out/x.txt")).ino).toBe(inoX);
    expect((await cow.stat("src/a.ts")).ino).toBe(inoA);
  });

  it("keeps handles working across commit and reset", async () => {
    const { cow, lowerMem } = setup(mode);
    const h = await cow.open("src/a.ts", { read: true, write: true });
    await h.write(enc("ONE"), 0);
    await cow.commit();
    expect(dec(lowerMem.readFile("src/a.ts")).slice(0, 3)).toBe("ONE");
    // The handle now writes into the overlay again (copying up), not into a discarded file.
    await h.write(enc("TWO"), 0);
    expect((await read(cow, "src/a.ts")).slice(0, 3)).toBe("TWO");
    await cow.reset();
    expect((await read(cow, "src/a.ts")).slice(0, 3)).toBe("ONE");
    const n = await cow.open("fresh.txt", { write: true, create: true });
    await cow.reset();
    expect(await code(() => n.write(enc("lost?")))).toBe("EBADF");
    expect(await code(() => cow.stat("fresh.txt"))).toBe("ENOENT");
  });

  it("reset discards everything", async () => {
    const { cow, lowerMem } = setup(mode);
    const before = await snapshot(cow);
    await write(cow, "src/a.ts", "A");
    await cow.remove("docs/guide.md");
    await cow.rename("src", "s");
    await cow.mkdir("m");
    await cow.reset();
    expect(await snapshot(cow)).toEqual(before);
    expect(await snapshot(lowerMem)).toEqual(before);
    expect(await cow.diff()).toEqual([]);
    expect(await snapshot(cow.upper)).toEqual({});
  });

  it("refuses a commit onto a read-only lower with EROFS and loses nothing", async () => {
    const map = new MapService({ "a.txt": "a", "d/b.txt": "b" });
    const lower: FileService = mode === "sync" ? map : new AsyncService(map);
    const cow = new CowService(lower);
    await write(cow, "a.txt", "changed");
    await cow.remove("d/b.txt");
    await write(cow, "new.txt", "n");
    const view = await snapshot(cow);
    const changes = await cow.diff();
    expect(await code(() => cow.commit())).toBe("EROFS");
    expect(await snapshot(cow)).toEqual(view);
    expect(await cow.diff()).toEqual(changes);
    expect(await snapshot(map)).toEqual({ "a.txt": "file:a", d: "dir", "d/b.txt": "file:b" });
  });

  it("survives a lower that fails in the middle of a commit, and the retry completes it", async () => {
    const mem = seed();
    let budget = 2;
    const flaky: FileService = {
      open: (p: string, f: OpenFlags) => {
        if (f.write && budget-- <= 0) throw fsError("ENOSPC", `${p}: no space left`);
        return mem.open(p, f);
      },
      stat: (p) => mem.stat(p),
      lstat: (p) => mem.lstat(p),
      readdir: (p) => mem.readdir(p),
      mkdir: (p) => mem.mkdir(p),
      remove: (p) => mem.remove(p),
      rename: (a, b) => mem.rename(a, b),
      symlink: (t, p) => mem.symlink(t, p),
      readlink: (p) => mem.readlink(p),
      setTimes: (p, a, m, o) => mem.setTimes(p, a, m, o),
    };
    const lower: FileService = mode === "sync" ? flaky : new AsyncService(flaky);
    const cow = new CowService(lower);
    for (const n of ["1", "2", "3", "4"]) await write(cow, `n${n}.txt`, n);
    await cow.remove("README.md");
    const view = await snapshot(cow);
    expect(await code(() => cow.commit())).toBe("ENOSPC");
    expect(await snapshot(cow)).toEqual(view);
    budget = 100;
    await cow.commit();
    expect(await snapshot(mem)).toEqual(view);
    expect(await cow.diff()).toEqual([]);
  });
});

describe("CowService properties", () => {
  type Cmd =
    | { op: "write"; path: string; text: string }
    | { op: "append"; path: string; text: string }
    | { op: "remove"; path: string }
    | { op: "mkdir"; path: string }
    | { op: "rename"; from: string; to: string }
    | { op: "symlink"; target: string; path: string };

  const name = fc.constantFrom("a", "b", "c", "d");
  const path = fc.array(name, { minLength: 1, maxLength: 3 }).map((s) => s.join("/"));
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    fc.record({ op: fc.constant("write" as const), path, text: fc.string({ maxLength: 8 }) }),
    fc.record({ op: fc.constant("append" as const), path, text: fc.string({ maxLength: 8 }) }),
    fc.record({ op: fc.constant("remove" as const), path }),
    fc.record({ op: fc.constant("mkdir" as const), path }),
    fc.record({ op: fc.constant("rename" as const), from: path, to: path }),
    fc.record({ op: fc.constant("symlink" as const), target: path, path }),
  );

  const lowerSeed = () => new MemService({ "a/a": "1", "a/b/c": "2", b: "3", "c/d/a": "4" });

  async function apply(svc: FileService, c: Cmd): Promise<string> {
    try {
      switch (c.op) {
        case "write":
          await write(svc, c.path, c.text);
          break;
        case "append": {
          const h = await svc.open(c.path, { write: true, append: true, create: true });
          await h.write(enc(c.text));
          await h.close();
          break;
        }
        case "remove":
          await svc.remove(c.path);
          break;
        case "mkdir":
          await svc.mkdir(c.path);
          break;
        case "rename":
          await svc.rename(c.from, c.to);
          break;
        case "symlink":
          await svc.symlink!(c.target, c.path);
          break;
      }
      return "ok";
    } catch (e) {
      if (e instanceof FsError) return e.code;
      throw e;
    }
  }

  for (const mode of modes) {
    it(`${mode}: any changes, then commit, make the lower equal to the overlay (and match a plain copy)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { maxLength: 14 }), async (cmds) => {
          const lowerMem = lowerSeed();
          const model = lowerSeed(); // the same changes made directly
          const lower: FileService = mode === "sync" ? lowerMem : new AsyncService(lowerMem);
          const cow = new CowService(lower);
          for (const c of cmds) {
            const expected = await apply(model, c);
            const got = await apply(cow, c);
            // The overlay behaves like a plain file system (same answers, same tree).
            expect([c, got]).toEqual([c, expected]);
          }
          const view = await snapshot(cow);
          expect(view).toEqual(await snapshot(model));
          const changes = await cow.diff();
          const before = await snapshot(lowerMem);
          // The diff names exactly the paths whose contents differ.
          const differing = new Set([...Object.keys(view), ...Object.keys(before)].filter((p) => view[p] !== before[p]));
          expect(new Set(changes.map((c) => c.path))).toEqual(differing);
          for (const c of changes) {
            expect(c.change).toBe(before[c.path] === undefined ? "added" : view[c.path] === undefined ? "deleted" : "modified");
          }
          await cow.commit();
          expect(await snapshot(lowerMem)).toEqual(view);
          expect(await cow.diff()).toEqual([]);
        }),
        { numRuns: mode === "sync" ? 300 : 60 },
      );
    });
  }
});

describe("CowService over a host directory", () => {
  it("keeps the disk untouched until commit, and refuses commit onto a read-only mount", async () => {
    const dir = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), "oanix-cow-"));
    try {
      nodeFs.mkdirSync(nodePath.join(dir, "src"));
      nodeFs.writeFileSync(nodePath.join(dir, "src", "main.c"), "int main;");
      nodeFs.symlinkSync("src/main.c", nodePath.join(dir, "entry"));
      const ro = new CowService(new DirService(dir, { readOnly: true }));
      await write(ro, "src/main.c", "int main() {}");
      await ro.remove("entry");
      expect(await code(() => ro.commit())).toBe("EROFS");
      expect(await ro.diff()).toEqual([
        { path: "entry", change: "deleted", type: "symlink" },
        { path: "src/main.c", change: "modified", type: "file" },
      ]);
      expect(nodeFs.readFileSync(nodePath.join(dir, "src", "main.c"), "utf8")).toBe("int main;");

      const rw = new CowService(new DirService(dir));
      const ino = (await rw.stat("src/main.c")).ino;
      await write(rw, "src/main.c", "int main() {}");
      expect(await read(rw, "entry")).toBe("int main() {}");
      await write(rw, "src/util.c", "util");
      expect(nodeFs.readdirSync(nodePath.join(dir, "src"))).toEqual(["main.c"]);
      await rw.commit();
      expect(nodeFs.readFileSync(nodePath.join(dir, "src", "main.c"), "utf8")).toBe("int main() {}");
      expect(nodeFs.readFileSync(nodePath.join(dir, "src", "util.c"), "utf8")).toBe("util");
      expect((await rw.stat("src/main.c")).ino).toBe(ino);
      expect(await rw.diff()).toEqual([]);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
