import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Namespace } from "../runtime/namespace.ts";
import type { FileHandle } from "../runtime/types.ts";
import { LogsService, type LogName } from "./logs.ts";
import { code, dec, enc } from "../test/helpers.ts";

describe("LogsService", () => {
  it("lists its three files and appends through handles", async () => {
    const logs = new LogsService();
    expect(logs.readdir("").map((e) => e.name)).toEqual(["events.jsonl", "stderr", "stdout"]);
    const h = logs.open("stdout", { write: true });
    expect(h.write(enc("hello "))).toBe(6);
    // The offset is ignored: logs only grow at the end.
    expect(h.write(enc("world\n"), 0)).toBe(6);
    expect(h.position).toBe(12);
    expect(logs.text("stdout")).toBe("hello world\n");
    expect(logs.stat("stdout").size).toBe(12);
    const r = logs.open("stdout", { read: true });
    expect(dec(r.read(5))).toBe("hello");
    expect(dec(r.read(100))).toBe(" world\n");
    logs.append("stdout", enc("more"));
    expect(dec(r.read(100))).toBe("more");
    const a = logs.open("stderr", { append: true, create: true });
    a.write(enc("err"), 99);
    expect(logs.text("stderr")).toBe("err");
    expect(logs.text("stdout")).toBe("hello world\nmore");
  });

  it("refuses truncation, other files and changes with the right codes", async () => {
    const logs = new LogsService();
    logs.append("stdout", enc("keep me"));
    expect(await code(() => logs.open("stdout", { write: true, truncate: true }))).toBe("EACCES");
    const h = logs.open("stdout", { write: true });
    expect(await code(() => h.truncate(0))).toBe("EACCES");
    expect(await code(() => logs.open("other.log", { write: true, create: true }))).toBe("EACCES");
    expect(await code(() => logs.open("other.log", { read: true }))).toBe("ENOENT");
    expect(await code(() => logs.open("stdout", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
    expect(await code(() => logs.open("stdout", { read: true, directory: true }))).toBe("ENOTDIR");
    expect(await code(() => logs.mkdir("dir"))).toBe("EACCES");
    expect(await code(() => logs.remove("stdout"))).toBe("EACCES");
    expect(await code(() => logs.rename("stdout", "x"))).toBe("EACCES");
    expect(await code(() => logs.remove("nope"))).toBe("ENOENT");
    expect(await code(() => logs.stat("stdout/x"))).toBe("ENOTDIR");
    expect(await code(() => logs.symlink("stdout", "s"))).toBe("EACCES");
    // Handle modes are checked by the Namespace that opens them (runtime/handle.ts).
    const ro = new Namespace().mount("/logs", logs).open("/logs/stdout", { read: true }) as FileHandle;
    expect(await code(() => ro.write(enc("x")))).toBe("EBADF");
    ro.close();
    expect(await code(() => ro.read(1))).toBe("EBADF");
    expect(await code(() => logs.append("nope" as LogName, enc("x")))).toBe("ENOENT");
    expect(logs.text("stdout")).toBe("keep me");
  });

  it("accepts only complete JSON-object lines in events.jsonl", async () => {
    const logs = new LogsService();
    const h = logs.open("events.jsonl", { write: true });
    expect(h.write(enc('{"type":"start"}\n'))).toBe(17);
    h.write(enc('{"n":1}\n{"n":2}\n'));
    logs.append("events.jsonl", enc('{"from":"host"}\n'));
    const bad = ['{"partial":', '{"no newline":1}', "[1,2]\n", "42\n", "\n", '{"a":1}\nnot json\n', "null\n", '{"a":1}\n\n'];
    for (const b of bad) expect([b, await code(() => h.write(enc(b)))]).toEqual([b, "EINVAL"]);
    expect(await code(() => logs.append("events.jsonl", enc("{oops}\n")))).toBe("EINVAL");
    expect(await code(() => h.write(new Uint8Array([0x7b, 0xff, 0x7d, 0x0a])))).toBe("EINVAL");
    expect(logs.events()).toEqual([{ type: "start" }, { n: 1 }, { n: 2 }, { from: "host" }]);
    expect(h.write(new Uint8Array(0))).toBe(0);
  });

  it("drops the oldest bytes past the limit and counts them", async () => {
    const logs = new LogsService({ limitBytes: 10 });
    logs.append("stdout", enc("0123456789"));
    expect(logs.dropped("stdout")).toBe(0);
    logs.append("stdout", enc("abc"));
    expect(logs.text("stdout")).toBe("3456789abc");
    expect(logs.dropped("stdout")).toBe(3);
    logs.append("stdout", enc("ABCDEFGHIJKLMNOP"));
    expect(logs.text("stdout")).toBe("GHIJKLMNOP");
    expect(logs.dropped("stdout")).toBe(19);
    expect(logs.written("stdout")).toBe(29);
    // Other files have their own limits.
    expect(logs.dropped("stderr")).toBe(0);
    // Offsets are those of the retained bytes.
    const r = logs.open("stdout", { read: true });
    expect(dec(r.read(3, 0))).toBe("GHI");
    expect(r.stat().size).toBe(10);
  });

  it("never keeps half a UTF-8 character at the front of stdout", async () => {
    const logs = new LogsService({ limitBytes: 5 });
    logs.append("stdout", enc("ab€€")); // € is 3 bytes: 8 bytes in all
    expect(logs.text("stdout")).toBe("€");
    expect(logs.dropped("stdout") + logs.bytes("stdout").length).toBe(8);
  });

  it("drops whole lines from events.jsonl and refuses a line that can never fit", async () => {
    const logs = new LogsService({ limitBytes: 30 });
    for (let i = 0; i < 10; i++) logs.append("events.jsonl", enc(`{"i":${i}}\n`));
    const events = logs.events();
    expect(events.at(-1)).toEqual({ i: 9 });
    expect(logs.bytes("events.jsonl").length).toBeLessThanOrEqual(30);
    expect(events.length).toBe(logs.text("events.jsonl").split("\n").length - 1);
    expect(await code(() => logs.append("events.jsonl", enc(`{"big":"${"x".repeat(40)}"}\n`)))).toBe("EFBIG");
    expect(logs.events().at(-1)).toEqual({ i: 9 });
    expect(logs.dropped("events.jsonl") + logs.bytes("events.jsonl").length).toBe(logs.written("events.jsonl"));
  });

  it("keeps nothing with a limit of 0 but still counts", async () => {
    const logs = new LogsService({ limitBytes: 0 });
    logs.append("stderr", enc("gone"));
    expect(logs.text("stderr")).toBe("");
    expect(logs.dropped("stderr")).toBe(4);
    expect(await code(() => new LogsService({ limitBytes: -1 }))).toBe("EINVAL");
  });

  it("tells listeners about every append until they unsubscribe", async () => {
    const logs = new LogsService();
    const seen: [string, string][] = [];
    const stop = logs.onAppend((name, bytes) => seen.push([name, dec(bytes)]));
    logs.onAppend(() => {
      throw new Error("a broken listener");
    });
    const src = enc("one");
    logs.append("stdout", src);
    src[0] = 0x4f; // the caller reuses its buffer: the listener's copy must not change
    logs.open("stderr", { write: true }).write(enc("two"));
    logs.open("events.jsonl", { write: true }).write(enc('{"e":1}\n'));
    stop();
    logs.append("stdout", enc("three"));
    expect(seen).toEqual([
      ["stdout", "one"],
      ["stderr", "two"],
      ["events.jsonl", '{"e":1}\n'],
    ]);
    expect(logs.text("stdout")).toBe("onethree");
  });

  it("is fast for many small appends", async () => {
    const logs = new LogsService({ limitBytes: 64 * 1024 });
    const b = enc("x");
    const t0 = performance.now();
    for (let i = 0; i < 500_000; i++) logs.append("stdout", b);
    const ms = performance.now() - t0;
    expect(logs.written("stdout")).toBe(500_000);
    expect(logs.bytes("stdout").length).toBe(64 * 1024);
    expect(ms).toBeLessThan(2000);
  });

  it("retained + dropped == written, and the retained bytes are the newest (property)", async () => {
    fc.assert(
      fc.property(fc.nat(64), fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 40 }), (limit, writes) => {
        const logs = new LogsService({ limitBytes: limit });
        const all: number[] = [];
        for (const w of writes) {
          logs.append("stderr", w);
          all.push(...w);
        }
        const kept = logs.bytes("stderr");
        expect(kept.length + logs.dropped("stderr")).toBe(all.length);
        expect(logs.written("stderr")).toBe(all.length);
        expect(kept.length).toBeLessThanOrEqual(limit);
        expect(kept.length).toBeGreaterThanOrEqual(Math.min(limit, all.length) - 3);
        expect([...kept]).toEqual(all.slice(all.length - kept.length));
      }),
    );
  });

  it("events.jsonl keeps the newest whole lines (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 10, max: 80 }), fc.array(fc.array(fc.nat(999), { maxLength: 3 }), { maxLength: 30 }), async (limit, batches) => {
        const logs = new LogsService({ limitBytes: limit });
        const lines: string[] = [];
        let total = 0;
        for (const batch of batches) {
          const text = batch.map((n) => `{"n":${n}}\n`).join("");
          const r = await code(() => logs.append("events.jsonl", enc(text)));
          expect(r).toBe("no error");
          lines.push(...batch.map((n) => `{"n":${n}}\n`));
          total += text.length;
        }
        const kept = logs.text("events.jsonl");
        expect(kept.length + logs.dropped("events.jsonl")).toBe(total);
        expect(kept.length).toBeLessThanOrEqual(limit);
        expect(lines.join("").endsWith(kept)).toBe(true);
        expect(kept === "" || kept.endsWith("\n")).toBe(true);
        for (const e of logs.events()) expect(typeof e.n).toBe("number");
      }),
    );
  });
});
