// Files as URLs (edge/http/files.ts): streamed PUT and GET with ranges, R2 for large files.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { finalizeEvent } from "nostr-tools/pure";
import { hexToBytes } from "@noble/hashes/utils.js";
import { encodeFrame, FRAME_TYPE, INLINE_MAX, MAX_BATCH_BYTES } from "../../services/remote-wire.ts";
import { BASE, batch, call, createWs, json, newKey, text } from "../testing.ts";
import { exports } from "cloudflare:workers";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const errCode = async (r: Response) => ((await r.json()) as { error: { code: string } }).error.code;


async function readText(who: Parameters<typeof batch>[0], ws: string, path: string): Promise<string> {
  return text((await batch(who, ws, [{ op: "read", path, offset: 0, length: 1 << 20 }])).results[0]!.bytes);
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

async function await_hash(b: Uint8Array): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)), (x) => x.toString(16).padStart(2, "0")).join("");
}

describe("files as URLs, R2 for large files", () => {
  it("PUT then GET, with ranges; big files go to R2 and small ones stay in SQLite", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const small = new TextEncoder().encode("small file");
    expect((await call(a, "PUT", `/w/${ws}/f/notes/s.txt?parents=1`, small)).status).toBe(201);
    const big = new Uint8Array(3 * INLINE_MAX + 17).map((_, i) => (i * 7) % 251);
    const put = await call(a, "PUT", `/w/${ws}/f/big.bin`, big);
    expect(put.status).toBe(201);
    const listed = await env.BLOBS.list({ prefix: "blobs/" });
    const sha = (await json(put)).sha256 as string;
    expect(listed.objects.some((o) => o.key === `blobs/${sha}`)).toBe(true);
    const g = await call(a, "GET", `/w/${ws}/f/big.bin`);
    expect(new Uint8Array(await g.arrayBuffer())).toEqual(big);
    const part = await call(a, "GET", `/w/${ws}/f/big.bin`, undefined, { range: "bytes=100-199" });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(big.slice(100, 200));
    const tail = await call(a, "GET", `/w/${ws}/f/big.bin`, undefined, { range: "bytes=-5" });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(big.slice(-5));
    expect((await call(a, "GET", `/w/${ws}/f/big.bin`, undefined, { range: `bytes=${big.length}-` })).status).toBe(416);
    expect(text(new Uint8Array(await (await call(a, "GET", `/w/${ws}/f/notes/s.txt`)).arrayBuffer()))).toBe("small file");
    const dir = await json(call(a, "GET", `/w/${ws}/f/notes`));
    expect(dir.entries.map((e: { name: string }) => e.name)).toEqual(["s.txt"]);
    // A small write into the middle of the R2 file splices a piece; the rest is still read from R2.
    const w = await batch(a, ws, [{ op: "write", path: "big.bin", offset: INLINE_MAX, bytes: "PATCH" }, { op: "read", path: "big.bin", offset: INLINE_MAX - 2, length: 9 }]);
    const expected = big.slice(INLINE_MAX - 2, INLINE_MAX + 7);
    expected.set(new TextEncoder().encode("PATCH"), 2);
    expect(w.results[1]!.bytes).toEqual(expected);
    expect((await call(a, "DELETE", `/w/${ws}/f/notes/s.txt`)).status).toBe(204);
    expect((await call(a, "GET", `/w/${ws}/f/notes/s.txt`)).status).toBe(404);
  });

  it("a big streamed PUT becomes an R2 multipart upload; ranges across part boundaries read back", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const size = 20 * 1024 * 1024 + 12345; // > 2 parts of 8 MiB: multipart
    const big = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) big[i] = (i / 4096) & 0xff;
    const put = await call(a, "PUT", `/w/${ws}/f/huge.bin`, big);
    expect(put.status).toBe(201);
    const mp = await env.BLOBS.list({ prefix: "blobs/u/" });
    expect(mp.objects.some((o) => o.size === size)).toBe(true);
    const at = 8 * 1024 * 1024 - 10;
    const r = await call(a, "GET", `/w/${ws}/f/huge.bin`, undefined, { range: `bytes=${at}-${at + 8191}` });
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(big.slice(at, at + 8192));
    const whole = new Uint8Array(await (await call(a, "GET", `/w/${ws}/f/huge.bin`)).arrayBuffer());
    expect(whole.length).toBe(size);
    expect(whole).toEqual(big);
  });

  it("a batch with a large write stages it in R2 and reads it back", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const big = randomBytes(INLINE_MAX * 2 + 3);
    const r = await batch(a, ws, [
      { op: "open", path: "b", flags: { write: true, create: true } },
      { op: "write", path: "b", offset: 0, bytes: big },
      { op: "read", path: "b", offset: 0, length: big.length },
    ]);
    expect(r.results[2]!.bytes).toEqual(big);
  });
});

describe("ranges and odd requests (issue 7)", () => {
  it("a backwards range and any range of an empty file are 416 with Content-Range: bytes */SIZE", async () => {
    const a = newKey();
    const ws = await createWs(a);
    expect((await call(a, "PUT", `/w/${ws}/f/ten`, "0123456789")).status).toBe(201);
    const back = await call(a, "GET", `/w/${ws}/f/ten`, undefined, { range: "bytes=8-5" });
    expect(back.status).toBe(416);
    expect(back.headers.get("content-range")).toBe("bytes */10");
    const zero = await call(a, "GET", `/w/${ws}/f/ten`, undefined, { range: "bytes=-0" });
    expect(zero.status).toBe(416);
    await batch(a, ws, [{ op: "open", path: "empty", flags: { write: true, create: true } }]);
    for (const range of ["bytes=0-", "bytes=0-0", "bytes=-1"]) {
      const r = await call(a, "GET", `/w/${ws}/f/empty`, undefined, { range });
      expect(r.status, range).toBe(416);
      expect(r.headers.get("content-range"), range).toBe("bytes */0");
    }
    // a satisfiable range still answers 206
    const ok = await call(a, "GET", `/w/${ws}/f/ten`, undefined, { range: "bytes=5-" });
    expect(ok.status).toBe(206);
    expect(await ok.text()).toBe("56789");
  });

  it("unknown routes answer the JSON error shape", async () => {
    const a = newKey();
    for (const path of ["/nope", "/w/x/nope/deeper", "/edgy"]) {
      const r = await call(a, "GET", path);
      expect(r.status, path).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code, path).toBe("ENOENT");
    }
  });

  it("a percent-encoded workspace name cannot shift the file path", async () => {
    const a = newKey();
    const ws = await createWs(a, "pct" + crypto.randomUUID().slice(0, 6));
    const encoded = "%" + ws.charCodeAt(0).toString(16) + ws.slice(1);
    expect((await call(a, "PUT", `/w/${encoded}/f/docs/a.txt?parents=1`, "here")).status).toBe(201);
    expect(await (await call(a, "GET", `/w/${ws}/f/docs/a.txt`)).text()).toBe("here");
    const listing = await json(call(a, "GET", `/w/${ws}/f/`));
    expect(listing.entries.map((e: { name: string }) => e.name)).toEqual(["docs"]);
  });

  it("the project's own signer can PUT an empty file", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const r = await call(a, "PUT", `/w/${ws}/f/empty.txt`, new Uint8Array(0));
    expect(r.status).toBe(201);
    expect((await json(r)).stat.size).toBe(0);
    const g = await call(a, "GET", `/w/${ws}/f/empty.txt`);
    expect(g.status).toBe(200);
    expect(await g.text()).toBe("");
  });
});
