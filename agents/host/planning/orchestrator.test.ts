// Planning runs in-process: the real phase and reviewer agents (WASI), a memory workspace, the
// offline provider or a local OpenAI-compatible server scripted per phase.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProgram } from "../../../runtime/modules.ts";
import type { FileService } from "../../../runtime/types.ts";
import { DirService } from "../../../services/dir.ts";
import { MemService } from "../../../services/mem.ts";
import { OfflineProvider } from "../../../services/cap/llm-offline.ts";
import { providerFrom } from "../../../services/cap/llm-provider.ts";
import { startOpenAiStub, type OpenAiStub } from "../../../services/cap/openai-stub.ts";
import { PHASES } from "../../planning/phases.ts";
import { Metered, runAgent } from "./agents.ts";
import { readText } from "./files.ts";
import { MAX_IDEA_CHARS, PlanError, resumePlan, startPlan, type PlanOptions } from "./orchestrator.ts";
import { listParked, listRuns, loadRecord } from "./record.ts";

const build = new URL("../../build/", import.meta.url);
const load = async (name: string) => loadProgram(readFileSync(new URL(`${name}.wasm`, build)));
let programs: PlanOptions["programs"];
let stub: OpenAiStub;

/** Who is asking: the phase agent of `phase`, or the reviewer of it. */
function caller(messages: { role: string; content: string }[]): { phase: string; reviewer: boolean; prompt: string } {
  const system = messages.find((m) => m.role === "system")?.content ?? "";
  const prompt = messages.find((m) => m.role === "user")?.content ?? "";
  const reviewer = system.includes("reviewer");
  const phase = (reviewer ? /^Review the (\S+) phase/ : /^You are the (\S+) phase/).exec(reviewer ? prompt : system)?.[1] ?? "?";
  return { phase, reviewer, prompt };
}

/** Scripted answers: every phase writes its sections and is accepted, unless `over` answers. */
function script(over: (c: ReturnType<typeof caller>) => string | undefined = () => undefined): void {
  stub.answer = (messages) => {
    const c = caller(messages);
    const mine = over(c);
    if (mine !== undefined) return mine;
    if (c.reviewer) return "REVIEW: ACCEPT\nSCORE: 8\nGood enough.";
    const ph = PHASES.find((p) => p.name === c.phase)!;
    return ph.sections.map((s) => `## ${s}\nAbout ${s.toLowerCase()}.\n`).join("\n") + (c.phase === "kill-test" ? "VERDICT: GO\n" : "");
  };
}

const options = (workspace: FileService, o: Partial<PlanOptions> = {}): PlanOptions => ({
  workspace, provider: providerFrom(`openai:${stub.url}#stub`), llm: "openai:stub", programs, ...o,
});

beforeAll(async () => {
  programs = { phase: await load("phase"), reviewer: await load("reviewer") };
  stub = await startOpenAiStub();
});
afterAll(() => stub.close());

describe("a planning run", () => {
  it("goes through every phase with the offline provider and packages every artifact", async () => {
    const ws = new MemService();
    const rec = await startPlan("  A bakery that delivers bread by drone  ", { workspace: ws, provider: new OfflineProvider(), llm: "offline", programs });
    expect(rec.status).toBe("completed");
    expect(rec.idea).toBe("A bakery that delivers bread by drone");
    expect(rec.phases.map((p) => p.phase)).toEqual(PHASES.map((p) => p.name));
    expect(rec.verdict).toBe("GO");
    const reviewed = PHASES.filter((p) => p.review).length;
    expect(rec.calls).toBe(PHASES.length + reviewed);
    const pkg = (await readText(ws, rec.package!))!;
    for (const r of rec.phases) {
      expect(pkg).toContain(`](${r.artifact.split("/").at(-1)})`);
      expect(await readText(ws, r.artifact)).toContain("A bakery that delivers bread by drone");
      const fields = JSON.parse((await readText(ws, r.json))!);
      expect(fields.phase).toBe(r.phase);
      expect(fields.sections.length).toBe(PHASES.find((p) => p.name === r.phase)!.sections.length);
      if (PHASES.find((p) => p.name === r.phase)!.review) expect(fields.score).toBeGreaterThanOrEqual(6);
    }
    expect(await loadRecord(ws, rec.run)).toEqual(rec);
    expect((await listRuns(ws)).map((r) => r.run)).toEqual([rec.run]);
  });

  it("revises until the reviewer accepts or the iterations run out, keeping the best and every try", async () => {
    const scores = [3, 6, 4];
    let review = 0;
    script((c) => (c.reviewer && c.phase === "opportunity" ? `REVIEW: REVISE\nSCORE: ${scores[review++]}\nNeeds numbers (try ${review}).` : undefined));
    stub.requests.length = 0;
    const ws = new MemService();
    const rec = await startPlan("Drone bread", options(ws, { reviewIterations: 3 }));
    expect(rec.status).toBe("completed");
    const opp = rec.phases.find((p) => p.phase === "opportunity")!;
    expect(opp.iterations.map((i) => [i.verdict, i.score])).toEqual([["REVISE", 3], ["REVISE", 6], ["REVISE", 4]]);
    expect(opp.best).toBe(2);
    expect(opp.score).toBe(6);
    expect(await readText(ws, opp.artifact)).toBe(await readText(ws, opp.iterations[1]!.artifact));
    for (const it of opp.iterations) expect(await readText(ws, it.review!)).toContain(`try ${it.n}`);
    // The second try was asked with the first version and its review.
    const retry = stub.requests.map((r) => caller(r.body.messages as never)).filter((c) => !c.reviewer && c.phase === "opportunity");
    expect(retry).toHaveLength(3);
    expect(retry[1]!.prompt).toContain("Needs numbers (try 1)");
    expect(retry[2]!.prompt).toContain("Needs numbers (try 2)");
  });

  it("PIVOT restarts from the first phase with the refined idea, keeping the first pass", async () => {
    let kills = 0;
    script((c) => (!c.reviewer && c.phase === "kill-test" && kills++ === 0 ? "## Verdict\nVERDICT: PIVOT\nREFINED: bread subscriptions by bike\n" : undefined));
    stub.requests.length = 0;
    const ws = new MemService();
    const rec = await startPlan("Drone bread", options(ws));
    expect(rec).toMatchObject({ status: "completed", pivots: 1, refinedIdea: "bread subscriptions by bike", verdict: "GO" });
    expect(rec.pivotHistory).toEqual([{ pivot: 1, dir: `plans/${rec.run}/pivot-1`, from: "Drone bread", to: "bread subscriptions by bike" }]);
    expect(await readText(ws, `plans/${rec.run}/pivot-1/06-kill-test.md`)).toContain("VERDICT: PIVOT");
    expect(await readText(ws, `plans/${rec.run}/pivot-1/01-intake.md`)).toContain("Drone bread");
    expect(await readText(ws, `plans/${rec.run}/01-intake.md`)).toContain("bread subscriptions by bike");
    expect(rec.phases).toHaveLength(PHASES.length);
  });

  it("a PIVOT past --max-pivots parks the idea as KILL does", async () => {
    script((c) => (!c.reviewer && c.phase === "kill-test" ? "VERDICT: PIVOT\nREFINED: smaller\nREVISIT: 3\n" : undefined));
    const ws = new MemService();
    const rec = await startPlan("Drone bread", options(ws, { maxPivots: 1 }));
    expect(rec).toMatchObject({ status: "killed", pivots: 1, verdict: "PIVOT" });
    expect(rec.parked).toMatchObject({ idea: "Drone bread", refinedIdea: "smaller", run: rec.run, phase: "kill-test", revisitMonths: 3 });
    expect(rec.parked!.reason).toMatch(/PIVOT after 1 pivot/);
  });

  it("KILL ends the run killed and parks the idea with its reason", async () => {
    script((c) => (!c.reviewer && c.phase === "kill-test" ? "**Verdict:** kill\nREASON: nobody wants bread from the sky\nREVISIT: 24 months" : undefined));
    const ws = new MemService();
    const rec = await startPlan("Drone bread", options(ws));
    expect(rec.status).toBe("killed");
    expect(rec.phases.at(-1)!.phase).toBe("kill-test");
    expect(rec.package).toBeUndefined();
    const parked = await listParked(ws);
    expect(parked).toEqual([{ idea: "Drone bread", run: rec.run, phase: "kill-test", reason: "nobody wants bread from the sky", revisitMonths: 24, parkedAt: expect.any(String) }]);
  });

  it("answers without markers take the defaults and do not stop the run", async () => {
    script(() => "I am not sure what you mean.");
    const ws = new MemService();
    const rec = await startPlan("Drone bread", options(ws, { reviewIterations: 2 }));
    expect(rec.status).toBe("completed");
    const kill = rec.phases.find((p) => p.phase === "kill-test")!;
    expect(kill).toMatchObject({ verdict: "GO", verdictDefaulted: true });
    const opp = rec.phases.find((p) => p.phase === "opportunity")!;
    expect(opp.iterations.map((i) => [i.verdict, i.score, i.reviewDefaulted])).toEqual([["REVISE", null, true], ["REVISE", null, true]]);
    expect(opp.best).toBe(1);
    expect(JSON.parse((await readText(ws, opp.json))!).missing).toEqual(PHASES[1]!.sections);
  });

  it("pauses when the token budget runs out and resumes with more, repeating no finished call", async () => {
    script();
    stub.requests.length = 0;
    const ws = new MemService();
    const paused = await startPlan("Drone bread", options(ws, { budgetTokens: 2000 }));
    expect(paused.status).toBe("paused");
    expect(paused.error).toMatchObject({ code: "EDQUOT", message: expect.stringMatching(/token budget is spent/) });
    const before = paused.phases.length;
    expect(before).toBeGreaterThan(0);
    const done = await resumePlan(paused.run, options(ws));
    expect(done.status).toBe("completed");
    expect(done.error).toBeUndefined();
    const bodies = stub.requests.map((r) => JSON.stringify(r.body.messages));
    expect(new Set(bodies).size).toBe(bodies.length);
    expect(done.calls).toBe(bodies.length);
  });

  it("never spends past its budget: the call that would pass it is refused before it is made", async () => {
    // A provider whose tokenizer counts twice the words: the estimate learns it from the first reply.
    const doubled = { name: "doubled", models: async () => ["d"], complete: async (req: never, call: never) => {
      const r = await new OfflineProvider().complete(req, call);
      return { ...r, usage: { ...r.usage, prompt_tokens: r.usage.prompt_tokens * 2 } };
    } };
    for (const [provider, budget] of [[new OfflineProvider(), 500], [new OfflineProvider(), 2000], [new OfflineProvider(), 3000], [doubled, 2000]] as const) {
      const ws = new MemService();
      const paused = await startPlan("Drone bread", { workspace: ws, provider, llm: "offline", programs, budgetTokens: budget });
      expect(paused.status).toBe("paused");
      expect(paused.tokens).toBeLessThanOrEqual(budget);
      expect(paused.error).toMatchObject({ code: "EDQUOT" });
      const done = await resumePlan(paused.run, { workspace: ws, provider, llm: "offline", programs });
      expect(done.status).toBe("completed");
    }
  });

  it("a provider that errors fails the run with the reason; resuming later loses nothing", async () => {
    script();
    stub.requests.length = 0;
    const ws = new MemService();
    let n = 0;
    script((c) => {
      if (++n === 5) stub.failWith = 500;
      return undefined;
    });
    const failed = await startPlan("Drone bread", options(ws));
    stub.failWith = 0;
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatchObject({ code: "EIO", phase: expect.any(String) });
    expect(failed.error!.message).toMatch(/500/);
    const kept = failed.phases.map((p) => p.artifact);
    expect(kept.length).toBeGreaterThan(0);
    const done = await resumePlan(failed.run, options(ws));
    expect(done.status).toBe("completed");
    for (const a of kept) expect(done.phases.find((p) => p.artifact === a)).toBeDefined();
  });

  it("a provider that does not answer in time stops the agent at its wall time; the run resumes", async () => {
    script();
    const ws = new MemService();
    stub.delayMs = 3000;
    const slow = await startPlan("Drone bread", options(ws, { agentTimeMs: 300 }));
    stub.delayMs = 0;
    expect(slow).toMatchObject({ status: "failed", error: { phase: "intake", agent: "phase", code: "timeout" } });
    expect((await resumePlan(slow.run, options(ws))).status).toBe("completed");
  });

  it("a phase agent that crashes is reported with its exit reason", async () => {
    const ws = new MemService();
    const rec = await startPlan("Drone bread", { ...options(ws), programs: { phase: await load("trap"), reviewer: programs.reviewer } });
    expect(rec.status).toBe("failed");
    expect(rec.error).toMatchObject({ agent: "phase", phase: "intake", code: "trap" });
    expect((await loadRecord(ws, rec.run))!.status).toBe("failed");
  });

  it("refuses an empty or oversized idea, and a read-only workspace, before anything is written", async () => {
    const ws = new MemService();
    await expect(startPlan("  \n ", options(ws))).rejects.toThrow(PlanError);
    await expect(startPlan("x".repeat(MAX_IDEA_CHARS + 1), options(ws))).rejects.toThrow(/at most 4000/);
    expect(await ws.readdir("")).toEqual([]);
    const ro = new DirService(import.meta.dirname, { readOnly: true });
    await expect(startPlan("Drone bread", options(ro))).rejects.toThrow(/read-only/);
    await expect(resumePlan("no-such-run", options(ws))).rejects.toThrow(/no run/);
  });
});

describe("a run driven in slices (as an edge alarm or Workflow step would)", () => {
  it("runs one agent per call, checkpointed, and ends as one uninterrupted run does", async () => {
    const ws = new MemService();
    const o = { workspace: ws, provider: new OfflineProvider(), llm: "offline", programs, maxAgents: 1 };
    let rec = await startPlan("Drone bread", o);
    let slices = 1;
    while (rec.status === "running") {
      expect((await loadRecord(ws, rec.run))!.status).toBe("running");
      rec = await resumePlan(rec.run, o);
      slices++;
    }
    expect(rec.status).toBe("completed");
    expect(rec.calls).toBe(PHASES.length + PHASES.filter((p) => p.review).length);
    expect(slices).toBe(rec.calls); // the last slice also writes the package
  });
});

describe("a planning agent's namespace", () => {
  it("reads the whole workspace but writes only the run's directory", async () => {
    const ws = new MemService({ "notes/brief.md": "# Brief\nBread.\n", "plans/r1/run.json": "{}" });
    const env = { workspace: ws, writable: "plans/r1", provider: new Metered(new OfflineProvider()), tokensLeft: Infinity, wallTimeMs: 10_000 };
    const spec = (md: string) => ({ idea: "Drone bread", phase: { name: "intake", purpose: "p", sections: ["Idea"] }, inputs: ["notes/brief.md"], out: { md, json: md.replace(/md$/, "json") } });
    expect(await runAgent(programs.phase, "phase", spec("plans/r1/01-intake.md"), env)).toMatchObject({ ok: true });
    expect(await readText(ws, "plans/r1/01-intake.md")).toContain("Bread.");
    const out = await runAgent(programs.phase, "phase", spec("notes/escape.md"), env);
    expect(out).toMatchObject({ ok: false, code: "EROFS" });
    expect(await readText(ws, "notes/escape.md")).toBeNull();
    expect(await readText(ws, "notes/brief.md")).toBe("# Brief\nBread.\n");
  });
});
