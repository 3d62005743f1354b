// Runs the SQLite test program (test/sqlite/build/sqlite-driver.wasm) on a FileService mounted
// at /db, its temp files there too, and answers what it printed and how long it took.
import { existsSync, readFileSync } from "node:fs";
import { loadProgram, type Program } from "../../runtime/modules.ts";
import { Namespace } from "../../runtime/namespace.ts";
import { spawn } from "../../runtime/process.ts";
import type { FileService } from "../../runtime/types.ts";
import { SQLITE_WASM } from "./build.ts";

let program: Promise<Program> | undefined;

export const sqliteBuilt = (): boolean => existsSync(SQLITE_WASM);

export interface SqliteRun { code: number; out: string; err: string; ms: number }

export async function runSqlite(fs: FileService, rows: number, modes: string[] = [], wallTimeMs = 600_000): Promise<SqliteRun> {
  program ??= loadProgram(readFileSync(SQLITE_WASM));
  const ns = new Namespace().mount("/db", fs, { access: "rw" });
  let out = "", err = "";
  const t0 = performance.now();
  const st = await spawn(await program, {
    namespace: ns, name: "sqlite-driver", args: ["/db", String(rows), ...modes], env: { TMPDIR: "/db" },
    limits: { wallTimeMs },
    onStdout: (b) => void (out += new TextDecoder().decode(b)), onStderr: (b) => void (err += new TextDecoder().decode(b)),
  });
  return { code: st.code, out, err, ms: performance.now() - t0 };
}
