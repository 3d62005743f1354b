// One alarm, several due dates (edge/workspace/alarm.ts): the audit outbox's bound and the
// collection of staged uploads a killed PUT left behind (edge/workspace/staging.ts). Issue 7.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { batch, call, createWs, newKey } from "../testing.ts";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));

describe("one alarm, several due dates (issue 7)", () => {
  it("a steady writer cannot postpone the audit flush: the alarm stays at the oldest entry + 250 ms", async () => {
    const a = newKey();
    const ws = await createWs(a);
    let checked = 0;
    for (let i = 0; i < 8; i++) {
      await batch(a, ws, [{ op: "open", path: `f${i}`, flags: { write: true, create: true } }]);
      await call(a, "POST", `/w/${ws}/logs/steady`, `line ${i}\n`);
      const { alarm, oldest, now } = await runInDurableObject(stub(ws), async (_i, state) => ({
        alarm: await state.storage.getAlarm(),
        oldest: state.storage.sql.exec<{ time: number | null }>("SELECT min(time) AS time FROM audit_outbox").one().time,
        now: Date.now(),
      }));
      if (oldest === null) continue; // flushed already
      checked++;
      expect(alarm, `write ${i}`).not.toBeNull();
      // Due 250 ms after the oldest entry (or at once, if a busy machine made that moment pass).
      expect(alarm!, `write ${i}`).toBeLessThanOrEqual(Math.max(oldest + 250, now));
    }
    expect(checked).toBeGreaterThan(0);
  });

  it("staged uploads of a killed PUT are collected by the alarm; committed ones are kept", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const s = stub(ws);
    const owner = { type: "internal" as const, principal: { kind: "owner" as const, pubkey: a.pubkey } };
    // A PUT that died mid-upload (parts sent, never completed) and one that died after completing.
    const dead = await env.BLOBS.createMultipartUpload(`blobs/u/${crypto.randomUUID()}`);
    await dead.uploadPart(1, new Uint8Array(1024));
    const orphan = `blobs/u/${crypto.randomUUID()}`;
    await env.BLOBS.put(orphan, "orphan");
    const kept = `blobs/u/${crypto.randomUUID()}`;
    await env.BLOBS.put(kept, "kept");
    for (const [k, id] of [[dead.key, dead.uploadId], [orphan, null], [kept, null]] as const) expect((await s.stageBegin(owner, k, id)).ok).toBe(true);
    expect((await s.putFile(owner, "kept.txt", { r2: kept, size: 4 }, false)).ok).toBe(true);
    // An hour later (the stage records are aged instead of the clock), the alarm sweeps.
    await runInDurableObject(s, (_i, state) => void state.storage.sql.exec("UPDATE staging SET started = started - 7200000"));
    expect(await runDurableObjectAlarm(s)).toBe(true);
    expect(await env.BLOBS.head(orphan)).toBeNull();
    await expect(env.BLOBS.resumeMultipartUpload(dead.key, dead.uploadId).complete([])).rejects.toThrow();
    expect(await env.BLOBS.head(kept)).not.toBeNull();
    expect(await (await call(a, "GET", `/w/${ws}/f/kept.txt`)).text()).toBe("kept");
    const left = await runInDurableObject(s, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM staging").one().n);
    expect(left).toBe(0);
  });
});
