// `oanix plan` as a user runs it: a child process, progress on stderr, the summary on stdout; a run
// killed mid-way (SIGKILL) and resumed repeats no model call (counted at a local server).
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAiStub, type OpenAiStub } from "../services/cap/openai-stub.ts";
import { PHASES } from "../agents/planning/phases.ts";

const ROOT = join(import.meta.dirname, "..");
const CLI = join(ROOT, "cli/oanix.ts");
const tmp = mkdtempSync(join(tmpdir(), "oanix-plan-"));
let stub: OpenAiStub;
beforeAll(async () => {
  stub = await startOpenAiStub();
  stub.answer = (messages) => {
    const system = messages.find((m) => m.role === "system")!.content;
    if (system.includes("reviewer")) return "REVIEW: ACCEPT\nSCORE: 7\n";
    return system.includes("kill-test") ? "## Verdict\nGo.\nVERDICT: GO\n" : "## Notes\nSome notes.\n";
  };
});
afterAll(async () => {
  await stub.close();
  rmSync(tmp, { recursive: true, force: true });
});

function oanix(args: string[], cwd = tmp): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, "plan", ...args], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe("oanix plan", () => {
  it("runs every phase offline, shows progress on stderr and the summary on stdout", async () => {
    const ws = mkdtempSync(join(tmp, "ws-"));
    const r = await oanix(["A bakery that delivers bread by drone", "--workspace", `dir:${ws}`, "--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ idea: "A bakery that delivers bread by drone", status: "completed", verdict: "GO", pivots: 0, package: `plans/${s.run}/package.md` });
    expect(s.phases.map((p: { phase: string }) => p.phase)).toEqual(PHASES.map((p) => p.name));
    for (const p of s.phases) {
      expect(Object.keys(p)).toEqual(["phase", "artifact", "score", "review", "iterations"]);
      expect(existsSync(join(ws, p.artifact))).toBe(true);
    }
    const lines = r.stderr.trim().split("\n");
    expect(lines.filter((l) => /^plan \d\d\/17 /.test(l)).length).toBeGreaterThanOrEqual(PHASES.length);
    expect(r.stderr).toMatch(/plan 02\/17 opportunity +iter 1 +score \d ACCEPT +tokens \d+ \(run \d+\)/);
    const list = await oanix(["--list", "--workspace", `dir:${ws}`, "--json"]);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ run: s.run, status: "completed" })]);
  });

  it("answers bad input with exit 2 and one line, writing nothing", async () => {
    const ws = mkdtempSync(join(tmp, "bad-"));
    const cases: [string[], RegExp][] = [
      [[], /needs an IDEA/],
      [["", "--workspace", `dir:${ws}`], /the idea is empty/],
      [["x".repeat(5000), "--workspace", `dir:${ws}`], /at most 4000/],
      [["idea", "--review-iterations", "0"], /whole number ≥ 1/],
      [["idea", "--llm", "gpt"], /use offline or openai/],
      [["idea", "--workspace", "dir:/no/such/dir"], /no such directory/],
      [["--resume", "nope", "--workspace", `dir:${ws}`], /no run nope/],
    ];
    for (const [args, re] of cases) {
      const r = await oanix(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(existsSync(join(ws, "plans"))).toBe(false);
  });

  it("reports a provider that errors, then resumes the run", async () => {
    const ws = mkdtempSync(join(tmp, "err-"));
    stub.failWith = 503;
    const r = await oanix(["Drone bread", "--llm", `openai:${stub.url}#stub`, "--workspace", `dir:${ws}`, "--json"]);
    stub.failWith = 0;
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ status: "failed", error: { phase: "intake", code: "EIO" } });
    expect(r.stderr).toMatch(new RegExp(`failed: .*503.*oanix plan --resume ${s.run}`));
    const again = await oanix(["--resume", s.run, "--llm", `openai:${stub.url}#stub`, "--workspace", `dir:${ws}`, "--json"]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).status).toBe("completed");
  });

  it("a run killed mid-way resumes from its last checkpoint and repeats no model call", async () => {
    const ws = mkdtempSync(join(tmp, "kill-"));
    const llm = `openai:${stub.url}#stub`;
    stub.requests.length = 0;
    stub.delayMs = 20;
    const child = spawn(process.execPath, [CLI, "plan", "Drone bread", "--llm", llm, "--workspace", `dir:${ws}`], { cwd: tmp, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (b) => (err += b));
    // Kill it once five phases are done (the sixth line of progress is on its way).
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if ((err.match(/^plan \d\d\/17/gm) ?? []).length >= 5) {
          clearInterval(t);
          child.kill("SIGKILL");
          resolve();
        }
      }, 5);
    });
    await new Promise((r) => child.once("exit", r));
    stub.delayMs = 0;
    const run = readdirRun(ws);
    const before = stub.requests.length;
    const record = JSON.parse(readFileSync(join(ws, "plans", run, "run.json"), "utf8"));
    expect(record.status).toBe("running");
    expect(record.phases.length).toBeGreaterThanOrEqual(4);
    const r = await oanix(["--resume", run, "--llm", llm, "--workspace", `dir:${ws}`, "--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.status).toBe("completed");
    expect(s.phases).toHaveLength(PHASES.length);
    // Every model call of the whole run happened once; only one in flight at the kill may repeat.
    const bodies = stub.requests.map((q) => JSON.stringify(q.body.messages));
    expect(bodies.length - new Set(bodies).size).toBeLessThanOrEqual(1);
    expect(before).toBeGreaterThan(0);
    expect(new Set(bodies).size).toBe(PHASES.length + PHASES.filter((p) => p.review).length);
  });
});

function readdirRun(ws: string): string {
  return readdirSync(join(ws, "plans")).find((n) => !n.includes("."))!;
}
