// SQLite 3 (compiled to wasm32-wasi from the amalgamation, test/sqlite/build.ts) is a real
// program nobody here wrote: it must pass every journal mode, a rollback, a sort through an
// unlinked temp file, integrity_check and a reopen on every kind of mount — memory, a host
// directory, and an edge workspace through services/remote. 10,000 rows each; 100,000 rows on the
// edge are measured by bench/sqlite-edge.ts (SQLITE_ROWS=100000).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEdge, type Edge } from "../../edge/dev/launch.ts";
import { DirService } from "../../services/dir.ts";
import { MemService } from "../../services/mem.ts";
import { keySigner, newSecretKey } from "../../services/nip98.ts";
import { RemoteService } from "../../services/remote.ts";
import { NO_CLANG } from "./build.ts";
import { runSqlite, sqliteBuilt, type SqliteRun } from "./run.ts";

const ROWS = 10_000;
const MODES = ["delete", "truncate", "persist", "wal", "memory", "off"];
const built = sqliteBuilt();
if (!built) console.warn(NO_CLANG);

function expectAllOk(r: SqliteRun): void {
  expect(r.err, r.err).toBe("");
  expect(r.code).toBe(0);
  const lines = r.out.trim().split("\n");
  expect(lines.slice(0, -1).map((l) => l.split(" ")[0])).toEqual(MODES);
  for (const l of lines.slice(0, -1)) expect(l).toMatch(new RegExp(`^\\w+ rows=${ROWS} ok ms=\\d+$`));
  expect(lines.at(-1)).toBe("all ok");
}

describe.skipIf(!built)("SQLite on every kind of mount", () => {
  it(`mem: ${ROWS} rows in every journal mode`, async () => {
    expectAllOk(await runSqlite(new MemService(), ROWS));
  }, 120_000);

  it(`dir: ${ROWS} rows in every journal mode, and no temp file is left behind`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "oanix-sqlite-"));
    try {
      expectAllOk(await runSqlite(new DirService(dir), ROWS));
      expect(readdirSync(dir).filter((n) => !/^t-\w+\.db(-journal)?$/.test(n))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  describe("on the edge", () => {
    let edge: Edge;
    let state: string;
    beforeAll(async () => {
      state = mkdtempSync(join(tmpdir(), "oanix-sqlite-edge-"));
      edge = await startEdge({ persistTo: state });
    }, 90_000);
    afterAll(async () => {
      await edge?.stop();
      rmSync(state, { recursive: true, force: true });
    });

    it(`${ROWS} rows in every journal mode through a remote mount; no hidden file is left behind`, async () => {
      const signer = keySigner(newSecretKey());
      const url = `${edge.url}/w/sqlite-${Math.random().toString(36).slice(2, 8)}`;
      const fs = new RemoteService(url, { signer });
      await fs.createWorkspace();
      const r = await runSqlite(fs, ROWS);
      expectAllOk(r);
      await fs.flush();
      const [list] = await new RemoteService(url, { signer }).batch([{ op: "readdir", path: "" }]);
      const names = list!.ok ? (list!.entries ?? []).map((e) => e.name) : ["readdir failed"];
      expect(names.filter((n) => !/^t-\w+\.db(-journal)?$/.test(n))).toEqual([]);
      console.log(`sqlite on the edge: ${ROWS} rows × ${MODES.length} modes in ${Math.round(r.ms)} ms, ${fs.requests} requests`);
    }, 300_000);
  });
});
