// The versioned schema (edge/workspace/schema.ts): a wake runs only the missing migrations, and
// an object made before versioning (every v1 table, no schema_version) is brought up to date
// without losing anything.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { batch, createWs, newKey, text } from "../testing.ts";
import { SCHEMA_VERSION } from "./schema.ts";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const version = (ws: string) => runInDurableObject(stub(ws), (_i, state) =>
  state.storage.sql.exec<{ v: number }>("SELECT v FROM meta WHERE k = 'schema_version'").one().v);

describe("schema migrations", () => {
  it("a new object is at SCHEMA_VERSION; an unversioned v1 object migrates on its next wake and keeps its files", async () => {
    const a = newKey();
    const ws = await createWs(a);
    expect(await version(ws)).toBe(SCHEMA_VERSION);
    await batch(a, ws, [{ op: "open", path: "keep", flags: { write: true, create: true } }, { op: "write", path: "keep", offset: 0, bytes: "kept" }]);
    // Make it look like an object from before versioning: v1 tables only, no schema_version.
    await runInDurableObject(stub(ws), (_i, state) => {
      const sql = state.storage.sql;
      for (const t of ["staging", "answers", "runs"]) sql.exec(`DROP TABLE ${t}`);
      sql.exec("DELETE FROM meta WHERE k = 'schema_version'");
    });
    await evictDurableObject(stub(ws));
    const r = await batch(a, ws, [{ op: "read", path: "keep", offset: 0, length: 10 }, { op: "mkdir", path: "d" }], false, "after-migration");
    expect(text(r.results[0]!.bytes)).toBe("kept");
    expect(r.results[1]!.ok).toBe(true);
    expect(await version(ws)).toBe(SCHEMA_VERSION);
  });
});
