// sqlite-edge: SQLite 3 (test/sqlite: the amalgamation built for wasm32-wasi, with its driver)
// inserting, rolling back, sorting through a temp file and checking integrity, with its database
// on a remote mount of a local edge (`wrangler dev`, loopback), against the same program on a
// memory mount. Lower is better; the ratio is mem / edge, the price of durability at the edge.
//
//   SQLITE_ROWS=100000 SQLITE_MODES=delete,wal node bench/sqlite-edge.ts   (prints JSON)
//
// Defaults: 10,000 rows, every journal mode. Besides the time, each result notes the requests
// the mount sent and how many versions the workspace made (one per content change).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEdge } from "../edge/dev/launch.ts";
import { MemService } from "../services/mem.ts";
import { keySigner, newSecretKey } from "../services/nip98.ts";
import { RemoteService } from "../services/remote.ts";
import { runSqlite, sqliteBuilt, type SqliteRun } from "../test/sqlite/run.ts";
import type { BenchResult } from "./types.ts";

const ROWS = Number(process.env.SQLITE_ROWS ?? 10_000);
const MODES = (process.env.SQLITE_MODES ?? "delete,truncate,persist,wal,memory,off").split(",");

function check(r: SqliteRun, where: string): void {
  if (r.code !== 0 || !r.out.includes("all ok")) throw new Error(`sqlite on ${where} failed (exit ${r.code}): ${r.out} ${r.err}`);
}

export async function run(): Promise<BenchResult[]> {
  if (!sqliteBuilt()) throw new Error("test/sqlite/build/sqlite-driver.wasm is missing (npm run build:agents; needs clang)");
  const mem = await runSqlite(new MemService(), ROWS, MODES);
  check(mem, "mem:");
  const dir = mkdtempSync(join(tmpdir(), "oanix-bench-sqlite-"));
  const edge = await startEdge({ persistTo: dir });
  try {
    const signer = keySigner(newSecretKey());
    const url = `${edge.url}/w/sqlite-${Math.random().toString(36).slice(2, 8)}`;
    const fs = new RemoteService(url, { signer });
    await fs.createWorkspace();
    const before = fs.requests;
    const r = await runSqlite(fs, ROWS, MODES, 3_600_000);
    check(r, "the edge");
    const requests = fs.requests - before;
    const info = await fs.request("GET", "");
    const version = ((await info.json()) as { version: number }).version;
    const perMode = r.out.trim().split("\n").slice(0, -1).join(", ");
    const s = (ms: number) => Math.round(ms / 100) / 10;
    return [{
      name: "sqlite-edge", unit: "s", better: "lower", oanix: s(r.ms), peers: { "memory mount": s(mem.ms) },
      note: `test/sqlite driver, ${ROWS} rows × ${MODES.length} journal modes (${MODES.join(", ")}): insert in transactions of 1,000, ` +
        `a rollback, a sort through an unlinked temp file, integrity_check, reopen. Edge: ${requests} requests, ` +
        `${version} workspace versions; per mode: ${perMode}.`,
    }];
  } finally {
    await edge.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(JSON.stringify(await run(), null, 2));
