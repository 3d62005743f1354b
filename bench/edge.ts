// Edge benchmarks against a local edge (`wrangler dev`, offline, loopback), started here.
// - edge-ops (ops/s, higher): the smallfile agent (agents/build/smallfile.wasm: create, write
//   100 B, read, stat, readdir, unlink per iteration) with /workspace on the remote mount, vs the
//   same agent on a memory mount, vs a naive remote client that sends one request per syscall.
// - edge-ops-requests (requests, lower): HTTP requests for that workload, remote vs naive.
// - edge-stream (MB/s, higher): 50 MB written then read back through a remote mount (write-behind
//   in 8 MiB pieces staged to R2, reads in 16 MiB windows), vs the raw HTTP file API (one
//   streamed PUT through an R2 multipart upload, one streamed GET).
// Runnable alone: node bench/edge.ts (prints JSON).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEdge, ROOT } from "../edge/dev/launch.ts";
import { loadProgram, type Program } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn } from "../runtime/process.ts";
import type { FileService } from "../runtime/types.ts";
import { MemService } from "../services/mem.ts";
import { RemoteService } from "../services/remote.ts";
import { keySigner, newSecretKey, authorizeWithHash, bodyHash } from "../services/nip98.ts";
import type { BenchResult } from "./types.ts";

const ITERATIONS = 100;
const STREAM_MB = 50;

async function smallfile(program: Program, ws: FileService): Promise<number> {
  const ns = new Namespace().mount("/workspace", ws, { access: "rw" });
  let out = "", err = "";
  const t0 = performance.now();
  const st = await spawn(program, {
    namespace: ns, name: "smallfile", args: ["/workspace/sf", String(ITERATIONS)],
    onStdout: (b) => void (out += new TextDecoder().decode(b)), onStderr: (b) => void (err += new TextDecoder().decode(b)),
  });
  const ms = performance.now() - t0;
  if (st.code !== 0 || out.trim() !== `ops=${6 * ITERATIONS}`) throw new Error(`smallfile failed: ${JSON.stringify(st)} ${out} ${err}`);
  return (6 * ITERATIONS) / (ms / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "oanix-bench-edge-"));
  const edge = await startEdge({ persistTo: dir });
  try {
    const signer = keySigner(newSecretKey());
    const program = await loadProgram(readFileSync(join(ROOT, "agents", "build", "smallfile.wasm")));
    const url = (n: string) => `${edge.url}/w/bench-${n}-${Math.random().toString(36).slice(2, 8)}`;

    // ---- edge-ops
    const REPS = 3;
    const mem: number[] = [], remote: number[] = [], naive: number[] = [];
    let remoteReqs = 0, naiveReqs = 0;
    // warm-up (workspace creation, isolate start)
    await smallfile(program, new RemoteService(url("warm"), { signer }));
    for (let r = 0; r < REPS; r++) {
      mem.push(await smallfile(program, new MemService()));
      const rs = new RemoteService(url("remote"), { signer });
      await rs.createWorkspace();
      const before = rs.requests;
      remote.push(await smallfile(program, rs));
      remoteReqs = rs.requests - before;
      const nv = new RemoteService(url("naive"), { signer, readAhead: 0, writeBehind: 0, attrCacheMs: 0, coalesce: false });
      await nv.createWorkspace();
      const nb = nv.requests;
      naive.push(await smallfile(program, nv));
      naiveReqs = nv.requests - nb;
    }

    // ---- edge-stream
    const size = STREAM_MB << 20;
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
    const fs = new RemoteService(url("stream"), { signer });
    await fs.createWorkspace();
    let t0 = performance.now();
    const h = await fs.open("big.bin", { write: true, create: true, truncate: true });
    for (let i = 0; i < STREAM_MB; i++) await h.write(chunk);
    await h.close();
    const mountWrite = STREAM_MB / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const rh = await fs.open("big.bin", { read: true });
    let got = 0;
    for (;;) {
      const b = await rh.read(4 << 20);
      if (!b.length) break;
      got += b.length;
    }
    await rh.close();
    if (got !== size) throw new Error(`stream read ${got} of ${size} bytes`);
    const mountRead = STREAM_MB / ((performance.now() - t0) / 1000);

    // Raw HTTP: one streamed PUT (multipart upload to R2), one streamed GET.
    const body = new Uint8Array(size);
    for (let i = 0; i < STREAM_MB; i++) body.set(chunk, i << 20);
    const sk = newSecretKey();
    const owner = keySigner(sk);
    const raw = new RemoteService(url("raw"), { signer: owner });
    await raw.createWorkspace();
    const fileUrl = `${raw.url}/f/big.bin`;
    t0 = performance.now();
    const put = await fetch(fileUrl, { method: "PUT", body, headers: { authorization: authorizeWithHash(sk, fileUrl, "PUT", bodyHash(body)) } });
    if (put.status !== 201) throw new Error(`PUT ${put.status} ${await put.text()}`);
    const httpWrite = STREAM_MB / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const get = await fetch(fileUrl, { headers: { authorization: owner.authorize(fileUrl, "GET") } });
    let n = 0;
    for await (const c of get.body as unknown as AsyncIterable<Uint8Array>) n += c.length;
    if (n !== size) throw new Error(`GET ${n} of ${size}`);
    const httpRead = STREAM_MB / ((performance.now() - t0) / 1000);

    const r2 = (x: number) => Math.round(x * 100) / 100;
    return [
      {
        name: "edge-ops", unit: "ops/s", better: "higher", oanix: r2(median(remote)),
        peers: { "memory mount": r2(median(mem)), "naive remote (1 request/syscall)": r2(median(naive)) },
        note: `smallfile.wasm, ${ITERATIONS} iterations × 6 ops, /workspace on a remote mount of a local wrangler dev edge ` +
          `(loopback; one NIP-98 signed request opens a session, then bearer requests) vs MemService vs a client without read-ahead, write-behind, attribute cache or coalescing; median of ${REPS}. ` +
          `Requests: remote ${remoteReqs}, naive ${naiveReqs}.`,
      },
      {
        name: "edge-ops-requests", unit: "requests", better: "lower", oanix: remoteReqs,
        peers: { "naive remote (1 request/syscall)": naiveReqs },
        note: `HTTP requests for ${ITERATIONS} smallfile iterations (${6 * ITERATIONS} counted ops + the opens/closes around them).`,
      },
      {
        name: "edge-stream", unit: "MB/s", better: "higher", oanix: r2((2 * STREAM_MB) / (STREAM_MB / mountWrite + STREAM_MB / mountRead)),
        peers: { "raw HTTP PUT+GET": r2((2 * STREAM_MB) / (STREAM_MB / httpWrite + STREAM_MB / httpRead)) },
        note: `${STREAM_MB} MB written then read through R2 on a local edge. Remote mount: write ${r2(mountWrite)} MB/s, read ${r2(mountRead)} MB/s ` +
          `(1 MiB writes, 8 MiB write-behind pieces, 4 MiB reads). Raw HTTP: PUT ${r2(httpWrite)} MB/s (multipart upload), GET ${r2(httpRead)} MB/s. ` +
          `Local R2 is miniflare's file-backed emulation, so absolute numbers say little about Cloudflare.`,
      },
    ];
  } finally {
    await edge.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await run(), null, 2));
}
