// The edge process runner inside workerd: a bundled agent in a Durable Object, its /workspace
// the caller's workspace live over RPC (JSPI suspends the guest on every call), /task from KV,
// /logs streamed to the workspace's logs, limits enforced, the run recorded as a D1 job.
import { describe, expect, it } from "vitest";
import { batch, call, createWs, json, newKey, text } from "./testing.ts";

describe("edge process runner", () => {
  it("runs the demo agent over a live edge workspace and records the job", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await call(a, "PUT", `/w/${ws}/f/a.txt`, "edge edge worker\n");
    await call(a, "PUT", `/w/${ws}/f/b.txt`, "worker edge\n");
    const r = await call(a, "POST", `/w/${ws}/run`, { program: "demo", task: { kind: "wordcount", root: "/workspace", top: 2 } });
    expect(r.status).toBe(200);
    const run = await json(r);
    expect(run.status).toMatchObject({ code: 0, reason: "exit" });
    expect(run.result).toMatchObject({ ok: true, files: 2, words: 5, top: [["edge", 3], ["worker", 2]] });
    // The agent's writes landed in the workspace itself.
    const st = await batch(a, ws, [{ op: "stat", path: "manifest.json" }]);
    expect(st.results[0]!.ok).toBe(true);
    // Task files: result and status written through the DO, readable from KV.
    const res = await call(a, "GET", `/w/${ws}/task/${run.job}/result.json`);
    expect(JSON.parse(await res.text())).toMatchObject({ ok: true, words: 5 });
    expect(await (await call(a, "GET", `/w/${ws}/task/${run.job}/status`)).text()).toBe("succeeded");
    // Logs streamed to the workspace's log streams.
    const out = await call(a, "GET", `/w/${ws}/logs/${run.job}.stdout`);
    expect(out.status).toBe(200);
    expect((await out.text()).length).toBeGreaterThan(0);
    const events = await (await call(a, "GET", `/w/${ws}/logs/${run.job}.events`)).text();
    expect(events).toContain("exit");
    // The D1 job went queued → running → succeeded.
    const job = await json(call(a, "GET", `/w/${ws}/jobs/${run.job}`));
    expect(job.job.state).toBe("succeeded");
    expect(job.events.map((e: { type: string }) => e.type)).toEqual(["queued", "running", "exit", "succeeded"]);
  });

  it("enforces the wall-time limit on a busy guest and marks the job failed", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const run = await json(call(a, "POST", `/w/${ws}/run`, { program: "busy", limits: { wallTimeMs: 300 } }));
    expect(run.status.reason).toBe("timeout");
    expect(run.status.durationMs).toBeLessThan(5000);
    const job = await json(call(a, "GET", `/w/${ws}/jobs/${run.job}`));
    expect(job.job.state).toBe("failed");
  });

  it("enforces the memory limit", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const run = await json(call(a, "POST", `/w/${ws}/run`, { program: "membomb", limits: { memoryBytes: 4 << 20 } }));
    expect(run.status.reason).toBe("memory");
    expect(run.taskStatus).toBe("failed");
  });

  it("refuses unknown programs, bad input and callers without write access, creating no job", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    expect((await call(a, "POST", `/w/${ws}/run`, { program: "nope" })).status).toBe(404);
    expect((await call(a, "POST", `/w/${ws}/run`, { program: "hello", args: [1] })).status).toBe(400);
    expect((await call(a, "POST", `/w/${ws}/run`, { program: "hello", limits: { wallTimeMs: -1 } })).status).toBe(400);
    expect((await call(b, "POST", `/w/${ws}/run`, { program: "hello" })).status).toBe(403);
    const tok = (await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "", rights: "r" }))).token as string;
    expect((await call(tok, "POST", `/w/${ws}/run`, { program: "hello" })).status).toBe(403);
    expect((await json(call(a, "GET", `/w/${ws}/jobs`))).jobs).toEqual([]);
    const ok = await json(call(a, "POST", `/w/${ws}/run`, { program: "hello", task: {} }));
    expect(ok.status.code).toBe(0);
    expect(text(new TextEncoder().encode(JSON.stringify(ok.result)))).toContain("true");
  });
});

describe("a bound on concurrent runs (issue 7)", () => {
  // Busy guests hold the (single-threaded) local edge while they run, so the requests that race
  // for slots are sent together, before any guest starts.
  const busyRun = (who: ReturnType<typeof newKey>, ws: string) =>
    call(who, "POST", `/w/${ws}/run`, { program: "busy", wait: false, limits: { wallTimeMs: 800 } });
  const statuses = (rs: Response[]) => rs.map((r) => r.status).sort();

  it("per workspace: past 2 runs a run is 429 EAGAIN and creates no job", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const rs = await Promise.all([busyRun(a, ws), busyRun(a, ws), busyRun(a, ws)]);
    expect(statuses(rs)).toEqual([202, 202, 429]);
    const refused = rs.find((r) => r.status === 429)!;
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("EAGAIN");
    expect((await json(call(a, "GET", `/w/${ws}/jobs`))).jobs).toHaveLength(2);
  });

  it("per edge: past 3 runs across workspaces a run is 429 EAGAIN; slots come back when runs end", async () => {
    const a = newKey();
    const names = [await createWs(a), await createWs(a), await createWs(a), await createWs(a)];
    const rs = await Promise.all(names.map((ws) => busyRun(a, ws)));
    expect(statuses(rs)).toEqual([202, 202, 202, 429]);
    const jobs = await Promise.all(names.map(async (ws) => (await json(call(a, "GET", `/w/${ws}/jobs`))).jobs.length));
    expect(jobs.reduce((n, j) => n + j, 0)).toBe(3);
    await new Promise((r) => setTimeout(r, 3000));
    const after = await call(a, "POST", `/w/${names[rs.findIndex((r) => r.status === 429)]}/run`, { program: "hello" });
    expect(after.status).toBe(200);
  });
});
