// The page's limits reach the runtime without erasing its defaults (runs in Node: no browser needed).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { limitsOf } from "../../browser/limits.ts";
import { loadProgram } from "../../runtime/modules.ts";
import { Namespace } from "../../runtime/namespace.ts";
import { DEFAULT_LIMITS, spawn } from "../../runtime/process.ts";
import { MemService } from "../../services/mem.ts";

describe("limitsOf", () => {
  it("passes only the limits given", () => {
    expect(limitsOf({})).toEqual({});
    expect(Object.keys(limitsOf({ timeoutMs: undefined, memoryBytes: undefined, outputBytes: undefined }))).toEqual([]);
    expect(limitsOf({ timeoutMs: 5, memoryBytes: 1 << 20, outputBytes: 10 })).toEqual({ wallTimeMs: 5, memoryBytes: 1 << 20, outputBytes: 10 });
  });

  it("a run given no output limit is still stopped at the runtime's default", async () => {
    const program = await loadProgram(readFileSync(new URL("../../agents/build/spew.wasm", import.meta.url)));
    let out = 0;
    const s = await spawn(program, { namespace: new Namespace().mount("/", new MemService()), limits: limitsOf({}), onStdout: (b) => void (out += b.length) });
    expect(s).toMatchObject({ code: 153, reason: "output" });
    expect(out).toBeLessThanOrEqual(DEFAULT_LIMITS.outputBytes);
  });
});
