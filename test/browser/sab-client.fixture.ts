// The blocking side of browser/sab-fs.ts in a Node worker thread (as the guest's worker in a
// browser): runs one scenario of file calls through a SabFileService and posts what it saw.
// Started by sab-fs.test.ts; with role "guest" it is browser/guest.ts's guest worker instead.
import { parentPort, workerData } from "node:worker_threads";
import { BlockingClient } from "../../browser/sab-channel.ts";
import { SabFileService } from "../../browser/sab-fs.ts";
import { serveGuest } from "../../browser/guest.ts";

export interface Seen { ok?: unknown; error?: { name: string; code?: string; message: string; op?: string; path?: string } }

const port = parentPort!;
const { role, sab, scenario, deadlineMs, arg } = workerData as { role: "client" | "guest"; sab: SharedArrayBuffer; scenario: string; deadlineMs?: number; arg?: number };

const enc = new TextEncoder();
const dec = new TextDecoder();

function caught(f: () => unknown): Seen {
  try {
    return { ok: f() };
  } catch (e) {
    const x = e as Error & { code?: string; op?: string; path?: string };
    return { error: { name: x.name, message: x.message, ...(x.code ? { code: x.code } : {}), ...(x.op ? { op: x.op } : {}), ...(x.path ? { path: x.path } : {}) } };
  }
}

/** The same bytes on both sides: a xorshift stream from a seed. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const scenarios: Record<string, (fs: SabFileService) => Record<string, Seen>> = {
  basics(fs) {
    const r: Record<string, Seen> = {};
    r.mkdir = caught(() => fs.mkdir("/d"));
    const h = fs.open("/d/a.txt", { read: true, write: true, create: true });
    r.write = caught(() => h.write(enc.encode("hello world")));
    r.positionAfterWrite = { ok: h.position };
    h.position = 6; // a seek is local; the next call carries it
    r.readAtPosition = caught(() => dec.decode(h.read(5)));
    r.positionAfterRead = { ok: h.position };
    r.readAtOffset = caught(() => dec.decode(h.read(5, 0)));
    const into = new Uint8Array(4);
    r.readInto = caught(() => [h.readInto!(into, 2), dec.decode(into)]);
    r.size = caught(() => h.stat().size);
    r.mtimeIsBigint = caught(() => typeof h.stat().mtimeNs);
    r.truncate = caught(() => (h.truncate(5), h.stat().size));
    r.close = caught(() => h.close());
    r.closeTwice = caught(() => h.close());
    r.readdir = caught(() => fs.readdir("/d").map((e) => `${e.name}:${e.type}`));
    r.rename = caught(() => (fs.rename("/d/a.txt", "/d/b.txt"), fs.readdir("/d").map((e) => e.name)));
    r.missing = caught(() => fs.stat("/d/nope"));
    r.exclusive = caught(() => fs.open("/d/b.txt", { write: true, create: true, exclusive: true }));
    r.notEmpty = caught(() => fs.remove("/d"));
    const before = fs.stat("/d/b.txt");
    r.setTimes = caught(() => {
      fs.setTimes("/d/b.txt", undefined, 5_000_000_000n);
      const after = fs.stat("/d/b.txt");
      return [after.mtimeNs === 5_000_000_000n, after.atimeNs === before.atimeNs];
    });
    const ap = fs.open("/d/b.txt", { write: true, append: true });
    r.append = caught(() => [typeof ap.append, ap.write(enc.encode("!")), fs.stat("/d/b.txt").size]);
    ap.close();
    r.remove = caught(() => (fs.remove("/d/b.txt"), fs.remove("/d"), fs.readdir("/").map((e) => e.name)));
    return r;
  },

  /** One write and one read of `arg` bytes, far past the channel's data area. */
  big(fs) {
    const n = arg!;
    const data = pattern(n, 7);
    const h = fs.open("/big.bin", { read: true, write: true, create: true });
    const wrote = h.write(data);
    const back = h.read(n + 100, 0);
    const into = new Uint8Array(n);
    const got = h.readInto!(into, 0);
    h.close();
    const same = (a: Uint8Array) => a.length === n && a.every((b, i) => b === data[i]);
    return { wrote: { ok: wrote }, readBack: { ok: same(back) }, readIntoBack: { ok: got === n && same(into) } };
  },

  /** `arg` rounds of write-then-read on a file of this worker's own, to run beside other workers. */
  many(fs) {
    const name = `/w-${arg}.txt`;
    let bad = 0;
    for (let i = 0; i < 200; i++) {
      const text = `worker ${arg} round ${i}`;
      const h = fs.open(name, { read: true, write: true, create: true, truncate: true });
      h.write(enc.encode(text));
      if (dec.decode(h.read(100, 0)) !== text) bad++;
      h.close();
    }
    return { bad: { ok: bad }, last: { ok: dec.decode(fs.open(name, { read: true }).read(100)) } };
  },

  /** A call the services never answer, before a deadline; then another. */
  hang(fs) {
    const t = performance.now();
    const first = caught(() => fs.stat("/hang"));
    const waited = performance.now() - t;
    const t2 = performance.now();
    const second = caught(() => fs.stat("/"));
    return { first, waited: { ok: waited }, second, secondWaited: { ok: performance.now() - t2 } };
  },

  /** A service that fails with something other than an FsError. */
  odd(fs) {
    return { typeError: caught(() => fs.stat("/boom")), unknownOp: caught(() => fs.call({ o: "format", a: [] })) };
  },
};

if (role === "guest") serveGuest(port as unknown as Parameters<typeof serveGuest>[0]);
else {
  const fs = new SabFileService(new BlockingClient(sab, deadlineMs === undefined ? Infinity : performance.now() + deadlineMs));
  port.postMessage(scenarios[scenario]!(fs));
}
