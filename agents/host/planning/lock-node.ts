// The driver identity of a Node process, for the run lock (lock.ts): `cli:PID@HOST#…`, and a
// liveness test that lets a run whose driver died on this host (a killed `oanix plan`) be resumed
// at once instead of after its lease runs out. Owners on other hosts are judged by their lease.
import { hostname } from "node:os";
import type { LockOptions } from "./lock.ts";

const OWNER = /^cli:(\d+)@(.+)#[0-9a-f-]+$/;

export function nodeDriver(ttlMs?: number): LockOptions {
  return {
    owner: `cli:${process.pid}@${hostname()}#${crypto.randomUUID()}`,
    ...(ttlMs !== undefined ? { ttlMs } : {}),
    alive: (owner) => {
      const m = OWNER.exec(owner);
      if (!m || m[2] !== hostname()) return undefined;
      try {
        process.kill(Number(m[1]), 0);
        return true;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
      }
    },
  };
}
