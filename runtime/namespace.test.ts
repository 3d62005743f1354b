import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemService } from "../services/mem.ts";
import { FsError } from "./errors.ts";
import { code } from "../test/helpers.ts";
import { Budget, Namespace } from "./namespace.ts";
import { segments } from "./path.ts";
import type { FileHandle, FileService, OpenFlags } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const names = async (ns: FileService, p: string) => (await ns.readdir(p)).map((e) => e.name).sort();
async function readAll(ns: FileService, p: string): Promise<string> {
  const h = await ns.open(p, { read: true });
  const d = await h.read(1 << 20);
  await h.close();
  return dec.decode(d);
}

/** Every method of a service answers with a Promise, as a remote one would. */
function asyncOf(s: FileService): FileService {
  const wrap = <T>(f: () => T): Promise<Awaited<T>> => new Promise((res, rej) => setTimeout(() => { try { res(f() as Awaited<T>); } catch (e) { rej(e); } }, 0));
  return {
    open: (p, f) => wrap(() => s.open(p, f)),
    stat: (p) => wrap(() => s.stat(p)),
    lstat: (p) => wrap(() => s.lstat!(p)),
    readdir: (p) => wrap(() => s.readdir(p)),
    mkdir: (p) => wrap(() => s.mkdir(p)),
    remove: (p) => wrap(() => s.remove(p)),
    rename: (a, b) => wrap(() => s.rename(a, b)),
    symlink: (t, p) => wrap(() => s.symlink!(t, p)),
  };
}

describe("mount points and resolution", () => {
  const ns = () =>
    new Namespace()
      .mount("/task", new MemService({ "spec.json": "{}" }))
      .mount("/workspace", new MemService({ "a.txt": "A", "d/b.txt": "B" }))
      .mount("/cap/http", new MemService({ ctl: "" }));

  it("lists mount points in / and in intermediate directories", async () => {
    const n = ns();
    expect(await names(n, "/")).toEqual(["cap", "task", "workspace"]);
    expect(await names(n, "/cap")).toEqual(["http"]);
    expect((await n.stat("/cap")).type).toBe("dir");
    expect(await names(n, "/cap/http")).toEqual(["ctl"]);
  });

  it("resolves by segments, not string prefixes", async () => {
    const n = ns();
    expect(await code(() => n.stat("/taskfoo"))).toBe("ENOENT");
    expect(await code(() => n.stat("/cap/httpx"))).toBe("ENOENT");
    expect(await code(() => n.stat("/cap/nostr/pubkey"))).toBe("ENOENT");
  });

  it("normalises . .. and // before resolving, and .. never leaves the root", async () => {
    const n = ns();
    expect(await readAll(n, "/task/../workspace//d/./b.txt")).toBe("B");
    expect(await readAll(n, "/../../workspace/a.txt")).toBe("A");
    expect(await readAll(n, "workspace/../workspace/a.txt")).toBe("A");
  });

  it("cannot remove or rename a mount point or an intermediate directory", async () => {
    const n = ns();
    expect(await code(() => n.remove("/workspace"))).toBe("EBUSY");
    expect(await code(() => n.remove("/cap"))).toBe("EBUSY");
    expect(await code(() => n.rename("/workspace", "/w2"))).toBe("EBUSY");
    expect(await code(() => n.mkdir("/cap"))).toBe("EEXIST");
  });

  it("refuses renames and links across services with EXDEV, moving nothing", async () => {
    const n = ns();
    expect(await code(() => n.rename("/workspace/a.txt", "/task/a.txt"))).toBe("EXDEV");
    expect(await code(() => n.link!("/workspace/a.txt", "/task/a.txt"))).toBe("EXDEV");
    expect(await readAll(n, "/workspace/a.txt")).toBe("A");
    expect(await code(() => n.stat("/task/a.txt"))).toBe("ENOENT");
  });

  it("sets dev per mount so (dev, ino) is unique across the namespace", async () => {
    const n = ns();
    const a = await n.stat("/task/spec.json");
    const b = await n.stat("/workspace/a.txt");
    expect(a.dev).not.toBe(b.dev);
  });

  it("unmounts a whole mount point or one member of a union", async () => {
    const n = ns();
    n.unmount("/cap/http");
    expect(await names(n, "/")).toEqual(["task", "workspace"]);
    expect(await code(() => n.stat("/cap"))).toBe("ENOENT");
    expect(() => n.unmount("/nothing")).toThrow(FsError);
  });
});

describe("bind and union directories", () => {
  it("merges listings, takes the first member with a name, creates in the create member", async () => {
    const bin1 = new MemService({ ls: "ls-1", cat: "cat-1" });
    const bin2 = new MemService({ cat: "cat-2", grep: "grep-2" });
    const n = new Namespace().mount("/bin", bin1).mount("/bin", bin2, { mode: "after", create: true });
    expect(await names(n, "/bin")).toEqual(["cat", "grep", "ls"]);
    expect(await readAll(n, "/bin/cat")).toBe("cat-1");
    expect(await readAll(n, "/bin/grep")).toBe("grep-2");
    const h = await n.open("/bin/new", { write: true, create: true });
    await h.write(enc.encode("x"));
    expect(dec.decode(bin2.readFile("new"))).toBe("x");
    expect(await code(() => bin1.stat("new"))).toBe("ENOENT");
    await n.mkdir("/bin/sub");
    expect(bin2.stat("sub").type).toBe("dir");
  });

  it("before puts the new member first; replace drops the old ones", async () => {
    const a = new MemService({ f: "a" });
    const b = new MemService({ f: "b" });
    const n = new Namespace().mount("/u", a).mount("/u", b, { mode: "before" });
    expect(await readAll(n, "/u/f")).toBe("b");
    n.mount("/u", new MemService({ g: "c" }));
    expect(await names(n, "/u")).toEqual(["g"]);
  });

  it("a union with no create member refuses creates with EACCES", async () => {
    const n = new Namespace().mount("/u", new MemService()).mount("/u", new MemService(), { mode: "after" });
    expect(await code(() => n.open("/u/x", { write: true, create: true }))).toBe("EACCES");
    expect(await code(() => n.mkdir("/u/d"))).toBe("EACCES");
  });

  it("an exclusive create sees names in every member", async () => {
    const n = new Namespace().mount("/u", new MemService({ x: "1" })).mount("/u", new MemService(), { mode: "after", create: true });
    expect(await code(() => n.open("/u/x", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
  });

  it("binds a subtree elsewhere, sharing the same files", async () => {
    const mem = new MemService({ "proj/src/main.ts": "main" });
    const n = new Namespace().mount("/workspace", mem).bind("/workspace/proj/src", "/src");
    expect(await readAll(n, "/src/main.ts")).toBe("main");
    const h = await n.open("/src/new.ts", { write: true, create: true });
    await h.write(enc.encode("n"));
    expect(dec.decode(mem.readFile("proj/src/new.ts"))).toBe("n");
  });

  it("bind can narrow access but never widen it", async () => {
    const mem = new MemService({ f: "x" });
    const n = new Namespace().mount("/w", mem).bind("/w", "/r", { access: "ro" });
    expect(await code(() => n.open("/r/f", { write: true }))).toBe("EROFS");
    const m = new Namespace().mount("/ro", mem, { access: "ro" }).bind("/ro", "/rw", { access: "rw" });
    expect(await code(() => m.open("/rw/f", { write: true }))).toBe("EROFS");
  });

  it("falls through union members when services answer with Promises", async () => {
    const n = new Namespace().mount("/u", asyncOf(new MemService({ a: "1" }))).mount("/u", asyncOf(new MemService({ b: "2" })), { mode: "after" });
    expect(await readAll(n, "/u/b")).toBe("2");
    expect(await names(n, "/u")).toEqual(["a", "b"]);
    expect(await code(() => n.stat("/u/c"))).toBe("ENOENT");
  });
});

describe("access levels", () => {
  it("a read-only mount refuses every kind of write with EROFS and loses nothing", async () => {
    const mem = new MemService({ "f.txt": "keep", "d/x": "x" });
    const n = new Namespace().mount("/ro", mem, { access: "ro" });
    const writes: [string, () => unknown][] = [
      ["open write", () => n.open("/ro/f.txt", { write: true })],
      ["open create", () => n.open("/ro/new", { write: true, create: true })],
      ["open truncate", () => n.open("/ro/f.txt", { read: true, truncate: true })],
      ["open append", () => n.open("/ro/f.txt", { append: true })],
      ["mkdir", () => n.mkdir("/ro/d2")],
      ["remove", () => n.remove("/ro/f.txt")],
      ["rmdir", () => n.remove("/ro/d/x")],
      ["rename", () => n.rename("/ro/f.txt", "/ro/g.txt")],
      ["symlink", () => n.symlink("f.txt", "/ro/l")],
      ["link", () => n.link("/ro/f.txt", "/ro/h")],
      ["setTimes", () => n.setTimes("/ro/f.txt", 1n, 1n)],
    ];
    for (const [what, f] of writes) expect(`${what}: ${await code(f)}`).toBe(`${what}: EROFS`);
    expect(await readAll(n, "/ro/f.txt")).toBe("keep");
    expect(await names(n, "/ro")).toEqual(["d", "f.txt"]);
    expect(await names(n, "/ro/d")).toEqual(["x"]);
  });

  it("a sign-only mount opens only request/reply files, and only answers what was asked", async () => {
    // An identity service: `sign` answers a signature of what was written; `key` is a plain file.
    const keyStore = new MemService({ key: "secret-key" });
    const identity: FileService = {
      open(p: string, flags: OpenFlags): FileHandle {
        if (p !== "sign") return keyStore.open(p, flags);
        let req = "";
        return {
          transactional: true, position: 0,
          write: (d) => ((req += dec.decode(d)), d.length),
          read: () => enc.encode(`sig(${req})`),
          stat: () => keyStore.stat("key"), truncate: () => {}, sync: () => {}, close: () => {},
        };
      },
      stat: (p) => keyStore.stat(p === "sign" ? "key" : p),
      readdir: () => [{ name: "key", type: "file" }, { name: "sign", type: "file" }],
      mkdir: (p) => keyStore.mkdir(p), remove: (p) => keyStore.remove(p), rename: (a, b) => keyStore.rename(a, b),
    };
    const n = new Namespace().mount("/cap/nostr", identity, { access: "sign" });
    expect(await code(() => n.open("/cap/nostr/key", { read: true }))).toBe("EACCES");
    expect(await code(() => n.open("/cap/nostr/key", { read: true, write: true }))).toBe("EACCES");
    const h = await n.open("/cap/nostr/sign", { read: true, write: true });
    expect(await code(() => h.read(100))).toBe("EACCES");
    await h.write(enc.encode("event-id"));
    expect(dec.decode(await h.read(100))).toBe("sig(event-id)");
    expect(await code(() => n.remove("/cap/nostr/key"))).toBe("EACCES");
    expect(await names(n, "/cap/nostr")).toEqual(["key", "sign"]);
  });

  it("a budget is spent by bytes and calls; spending past it is EDQUOT and a write never half-lands", async () => {
    const mem = new MemService({ f: "0123456789" });
    const budget = new Budget({ bytes: 6, calls: 100 });
    const n = new Namespace().mount("/b", mem, { access: budget });
    const h = await n.open("/b/f", { read: true, write: true });
    expect(dec.decode(await h.read(4))).toBe("0123");
    expect(dec.decode(await h.read(4))).toBe("45");
    expect(await code(() => h.read(1))).toBe("EDQUOT");
    expect(await code(() => h.write(enc.encode("x")))).toBe("EDQUOT");
    expect(dec.decode(mem.readFile("f"))).toBe("0123456789");

    const calls = new Budget({ calls: 2 });
    const m = new Namespace().mount("/c", new MemService({ f: "" }), { access: calls });
    await m.stat("/c/f");
    await m.readdir("/c");
    expect(await code(() => m.stat("/c/f"))).toBe("EDQUOT");
    expect(calls.used.calls).toBe(2);
  });

  it("a capability that was not granted does not exist", async () => {
    const n = new Namespace().mount("/cap/http", new MemService());
    expect(await code(() => n.stat("/cap/llm"))).toBe("ENOENT");
    expect(await code(() => n.open("/cap/llm/ctl", { write: true, create: true }))).toBe("ENOENT");
    expect(await names(n, "/cap")).toEqual(["http"]);
  });
});

describe("fork", () => {
  it("gives a child that changes independently of its parent", async () => {
    const parent = new Namespace().mount("/task", new MemService()).mount("/workspace", new MemService({ f: "shared" }));
    const child = parent.fork();
    child.unmount("/task").mount("/cap/llm", new MemService());
    expect(await names(parent, "/")).toEqual(["task", "workspace"]);
    expect(await names(child, "/")).toEqual(["cap", "workspace"]);
    parent.mount("/logs", new MemService());
    expect(await names(child, "/")).toEqual(["cap", "workspace"]);
    // Services are shared: a fork copies the mount table, not the files.
    const h = await child.open("/workspace/f", { write: true, truncate: true });
    await h.write(enc.encode("changed"));
    expect(await readAll(parent, "/workspace/f")).toBe("changed");
  });
});

describe("properties", () => {
  const segment = fc.oneof(
    fc.constantFrom("..", ".", "", "task", "taskfoo", "workspace", "cap", "llm", "http", "a", "ü", "🙂", "x".repeat(300)),
    fc.string({ minLength: 1, maxLength: 8 }),
  );
  const path = fc.tuple(fc.boolean(), fc.array(segment, { maxLength: 10 })).map(([abs, segs]) => (abs ? "/" : "") + segs.join("/"));

  it("no path resolves outside its mount or into an ungranted capability", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(path, { minLength: 1, maxLength: 8 }), async (paths) => {
        const task = new MemService({ "spec.json": "{}" });
        const workspace = new MemService();
        const http = new MemService();
        const n = new Namespace().mount("/task", task, { access: "ro" }).mount("/workspace", workspace).mount("/cap/http", http);
        for (const p of paths) {
          let norm: string[];
          try {
            norm = segments(p);
          } catch (e) {
            // NUL and over-long names are refused before anything is touched.
            expect(await code(() => n.open(p, { write: true, create: true }))).not.toBe("no error");
            continue;
          }
          const result = await code(async () => (await n.open(p, { write: true, create: true })).close());
          if (result === "no error") {
            // Created files land exactly where the normalised path says, in a writable mount.
            const [top, ...rest] = norm;
            const svc = top === "workspace" ? workspace : top === "cap" && rest[0] === "http" ? http : null;
            expect(svc).not.toBeNull();
            const inner = top === "workspace" ? rest : rest.slice(1);
            expect(svc!.stat(inner.join("/")).type).toBe("file");
          }
          if (norm[0] === "task") expect(["EROFS", "ENOENT", "EISDIR", "EEXIST", "ENOTDIR"]).toContain(result);
          if (norm[0] === "cap" && norm[1] !== "http") expect(result).not.toBe("no error");
        }
        // The read-only task mount is untouched whatever was tried.
        expect((await names(n, "/task"))).toEqual(["spec.json"]);
      }),
      { numRuns: 300 },
    );
  });

  it("normalised paths never climb above the root", () => {
    fc.assert(
      fc.property(path, (p) => {
        let s: string[];
        try {
          s = segments(p);
        } catch {
          return;
        }
        expect(s).not.toContain("..");
        expect(s).not.toContain(".");
        expect(s).not.toContain("");
      }),
    );
  });
});

describe("hardening: links, binds and unions keep access", () => {
  it("link across binds of one service is EXDEV and never writes a read-only file", async () => {
    const mem = new MemService({ "secret/k": "key", "tmp/t": "" });
    const n = new Namespace().mount("/s", mem).bind("/s/secret", "/ro", { access: "ro" }).bind("/s/tmp", "/rw");
    expect(await code(() => n.link("/ro/k", "/rw/k"))).toBe("EXDEV");
    expect(await code(() => n.stat("/rw/k"))).toBe("ENOENT");
    expect(await code(() => n.open("/ro/k", { write: true }))).toBe("EROFS");
    expect(dec.decode(mem.readFile("secret/k"))).toBe("key");
    // Within one mount member a link still works.
    await n.link("/rw/t", "/rw/t2");
    expect((await n.stat("/rw/t2")).ino).toBe((await n.stat("/rw/t")).ino);
  });

  it("link out of a sign-only mount into a writable mount of the same service is EXDEV", async () => {
    const store = new MemService({ "id/key": "secret-key", "tmp/t": "" });
    const n = new Namespace().mount("/s", store).bind("/s/id", "/cap/id", { access: "sign" }).bind("/s/tmp", "/w");
    expect(await code(() => n.link("/cap/id/key", "/w/key"))).toBe("EXDEV");
    expect(await code(() => n.open("/w/key", { read: true }))).toBe("ENOENT");
    expect(await code(() => n.link("/cap/id/key", "/cap/id/key2"))).toBe("EACCES");
  });

  it("a read-only bind over a budgeted mount stays read-only, and spends the budget", async () => {
    const mem = new MemService({ f: "data" });
    const budget = new Budget({ calls: 100 });
    const n = new Namespace().mount("/b", mem, { access: budget }).bind("/b", "/r", { access: "ro" });
    for (const [what, f] of [
      ["write", () => n.open("/r/f", { write: true })],
      ["create", () => n.open("/r/new", { write: true, create: true })],
      ["mkdir", () => n.mkdir("/r/d")],
      ["remove", () => n.remove("/r/f")],
    ] as [string, () => unknown][]) expect(`${what}: ${await code(f)}`).toBe(`${what}: EROFS`);
    const before = budget.used.calls;
    expect(await readAll(n, "/r/f")).toBe("data");
    expect(budget.used.calls).toBeGreaterThan(before);
    expect(n.mounts().find((m) => m.path === "/r")!.access).toEqual(["ro+budget"]);
  });

  it("a budgeted bind over a budgeted mount spends both, or neither", async () => {
    const mem = new MemService({ f: "0123456789" });
    const outer = new Budget({ bytes: 100 });
    const inner = new Budget({ bytes: 3 });
    const n = new Namespace().mount("/b", mem, { access: outer }).bind("/b", "/c", { access: inner });
    const h = await n.open("/c/f", { read: true, write: true });
    expect(dec.decode(await h.read(10))).toBe("012");
    expect(await code(() => h.write(enc.encode("x")))).toBe("EDQUOT");
    expect([outer.used.bytes, inner.used.bytes]).toEqual([3, 3]);
  });

  it("mkdir, symlink and link in a union refuse a name another member already has", async () => {
    for (const wrap of [(s: FileService) => s, asyncOf]) {
      const first = new MemService({ a: "1", "d/x": "" });
      const creates = new MemService({ b: "2" });
      const n = new Namespace().mount("/u", wrap(first)).mount("/u", wrap(creates), { mode: "after", create: true });
      expect(await code(() => n.mkdir("/u/a"))).toBe("EEXIST");
      expect(await code(() => n.mkdir("/u/d"))).toBe("EEXIST");
      expect(await code(() => n.symlink("b", "/u/a"))).toBe("EEXIST");
      expect(await code(() => n.symlink("b", "/u/d"))).toBe("EEXIST");
      expect(await code(() => creates.stat("a"))).toBe("ENOENT");
      expect(await code(() => creates.stat("d"))).toBe("ENOENT");
      // New names still land in the create member.
      await n.mkdir("/u/new");
      expect(creates.stat("new").type).toBe("dir");
    }
    const first = new MemService({ a: "1" });
    const creates = new MemService({ b: "2" });
    const n = new Namespace().mount("/u", first).mount("/u", creates, { mode: "after", create: true });
    expect(await code(() => n.link("/u/b", "/u/a"))).toBe("EEXIST");
  });
});

describe("sign-only mounts and public files", () => {
  /** A capability: `pubkey` public, `sign` request/reply, `key` neither. */
  function identity(): FileService {
    const store = new MemService({ key: "secret-key", pubkey: "npub1abc" });
    return {
      open(p: string, flags: OpenFlags): FileHandle {
        if (p === "pubkey") return Object.assign(store.open(p, flags), { public: true });
        if (p !== "sign") return store.open(p, flags);
        let req = "";
        return {
          transactional: true, position: 0,
          write: (d) => ((req += dec.decode(d)), d.length),
          read: () => enc.encode(`sig(${req})`),
          stat: () => store.stat("key"), truncate: () => {}, sync: () => {}, close: () => {},
        };
      },
      stat: (p) => store.stat(p === "sign" ? "key" : p),
      readdir: () => store.readdir(""),
      mkdir: (p) => store.mkdir(p), remove: (p) => store.remove(p), rename: (a, b) => store.rename(a, b),
    };
  }

  it("opens a public file read-only, and nothing else read-only", async () => {
    const n = new Namespace().mount("/cap/nostr", identity(), { access: "sign" });
    expect(await readAll(n, "/cap/nostr/pubkey")).toBe("npub1abc");
    expect(await code(() => n.open("/cap/nostr/key", { read: true }))).toBe("EACCES");
    expect(await code(() => n.open("/cap/nostr/pubkey", { read: true, write: true }))).toBe("EACCES");
    expect(await code(() => n.open("/cap/nostr/pubkey", { write: true }))).toBe("EACCES");
    expect(await code(() => n.open("/cap/nostr/pubkey", { read: true, truncate: true }))).toBe("EACCES");
    const h = await n.open("/cap/nostr/pubkey", { read: true });
    expect(await code(() => h.write(enc.encode("x")))).toBe("EBADF");
    expect(await code(() => h.truncate(0))).toBe("EBADF");
    // The request/reply shape still works beside it.
    const s = await n.open("/cap/nostr/sign", { read: true, write: true });
    await s.write(enc.encode("id"));
    expect(dec.decode(await s.read(100))).toBe("sig(id)");
  });

  it("a read-only bind over a sign-only mount stays sign-only", async () => {
    const n = new Namespace().mount("/cap/nostr", identity(), { access: "sign" }).bind("/cap/nostr", "/id", { access: "ro" });
    expect(await code(() => n.open("/id/key", { read: true }))).toBe("EACCES");
    expect(await readAll(n, "/id/pubkey")).toBe("npub1abc");
  });
});
