// The run lock: one driver at a time (two resumers of one run cannot both drive it), a lease that
// expires or whose owner is dead is taken over, and a driver that lost its lease writes nothing.
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { loadProgram } from "../../../runtime/modules.ts";
import { MemService } from "../../../services/mem.ts";
import { OfflineProvider } from "../../../services/cap/llm-offline.ts";
import { readText } from "./files.ts";
import { LockBusy, LockLost, RunLock } from "./lock.ts";
import { resumePlan, startPlan, type PlanOptions } from "./orchestrator.ts";
import { loadRecord, recordPath } from "./record.ts";

const build = new URL("../../build/", import.meta.url);
let programs: PlanOptions["programs"];
beforeAll(async () => {
  const load = async (name: string) => loadProgram(readFileSync(new URL(`${name}.wasm`, build)));
  programs = { phase: await load("phase"), reviewer: await load("reviewer") };
});

const clock = (t = 1_000_000) => ({ now: () => t, set: (v: number) => void (t = v) });

describe("the run lock", () => {
  it("refuses a live lease held by another owner, naming it; the same owner takes its own back", async () => {
    const fs = new MemService({ "plans/r1/run.json": "{}" });
    const c = clock();
    const a = await RunLock.acquire(fs, "r1", { owner: "A", ttlMs: 60_000, now: c.now });
    const busy = await RunLock.acquire(fs, "r1", { owner: "B", ttlMs: 60_000, now: c.now }).catch((e) => e);
    expect(busy).toBeInstanceOf(LockBusy);
    expect(busy.message).toMatch(/driven by A/);
    const again = await RunLock.acquire(fs, "r1", { owner: "A", ttlMs: 60_000, now: c.now });
    expect(again.generation).toBe(a.generation + 1);
    await a.release();
    await again.release();
  });

  it("takes over a lease that expired, or whose owner the host knows is dead; the old holder has lost it", async () => {
    const fs = new MemService({ "plans/r1/run.json": "{}" });
    const c = clock();
    const a = await RunLock.acquire(fs, "r1", { owner: "A", ttlMs: 60_000, now: c.now });
    await expect(RunLock.acquire(fs, "r1", { owner: "B", ttlMs: 60_000, now: c.now, alive: () => true })).rejects.toThrow(LockBusy);
    const b = await RunLock.acquire(fs, "r1", { owner: "B", ttlMs: 60_000, now: c.now, alive: (o) => o !== "A" });
    await expect(a.check()).rejects.toThrow(LockLost);
    await expect(a.renew()).rejects.toThrow(LockLost);
    await a.release(); // must not release B's lease
    await expect(RunLock.acquire(fs, "r1", { owner: "C", ttlMs: 60_000, now: c.now })).rejects.toThrow(/driven by B/);
    c.set(c.now() + 60_001);
    const d = await RunLock.acquire(fs, "r1", { owner: "C", ttlMs: 60_000, now: c.now });
    await expect(b.check()).rejects.toThrow(LockLost);
    await d.release();
    // Released: the next driver goes on at once; one lease file is left.
    const e = await RunLock.acquire(fs, "r1", { owner: "E", ttlMs: 60_000, now: c.now });
    expect((await fs.readdir("plans/r1")).filter((x) => x.name.startsWith("lock.")).map((x) => x.name)).toEqual([`lock.${e.generation}`]);
    await e.release();
  });

  it("two racers for a free lock: exactly one wins", async () => {
    const fs = new MemService({ "plans/r1/run.json": "{}" });
    const out = await Promise.allSettled(["A", "B", "C"].map((owner) => RunLock.acquire(fs, "r1", { owner })));
    expect(out.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(out.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason)).toEqual([expect.any(LockBusy), expect.any(LockBusy)]);
    for (const r of out) if (r.status === "fulfilled") await r.value.release();
  });
});

describe("two resumers of one run", () => {
  it("cannot both drive it: the second is refused and the run ends as if resumed once", async () => {
    const ws = new MemService();
    const o = { workspace: ws, provider: new OfflineProvider(), llm: "offline", programs };
    const paused = await startPlan("Drone bread", { ...o, budgetTokens: 600 });
    expect(paused.status).toBe("paused");
    const [x, y] = await Promise.allSettled([resumePlan(paused.run, o), resumePlan(paused.run, o)]);
    const won = [x, y].filter((r) => r.status === "fulfilled");
    const lost = [x, y].filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost.map((r) => r.reason)).toEqual([expect.any(LockBusy)]);
    const done = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof resumePlan>>>).value;
    expect(done.status).toBe("completed");
    // Each agent ran once: as many calls as one uninterrupted run makes.
    const whole = await startPlan("Drone bread", { ...o, workspace: new MemService() });
    expect(done.calls).toBe(whole.calls);
    expect(await loadRecord(ws, paused.run)).toEqual(done);
  });

  it("a driver whose lease was taken over stops without writing the record", async () => {
    const ws = new MemService();
    const o = { workspace: ws, provider: new OfflineProvider(), llm: "offline", programs };
    const paused = await startPlan("Drone bread", { ...o, budgetTokens: 600 });
    let stolen = "";
    const slow = resumePlan(paused.run, {
      ...o,
      driver: { owner: "slow", ttlMs: 60_000 },
      onProgress: (p) => {
        if (stolen || p.step !== "review") return;
        // The lease looks expired to a driver whose clock is past it: it takes the run.
        stolen = "taking";
        void RunLock.acquire(ws, paused.run, { owner: "thief", now: () => Date.now() + 120_000 }).then(async () => {
          stolen = (await readText(ws, recordPath(paused.run)))!;
        });
      },
    });
    await expect(slow).rejects.toThrow(LockLost);
    expect(stolen).not.toBe("taking");
    expect(await readText(ws, recordPath(paused.run))).toBe(stolen);
  });
});
