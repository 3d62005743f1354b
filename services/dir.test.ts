import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirService, NODE_ERRORS } from "./dir.ts";
import { code, dec, enc, message } from "../test/helpers.ts";

let base: string; // holds root/ and outside/
let root: string;
let outside: string;

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "oanix-dir-"));
  root = path.join(base, "root");
  outside = path.join(base, "outside");
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, "secret.txt"), "secret");
  fs.mkdirSync(path.join(root, "sub"));
  fs.writeFileSync(path.join(root, "sub", "file.txt"), "inside");
});

afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

const writeFile = (d: DirService, p: string, text: string) => {
  const h = d.open(p, { write: true, create: true, truncate: true });
  h.write(enc(text));
  h.close();
};
const readFile = (d: DirService, p: string) => {
  const h = d.open(p, { read: true });
  const out = dec(h.read(1 << 20));
  h.close();
  return out;
};

describe("DirService: files", () => {
  it("reads, writes and lists real files", async () => {
    const d = new DirService(root);
    expect(readFile(d, "sub/file.txt")).toBe("inside");
    writeFile(d, "new.txt", "hello");
    expect(fs.readFileSync(path.join(root, "new.txt"), "utf8")).toBe("hello");
    d.mkdir("made");
    expect(fs.statSync(path.join(root, "made")).isDirectory()).toBe(true);
    expect(d.readdir("").map((e) => [e.name, e.type])).toEqual([
      ["made", "dir"],
      ["new.txt", "file"],
      ["sub", "dir"],
    ]);
    d.rename("new.txt", "made/moved.txt");
    expect(readFile(d, "made/moved.txt")).toBe("hello");
    d.remove("made/moved.txt");
    d.remove("made");
    expect(d.readdir("").map((e) => e.name)).toEqual(["sub"]);
  });

  it("keeps positions in the handle and honours append", async () => {
    const d = new DirService(root);
    const h = d.open("f", { read: true, write: true, create: true });
    h.write(enc("abc"));
    expect(h.position).toBe(3);
    h.write(enc("Z"), 0);
    expect(h.position).toBe(3);
    h.position = 1;
    expect(dec(h.read(10))).toBe("bc");
    expect(dec(h.read(2, 0))).toBe("Zb");
    const a = d.open("f", { append: true });
    a.write(enc("!!"), 0);
    expect(a.position).toBe(5);
    expect(readFile(d, "f")).toBe("Zbc!!");
    h.truncate(2);
    expect(readFile(d, "f")).toBe("Zb");
    expect(h.stat()).toMatchObject({ type: "file", size: 2, nlink: 1 });
    h.sync();
    h.close();
    a.close();
    expect(await code(() => h.read(1))).toBe("EBADF");
    expect(await code(() => h.close())).toBe("EBADF");
  });

  it("answers with stat data from the host, stable inos and exact times", async () => {
    const d = new DirService(root);
    const st = d.stat("sub/file.txt");
    const host = fs.statSync(path.join(root, "sub", "file.txt"), { bigint: true });
    expect(st).toMatchObject({ type: "file", size: 6, ino: Number(host.ino), mtimeNs: host.mtimeNs });
    expect(d.stat("sub/file.txt").ino).toBe(st.ino);
    expect(d.open("sub/file.txt", { read: true }).stat().ino).toBe(st.ino);
    d.setTimes("sub/file.txt", 1_000_000_000n, 2_000_000_000n);
    expect(d.stat("sub/file.txt")).toMatchObject({ atimeNs: 1_000_000_000n, mtimeNs: 2_000_000_000n });
    d.setTimes("sub/file.txt", undefined, 3_000_000_000n);
    expect(d.stat("sub/file.txt")).toMatchObject({ atimeNs: 1_000_000_000n, mtimeNs: 3_000_000_000n });
    const h = d.open("sub/file.txt", { write: true });
    h.setTimes(5_000_000_000n, undefined);
    expect(d.stat("sub/file.txt").atimeNs).toBe(5_000_000_000n);
    d.link("sub/file.txt", "hard");
    expect(d.stat("hard").ino).toBe(st.ino);
    expect(d.stat("hard").nlink).toBe(2);
  });

  it("maps errors to the right codes, naming the relative path only", async () => {
    const d = new DirService(root);
    expect(await code(() => d.stat("missing"))).toBe("ENOENT");
    expect(await code(() => d.open("missing/x", { write: true, create: true }))).toBe("ENOENT");
    expect(await code(() => d.open("sub/file.txt/x", { read: true }))).toBe("ENOTDIR");
    expect(await code(() => d.open("sub", { write: true }))).toBe("EISDIR");
    expect(await code(() => d.open("sub/file.txt", { read: true, directory: true }))).toBe("ENOTDIR");
    expect(await code(() => d.open("sub/file.txt", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
    expect(await code(() => d.mkdir("sub"))).toBe("EEXIST");
    expect(await code(() => d.remove("sub"))).toBe("ENOTEMPTY");
    expect(await code(() => d.readdir("sub/file.txt"))).toBe("ENOTDIR");
    expect(await code(() => d.remove(""))).toBe("EBUSY");
    expect(await code(() => d.rename("sub", "sub/inner"))).toBe("EINVAL");
    expect(await code(() => d.readlink("sub/file.txt"))).toBe("EINVAL");
    const m = await message(() => d.stat("sub/nothing"));
    expect(m).toBe("ENOENT: stat sub/nothing: no such file or directory");
    expect(m).not.toContain(base);
    expect(NODE_ERRORS.EOPNOTSUPP).toBe("ENOTSUP");
    expect(await code(() => new DirService(path.join(base, "nope")))).toBe("ENOENT");
    expect(await code(() => new DirService(path.join(root, "sub", "file.txt")))).toBe("ENOTDIR");
  });
});

describe("DirService: no way out", () => {
  it("keeps ..-laden paths inside the root", async () => {
    const d = new DirService(root);
    expect(readFile(d, "../../sub/file.txt")).toBe("inside");
    expect(readFile(d, "/../../../sub/../sub/./file.txt")).toBe("inside");
    expect(await code(() => d.stat("../outside/secret.txt"))).toBe("ENOENT");
    writeFile(d, "../../../escape.txt", "x");
    expect(fs.existsSync(path.join(root, "escape.txt"))).toBe(true);
    expect(fs.existsSync(path.join(base, "escape.txt"))).toBe(false);
    expect(d.readdir("..").map((e) => e.name)).toEqual(["escape.txt", "sub"]);
    d.mkdir("../x");
    expect(fs.existsSync(path.join(root, "x"))).toBe(true);
  });

  it("refuses symlinks that lead outside, in any segment and for every operation", async () => {
    fs.symlinkSync(outside, path.join(root, "abs"));
    fs.symlinkSync("../outside", path.join(root, "rel"));
    fs.symlinkSync("../../outside/secret.txt", path.join(root, "sub", "deep"));
    fs.symlinkSync(path.join(outside, "new.txt"), path.join(root, "dangling"));
    fs.symlinkSync("../outside/new2.txt", path.join(root, "dangling2"));
    const d = new DirService(root);
    const ops: [string, () => unknown][] = [
      ["open abs/secret.txt", () => d.open("abs/secret.txt", { read: true })],
      ["open rel/secret.txt", () => d.open("rel/secret.txt", { read: true })],
      ["open sub/deep", () => d.open("sub/deep", { read: true })],
      ["write sub/deep", () => d.open("sub/deep", { write: true })],
      ["stat abs", () => d.stat("abs")],
      ["stat sub/deep", () => d.stat("sub/deep")],
      ["stat rel/secret.txt", () => d.stat("rel/secret.txt")],
      ["lstat rel/secret.txt", () => d.lstat("rel/secret.txt")],
      ["readdir abs", () => d.readdir("abs")],
      ["readdir rel", () => d.readdir("rel")],
      ["mkdir abs/x", () => d.mkdir("abs/x")],
      ["create abs/x", () => d.open("abs/x", { write: true, create: true })],
      ["create via dangling", () => d.open("dangling", { write: true, create: true })],
      ["create via dangling2", () => d.open("dangling2", { write: true, create: true })],
      ["remove rel/secret.txt", () => d.remove("rel/secret.txt")],
      ["rename out", () => d.rename("rel/secret.txt", "stolen.txt")],
      ["rename in", () => d.rename("sub/file.txt", "abs/planted.txt")],
      ["link out", () => d.link("rel/secret.txt", "stolen.txt")],
      ["symlink in abs", () => d.symlink("x", "abs/l")],
      ["setTimes abs", () => d.setTimes("abs", 1n, 1n)],
      ["readlink abs", () => d.readlink("abs")],
      ["readlink sub/deep", () => d.readlink("sub/deep")],
    ];
    for (const [name, op] of ops) expect([name, await code(op)]).toEqual([name, "EACCES"]);
    expect(fs.readdirSync(outside)).toEqual(["secret.txt"]);
    expect(fs.readFileSync(path.join(outside, "secret.txt"), "utf8")).toBe("secret");
    expect(fs.readFileSync(path.join(root, "sub", "file.txt"), "utf8")).toBe("inside");
    expect(fs.existsSync(path.join(root, "stolen.txt"))).toBe(false);
    // The link itself lives inside: lstat may describe it, and it can be removed.
    expect(d.lstat("abs").type).toBe("symlink");
    expect(d.readdir("").find((e) => e.name === "abs")?.type).toBe("symlink");
    d.remove("abs");
    expect(fs.existsSync(outside)).toBe(true);
  });

  it("refuses a root reached through a symlinked parent of the tree", async () => {
    // An intermediate directory replaced by a symlink to the outside.
    fs.rmSync(path.join(root, "sub"), { recursive: true });
    fs.symlinkSync(outside, path.join(root, "sub"));
    const d = new DirService(root);
    expect(await code(() => d.open("sub/secret.txt", { read: true }))).toBe("EACCES");
    expect(await code(() => d.open("sub/planted", { write: true, create: true }))).toBe("EACCES");
    expect(fs.readdirSync(outside)).toEqual(["secret.txt"]);
  });

  it("follows symlinks that stay inside", async () => {
    fs.symlinkSync("sub/file.txt", path.join(root, "alias"));
    fs.symlinkSync("sub", path.join(root, "subdir"));
    fs.symlinkSync(path.join(root, "sub"), path.join(root, "absinside"));
    fs.symlinkSync("../root/sub/file.txt", path.join(root, "roundabout"));
    const d = new DirService(root);
    expect(readFile(d, "alias")).toBe("inside");
    expect(readFile(d, "subdir/file.txt")).toBe("inside");
    expect(readFile(d, "absinside/file.txt")).toBe("inside");
    expect(readFile(d, "roundabout")).toBe("inside");
    expect(d.readdir("subdir").map((e) => e.name)).toEqual(["file.txt"]);
    expect(d.stat("alias").type).toBe("file");
    expect(d.lstat("alias").type).toBe("symlink");
    expect(d.readlink("alias")).toBe("sub/file.txt");
    expect(d.readlink("absinside")).toBe("sub");
    expect(d.readlink("roundabout")).toBe("sub/file.txt");
    expect(await code(() => d.open("alias", { read: true, nofollow: true }))).toBe("ELOOP");
    // Creating through a dangling symlink inside the root creates its target.
    fs.symlinkSync("sub/later.txt", path.join(root, "later"));
    writeFile(d, "later", "made");
    expect(fs.readFileSync(path.join(root, "sub", "later.txt"), "utf8")).toBe("made");
    // An exclusive create does not follow it.
    expect(await code(() => d.open("later", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
    fs.symlinkSync("loop", path.join(root, "loop"));
    expect(await code(() => d.stat("loop"))).toBe("ELOOP");
  });

  it("makes symlinks only to targets that stay inside", async () => {
    const d = new DirService(root);
    expect(await code(() => d.symlink("/etc/passwd", "l1"))).toBe("EACCES");
    expect(await code(() => d.symlink(outside, "l2"))).toBe("EACCES");
    expect(await code(() => d.symlink("../outside", "l3"))).toBe("EACCES");
    expect(await code(() => d.symlink("sub/../../x", "l4"))).toBe("EACCES");
    expect(await code(() => d.symlink("../../x", "sub/l5"))).toBe("EACCES");
    expect(await code(() => d.symlink("", "l6"))).toBe("EINVAL");
    expect(fs.readdirSync(root)).toEqual(["sub"]);
    d.symlink("../sub/file.txt", "sub/up");
    d.symlink("sub/file.txt", "ok");
    expect(readFile(d, "sub/up")).toBe("inside");
    expect(readFile(d, "ok")).toBe("inside");
    expect(fs.readlinkSync(path.join(root, "ok"))).toBe("sub/file.txt");
    expect(await code(() => d.symlink("sub", "ok"))).toBe("EEXIST");
    d.setTimes("ok", 7_000_000_000n, 8_000_000_000n, { nofollow: true });
    expect(d.lstat("ok").mtimeNs).toBe(8_000_000_000n);
  });
});

describe("DirService: read-only", () => {
  it("refuses every change with EROFS and changes nothing", async () => {
    const d = new DirService(root, { readOnly: true });
    expect(readFile(d, "sub/file.txt")).toBe("inside");
    expect(await code(() => d.open("sub/file.txt", { write: true }))).toBe("EROFS");
    expect(await code(() => d.open("sub/file.txt", { read: true, truncate: true }))).toBe("EROFS");
    expect(await code(() => d.open("new", { write: true, create: true }))).toBe("EROFS");
    expect(await code(() => d.open("new", { read: true, create: true }))).toBe("EROFS");
    expect(await code(() => d.mkdir("m"))).toBe("EROFS");
    expect(await code(() => d.remove("sub/file.txt"))).toBe("EROFS");
    expect(await code(() => d.rename("sub/file.txt", "x"))).toBe("EROFS");
    expect(await code(() => d.symlink("sub", "l"))).toBe("EROFS");
    expect(await code(() => d.link("sub/file.txt", "l"))).toBe("EROFS");
    expect(await code(() => d.setTimes("sub/file.txt", 1n, 1n))).toBe("EROFS");
    const h = d.open("sub/file.txt", { read: true });
    expect(await code(() => h.write(enc("x")))).toBe("EROFS");
    expect(await code(() => h.truncate(0))).toBe("EROFS");
    expect(await code(() => h.setTimes(1n, 1n))).toBe("EROFS");
    expect(fs.readFileSync(path.join(root, "sub", "file.txt"), "utf8")).toBe("inside");
    expect(fs.readdirSync(root)).toEqual(["sub"]);
  });
});

describe("DirService: no race, no FIFO, no link moved out", () => {
  it("opens and creates under a name another thread keeps swapping between a directory and a symlink out: nothing lands outside", async () => {
    const { Worker } = await import("node:worker_threads");
    fs.mkdirSync(path.join(root, "d"));
    fs.writeFileSync(path.join(root, "d", "secret.txt"), "inside");
    fs.symlinkSync("../outside", path.join(root, "l"));
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const swapper = new Worker(
      `const fs = require("node:fs"); const { root, stop } = require("node:worker_threads").workerData;
       const mv = (a, b) => { try { fs.renameSync(root + "/" + a, root + "/" + b); } catch {} };
       while (Atomics.load(stop, 0) === 0) { mv("d", "x"); mv("x", "d"); mv("l", "x"); mv("x", "l"); }`,
      { eval: true, workerData: { root, stop } },
    );
    const d = new DirService(root);
    const seen = { inside: 0, failed: 0 };
    try {
      for (let i = 0; i < 4000; i++) {
        try {
          const text = readFile(d, "x/secret.txt");
          expect(text).toBe("inside");
          seen.inside++;
        } catch (e) {
          if (!(e instanceof Error && "code" in e)) throw e;
          seen.failed++;
        }
        try {
          writeFile(d, `x/new-${i}.txt`, "n");
        } catch {
          // refused or raced away: fine, as long as nothing lands outside
        }
      }
    } finally {
      Atomics.store(stop, 0, 1);
      await new Promise((r) => swapper.once("exit", r));
    }
    expect(fs.readdirSync(outside)).toEqual(["secret.txt"]);
    expect(seen.inside).toBeGreaterThan(0); // the race was run, not skipped
  });

  it("refuses to open a FIFO (or anything not a file or directory) without blocking", async () => {
    const { execFileSync } = await import("node:child_process");
    execFileSync("mkfifo", [path.join(root, "fifo")]);
    const d = new DirService(root);
    expect(await code(() => d.open("fifo", { read: true }))).toBe("EACCES");
    expect(["EACCES", "ENOENT"]).toContain(await code(() => d.open("fifo", { write: true })));
    expect(d.lstat("fifo").type).toBe("file");
  });

  it("re-checks a link when it is renamed, and the links inside a directory moved up", async () => {
    const d = new DirService(root);
    d.mkdir("a");
    d.symlink("../outside", "a/l"); // from a/, this stays inside
    expect(await code(() => d.rename("a/l", "l"))).toBe("EACCES");
    expect(d.lstat("a/l").type).toBe("symlink");
    d.mkdir("a/b");
    d.symlink("../../x", "a/b/l");
    expect(await code(() => d.rename("a/b", "b"))).toBe("EACCES");
    expect(d.lstat("a/b/l").type).toBe("symlink");
    d.mkdir("a/b/c");
    d.rename("a/b", "a/b/../b2"); // same depth: fine
    expect(fs.readdirSync(root).sort()).toEqual(["a", "sub"]);
  });

  it("checks a new link from where it really is, not from the path it was named by", async () => {
    fs.symlinkSync(".", path.join(root, "up"));
    const d = new DirService(root);
    expect(await code(() => d.symlink("../outside", "up/l"))).toBe("EACCES");
    expect(fs.existsSync(path.join(root, "l"))).toBe(false);
  });
});
