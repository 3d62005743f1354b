// `npm start` as new users meet it: the demo works for whichever key is in use (a second key
// gets its own demo workspace instead of `demo: /workspace: EACCES`), and a second local edge on
// the same state is refused instead of corrupting the first one's D1.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../edge/dev/launch.ts";
import { keySigner, newSecretKey } from "../services/nip98.ts";

const ROOT = join(import.meta.dirname, "..");
const state = mkdtempSync(join(tmpdir(), "oanix-start-"));
const running: ChildProcess[] = [];
afterAll(() => {
  for (const c of running) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(state, { recursive: true, force: true });
});

/** Starts `npm start`'s script; resolves with its output once `until` matches or it exits. */
function start(key: string, port: number, until: RegExp): Promise<{ child: ChildProcess; out: () => string; code: number | null }> {
  const child = spawn(process.execPath, [join(ROOT, "edge/dev/start.ts"), "--port", String(port), "--state", state], {
    cwd: ROOT, env: { ...process.env, OANIX_KEY: key, OANIX_CACHE_DIR: join(state, "cache") }, stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  let out = "";
  return new Promise((resolve) => {
    const check = () => until.test(out) && resolve({ child, out: () => out, code: null });
    child.stdout!.on("data", (d) => ((out += d), check()));
    child.stderr!.on("data", (d) => ((out += d), check()));
    child.on("exit", (code) => resolve({ child, out: () => out, code }));
  });
}

const stop = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null ? r() : (c.once("exit", () => r()), c.kill("SIGINT"))));

describe("npm start", () => {
  it("runs the demo for the first key, refuses a second edge on its state, then runs it for another key", async () => {
    const a = newSecretKey(), b = newSecretKey();
    const first = await start(a, await freePort(), /Demo done|Demo agent exited/);
    expect(first.out()).toMatch(/Demo done/);
    expect(first.out()).toMatch(/your demo +demo\n/);

    const second = await start(b, await freePort(), /$^/);
    expect(second.code).toBe(1);
    expect(second.out()).toMatch(/another local edge \(pid \d+, \d+, http:\/\/127\.0\.0\.1:\d+\) is using .* --state DIR/);
    await stop(first.child);

    const other = await start(b, await freePort(), /Demo done|Demo agent exited/);
    const mine = `demo-${keySigner(b).pubkey.slice(0, 8)}`;
    expect(other.out()).toMatch(new RegExp(`your demo +${mine} \\(demo belongs to another key\\)`));
    expect(other.out()).toMatch(/Demo done/);
    expect(other.out()).not.toMatch(/EACCES/);
    await stop(other.child);
  }, 240_000);
});
