// One local edge per state directory (edge/dev/state-lock.ts): a second is refused with the
// holder's pids; a lock left by a dead process is taken over.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LOCK_NAME, StateLockedError, lockState } from "../edge/dev/state-lock.ts";

const tmp = mkdtempSync(join(tmpdir(), "oanix-lock-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

describe("state lock", () => {
  it("refuses a second edge on the same state, naming the first", () => {
    const dir = join(tmp, "a");
    const first = lockState(dir, "http://127.0.0.1:8787");
    first.setChild(process.ppid);
    let err: unknown;
    try {
      lockState(dir, "http://127.0.0.1:8788");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateLockedError);
    expect((err as Error).message).toMatch(new RegExp(`another local edge \\(pid ${process.pid}, ${process.ppid}, http://127.0.0.1:8787\\) is using ${dir}`));
    expect((err as Error).message).toMatch(/--state DIR/);
    first.release();
    expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
    lockState(dir, "http://127.0.0.1:8788").release();
  });

  it("takes over a stale lock (its processes are gone) or a garbled one", () => {
    const dir = join(tmp, "b");
    lockState(dir, "x").release();
    writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pids: [deadPid(), deadPid()], url: "http://127.0.0.1:1" }));
    const lock = lockState(dir, "http://127.0.0.1:2");
    expect(JSON.parse(readFileSync(join(dir, LOCK_NAME), "utf8")).pids).toEqual([process.pid]);
    lock.release();
    writeFileSync(join(dir, LOCK_NAME), "{half");
    lockState(dir, "y").release();
  });

  it("a live wrangler child keeps the state locked after its launcher died", () => {
    const dir = join(tmp, "c");
    lockState(dir, "x").release();
    writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pids: [deadPid(), process.pid], url: "http://127.0.0.1:3" }));
    expect(() => lockState(dir, "y")).toThrow(StateLockedError);
  });
});
