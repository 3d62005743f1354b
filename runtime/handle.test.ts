import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { CowService } from "../services/cow.ts";
import { DirService } from "../services/dir.ts";
import { LogsService } from "../services/logs.ts";
import { MapService } from "../services/map.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import { code, dec, enc } from "../test/helpers.ts";
import { Namespace } from "./namespace.ts";
import type { FileService } from "./types.ts";

/** Every service with a writable file `f` holding "data" (map: read-only, so reads only). */
function services(): [string, FileService, string][] {
  const dir = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), "oanix-handle-"));
  nodeFs.writeFileSync(nodePath.join(dir, "f"), "data");
  const logs = new LogsService();
  logs.append("stdout", enc("data"));
  const task = new TaskService("data");
  return [
    ["mem", new MemService({ f: "data" }), "f"],
    ["dir", new DirService(dir), "f"],
    ["cow", new CowService(new MemService({ f: "data" })), "f"],
    ["logs", logs, "stdout"],
    ["task", task, "spec.json"],
    ["map", new MapService({ f: "data" }), "f"],
  ];
}

describe("handle modes are checked once, by the Namespace, for every service", () => {
  it("read on a write-only handle, write or truncate on a read-only one, and anything after close: EBADF", async () => {
    for (const [name, svc, file] of services()) {
      const n = new Namespace().mount("/m", svc);
      const p = `/m/${file}`;
      const ro = await n.open(p, { read: true });
      expect(`${name}: ${dec(await ro.read(5))}`).toMatch(new RegExp(`^${name}: "?data`));
      expect(`${name} write: ${await code(() => ro.write(enc("x")))}`).toBe(`${name} write: EBADF`);
      expect(`${name} truncate: ${await code(() => ro.truncate(0))}`).toBe(`${name} truncate: EBADF`);
      await ro.close();
      expect(`${name} closed: ${await code(() => ro.read(1))}`).toBe(`${name} closed: EBADF`);
      expect(`${name} close twice: ${await code(() => ro.close())}`).toBe(`${name} close twice: EBADF`);
      if (name === "map" || name === "task") continue; // read-only files
      const wo = await n.open(p, { write: true });
      expect(`${name} read: ${await code(() => wo.read(4))}`).toBe(`${name} read: EBADF`);
      expect(`${name} readInto: ${await code(() => wo.readInto!(new Uint8Array(4)))}`).toBe(`${name} readInto: EBADF`);
      await wo.close();
      const ap = await n.open(p, { append: true });
      expect(`${name} append read: ${await code(() => ap.read(4))}`).toBe(`${name} append read: EBADF`);
      await ap.close();
    }
  });

  it("a read-only cow handle on a lower file never writes the lower", async () => {
    const lower = new MemService({ f: "data" });
    const cow = new CowService(lower);
    const h = await cow.open("f", { read: true });
    expect(await code(() => h.write(enc("x"), 0))).toBe("EBADF");
    expect(dec(lower.readFile("f"))).toBe("data");
  });
});
