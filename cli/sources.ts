// Mount sources named on the command line: mem:, dir:HOSTDIR, task:SPEC.json, http(s)://HOST/w/NAME.
// The host directory and edge kinds are imported only when a mount of that kind is asked for
// (memory and task services are part of every run anyway).
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { FileService } from "../runtime/types.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import { UsageError } from "./usage.ts";

export { UsageError };

export interface Source {
  service: FileService;
  /** Set for task: sources, so the host can set the status and read the result. */
  task?: TaskService;
  /** Set for edge workspaces: where it is, and a check run (through the mounted service) before the guest starts. */
  remote?: { url: string; name: string; origin: string; probe(through: FileService): Promise<void> };
}

export async function openSource(source: string, opts: { readOnly: boolean }): Promise<Source> {
  const colon = source.indexOf(":");
  const kind = colon < 0 ? source : source.slice(0, colon);
  const arg = colon < 0 ? "" : source.slice(colon + 1);
  switch (kind) {
    case "mem": {
      if (arg) throw new UsageError(`mem: takes no argument (got "${source}")`);
      return { service: new MemService() };
    }
    case "dir": {
      if (!arg) throw new UsageError("dir: needs a host directory, as in dir:./work");
      const root = resolve(arg);
      let isDir = false;
      try {
        isDir = statSync(root).isDirectory();
      } catch {
        throw new UsageError(`dir:${arg}: no such directory`);
      }
      if (!isDir) throw new UsageError(`dir:${arg}: not a directory`);
      const { DirService } = await import("../services/dir.ts");
      return { service: new DirService(root, { readOnly: opts.readOnly }) };
    }
    case "task": {
      if (!arg) throw new UsageError("task: needs a spec file, as in task:spec.json");
      let text: string;
      try {
        text = readFileSync(resolve(arg), "utf8");
      } catch {
        throw new UsageError(`task:${arg}: cannot read the spec file`);
      }
      let spec: unknown;
      try {
        spec = JSON.parse(text);
      } catch (e) {
        throw new UsageError(`task:${arg}: not valid JSON (${(e as Error).message})`);
      }
      const task = new TaskService(spec);
      return { service: task, task };
    }
    case "http":
    case "https":
      return (await import("./remote-source.ts")).remoteMount(source, opts);
    default:
      throw new UsageError(`unknown mount source "${source}" (use mem:, dir:HOSTDIR, task:SPEC.json or http://HOST/w/NAME)`);
  }
}
