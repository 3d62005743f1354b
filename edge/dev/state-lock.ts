// One local edge per state directory. Two `wrangler dev`s on one .wrangler/state share its SQLite
// files and corrupt each other's D1 (SQLITE_BUSY, writes answered EIO), so the first edge takes
// a lock file there holding its pids (the Node launcher and the wrangler child); a second is
// refused with a message naming them. A lock whose processes are all gone (a crash, kill -9) is
// stale and taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const LOCK_NAME = "oanix-edge.lock";

export interface StateLock {
  path: string;
  /** Records the wrangler child's pid too (an orphaned child still holds the state). */
  setChild(pid: number | undefined): void;
  release(): void;
}

interface Holder { pids: number[]; url: string }

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
};

function readHolder(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, "utf8")) as Holder;
    return Array.isArray(h.pids) ? h : undefined;
  } catch {
    return undefined; // half-written or garbage: treated as stale
  }
}

export class StateLockedError extends Error {}

export function lockState(dir: string, url: string): StateLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_NAME);
  const holder: Holder = { pids: [process.pid], url };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(holder), { flag: "wx" });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 2) throw e;
    }
    const other = readHolder(path);
    const live = other?.pids.filter(alive) ?? [];
    if (live.length) {
      throw new StateLockedError(
        `another local edge (pid ${live.join(", ")}, ${other!.url}) is using ${dir}; ` +
        `stop it first, or give this one its own state with --state DIR`);
    }
    rmSync(path, { force: true }); // stale: its processes are gone
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    if (readHolder(path)?.pids[0] === process.pid) rmSync(path, { force: true });
  };
  process.once("exit", release);
  return {
    path,
    setChild(pid) {
      if (released || pid === undefined) return;
      writeFileSync(path, JSON.stringify({ ...holder, pids: [process.pid, pid] }));
    },
    release() {
      process.removeListener("exit", release);
      release();
    },
  };
}
