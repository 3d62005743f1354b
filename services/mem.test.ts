import { describe, expect, it } from "vitest";
import { Namespace } from "../runtime/namespace.ts";
import { code, enc } from "../test/helpers.ts";
import { DEFAULT_MAX_OPEN, MemService } from "./mem.ts";

describe("MemService names", () => {
  const creates = (m: MemService, name: string): [string, () => unknown][] => [
    ["mkdir", () => m.mkdir(name)],
    ["create", () => m.open(name, { write: true, create: true })],
    ["symlink", () => m.symlink("f", name)],
    ["link", () => m.link("f", name)],
    ["rename", () => m.rename("f", name)],
  ];

  it("refuses names that are not well-formed Unicode (EILSEQ) and creates nothing", async () => {
    const m = new MemService({ f: "x" });
    for (const bad of ["g\ud800", "\udc00", "a\ud800b"]) {
      for (const [op, f] of creates(m, bad)) expect(`${op}: ${await code(f)}`).toBe(`${op}: EILSEQ`);
    }
    expect(m.readdir("").map((e) => e.name)).toEqual(["f"]);
    // A well-formed pair is one character.
    m.mkdir("g\ud83d\ude42");
    m.remove("g\ud83d\ude42");
  });

  it("refuses NUL and control characters (EINVAL)", async () => {
    const m = new MemService({ f: "x" });
    for (const bad of ["a\nb", "tab\t", "\x1b[31m", "del\x7f", "nul\0"]) {
      for (const [op, f] of creates(m, bad)) expect(`${JSON.stringify(bad)} ${op}: ${await code(f)}`).toBe(`${JSON.stringify(bad)} ${op}: EINVAL`);
    }
    expect(m.readdir("").map((e) => e.name)).toEqual(["f"]);
  });

  it("counts name length in UTF-8 bytes: 255 fit, 256 are ENAMETOOLONG", async () => {
    const m = new MemService({ f: "x" });
    const fits = "é".repeat(127) + "a"; // 255 bytes, 128 characters
    m.mkdir(fits);
    const over = "é".repeat(128); // 256 bytes, 128 characters
    for (const [op, f] of creates(m, over)) expect(`${op}: ${await code(f)}`).toBe(`${op}: ENAMETOOLONG`);
    expect(await code(() => m.mkdir("🙂".repeat(64)))).toBe("ENAMETOOLONG"); // 256 bytes
    const n = new Namespace().mount("/", m);
    expect(await code(() => n.stat(over))).toBe("ENAMETOOLONG");
    expect(await code(() => n.stat("g\ud800"))).toBe("EILSEQ");
  });

  it("keeps NFC and NFD spellings as two names (no normalisation)", () => {
    const m = new MemService();
    m.writeFile("caf\u00e9", "nfc");
    m.writeFile("cafe\u0301", "nfd");
    expect(m.readdir("").map((e) => e.name).sort()).toEqual(["caf\u00e9", "cafe\u0301"].sort());
  });
});

describe("MemService open-file cap", () => {
  it("answers EMFILE past maxOpen, and a close gives the handle back", async () => {
    const m = new MemService({ f: "x" }, { maxOpen: 3 });
    const hs = [m.open("f", { read: true }), m.open("f", { read: true }), m.open("", { read: true })];
    expect(await code(() => m.open("f", { read: true }))).toBe("EMFILE");
    expect(await code(() => m.open("new", { write: true, create: true }))).toBe("EMFILE");
    expect(await code(() => m.stat("new"))).toBe("ENOENT");
    hs[0]!.close();
    hs[0]!.close(); // a second close gives nothing back twice
    m.open("f", { read: true });
    expect(await code(() => m.open("f", { read: true }))).toBe("EMFILE");
    // Writes through handles already open still work.
    const w = hs[1]!;
    expect(w.read(1)).toEqual(enc("x"));
  });

  it("has a documented default", () => {
    expect(new MemService().maxOpen).toBe(DEFAULT_MAX_OPEN);
    expect(DEFAULT_MAX_OPEN).toBe(65_536);
  });
});
