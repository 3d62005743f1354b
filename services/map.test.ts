import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { MapService } from "./map.ts";
import { code } from "../test/helpers.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("MapService", () => {
  const make = () =>
    new MapService({
      "a/b.txt": "text",
      "a/c/d.bin": new Uint8Array([1, 2, 3]),
      "top.md": "# hi\n",
      "empty/": "",
    });

  it("reads files and implies directories", async () => {
    const m = make();
    const h = m.open("a/b.txt", { read: true });
    expect(text(h.read(100))).toBe("text");
    expect(h.position).toBe(4);
    expect(h.read(10).length).toBe(0);
    expect(text(h.read(2, 1))).toBe("ex");
    expect(h.position).toBe(4);
    expect([...m.open("/a/c/../c/./d.bin", { read: true }).read(10)]).toEqual([1, 2, 3]);
    expect(m.readdir("").map((e) => [e.name, e.type])).toEqual([
      ["a", "dir"],
      ["empty", "dir"],
      ["top.md", "file"],
    ]);
    expect(m.readdir("a").map((e) => e.name)).toEqual(["b.txt", "c"]);
    expect(m.readdir("empty")).toEqual([]);
    expect(m.stat("a").type).toBe("dir");
    expect(m.stat("a").nlink).toBe(3);
    expect(m.stat("a/b.txt")).toMatchObject({ type: "file", size: 4, nlink: 1 });
  });

  it("gives stable, distinct inos that match readdir", async () => {
    const m = make();
    const again = make();
    const inos = ["", "a", "a/b.txt", "a/c", "a/c/d.bin", "top.md", "empty"].map((p) => m.stat(p).ino);
    expect(new Set(inos).size).toBe(inos.length);
    expect(m.stat("a/b.txt").ino).toBe(m.stat("a/b.txt").ino);
    expect(again.stat("a/c/d.bin").ino).toBe(m.stat("a/c/d.bin").ino);
    expect(m.readdir("a").find((e) => e.name === "b.txt")?.ino).toBe(m.stat("a/b.txt").ino);
    expect(m.open("a/b.txt", { read: true }).stat().ino).toBe(m.stat("a/b.txt").ino);
  });

  it("uses the given time stamp", async () => {
    const m = new MapService({ f: "x" }, { mtimeNs: 123n });
    expect(m.stat("f")).toMatchObject({ mtimeNs: 123n, atimeNs: 123n, ctimeNs: 123n });
  });

  it("refuses every change with EROFS and stays intact", async () => {
    const m = make();
    expect(await code(() => m.open("a/b.txt", { write: true }))).toBe("EROFS");
    expect(await code(() => m.open("a/b.txt", { read: true, truncate: true }))).toBe("EROFS");
    expect(await code(() => m.open("a/b.txt", { append: true }))).toBe("EROFS");
    expect(await code(() => m.open("new.txt", { write: true, create: true }))).toBe("EROFS");
    expect(await code(() => m.mkdir("x"))).toBe("EROFS");
    expect(await code(() => m.remove("a/b.txt"))).toBe("EROFS");
    expect(await code(() => m.remove("a"))).toBe("EROFS");
    expect(await code(() => m.rename("a/b.txt", "z"))).toBe("EROFS");
    expect(await code(() => m.symlink("a", "l"))).toBe("EROFS");
    expect(await code(() => m.link("a/b.txt", "l"))).toBe("EROFS");
    expect(await code(() => m.setTimes("a/b.txt"))).toBe("EROFS");
    const h = m.open("a/b.txt", { read: true });
    expect(await code(() => h.write(new Uint8Array([1])))).toBe("EROFS");
    expect(await code(() => h.truncate(0))).toBe("EROFS");
    expect(await code(() => h.setTimes())).toBe("EROFS");
    expect(text(m.open("a/b.txt", { read: true }).read(100))).toBe("text");
    expect(m.readdir("").map((e) => e.name)).toEqual(["a", "empty", "top.md"]);
    try {
      m.mkdir("x/y");
    } catch (e) {
      expect(String((e as Error).message)).toContain("x/y");
    }
  });

  it("answers lookups with the right codes", async () => {
    const m = make();
    expect(await code(() => m.stat("nope"))).toBe("ENOENT");
    expect(await code(() => m.open("a/nope", { read: true }))).toBe("ENOENT");
    expect(await code(() => m.stat("a/b.txt/x"))).toBe("ENOTDIR");
    expect(await code(() => m.readdir("a/b.txt"))).toBe("ENOTDIR");
    expect(await code(() => m.open("a/b.txt", { read: true, directory: true }))).toBe("ENOTDIR");
    expect(await code(() => m.readlink("a/b.txt"))).toBe("EINVAL");
    expect(await code(() => m.readlink("nope"))).toBe("ENOENT");
    const d = m.open("a", { read: true, directory: true });
    expect(d.stat().type).toBe("dir");
    expect(await code(() => d.read(1))).toBe("EISDIR");
    const h = m.open("top.md", { read: true });
    expect(await code(() => h.read(-1))).toBe("EINVAL");
    expect(await code(() => h.read(1, -5))).toBe("EINVAL");
    h.close();
    expect(await code(() => h.read(1))).toBe("EBADF");
    expect(await code(() => h.close())).toBe("EBADF");
    expect(m.lstat("top.md")).toEqual(m.stat("top.md"));
  });

  it("keeps its own copy of the contents", async () => {
    const src = new Uint8Array([9, 9, 9]);
    const m = new MapService({ f: src });
    src[0] = 0;
    const out = m.open("f", { read: true }).read(3);
    out[1] = 0;
    expect([...m.open("f", { read: true }).read(3)]).toEqual([9, 9, 9]);
  });

  it("rejects conflicting input", async () => {
    expect(await code(() => new MapService({ a: "x", "a/b": "y" }))).toBe("EINVAL");
    expect(await code(() => new MapService({ "a/b": "y", a: "x" }))).toBe("EINVAL");
    expect(await code(() => new MapService({ "a/b": "1", "./a//b": "2" }))).toBe("EINVAL");
    expect(await code(() => new MapService({ "/": "x" }))).toBe("EINVAL");
    expect(await code(() => new MapService({ "d/": "not empty" }))).toBe("EINVAL");
    expect(await code(() => new MapService({ f: 42 as unknown as string }))).toBe("EINVAL");
  });

  it("reads back whatever it was given (property)", async () => {
    const name = fc.stringMatching(/^[a-z]{1,4}$/);
    fc.assert(
      fc.property(fc.dictionary(name, fc.uint8Array({ maxLength: 64 })), fc.nat(70), (files, chunk) => {
        const m = new MapService({ "d/": "", ...Object.fromEntries(Object.entries(files).map(([k, v]) => [`d/${k}`, v])) });
        expect(m.readdir("d").map((e) => e.name)).toEqual(Object.keys(files).sort());
        for (const [k, v] of Object.entries(files)) {
          const h = m.open(`d/${k}`, { read: true });
          const parts: number[] = [];
          for (;;) {
            const b = h.read(chunk + 1);
            if (b.length === 0) break;
            parts.push(...b);
          }
          expect(parts).toEqual([...v]);
          expect(m.stat(`d/${k}`).size).toBe(v.length);
        }
      }),
    );
  });
});
