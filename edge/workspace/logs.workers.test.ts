// Logs (edge/workspace/logs.ts): buffered in the object, segments in R2, a live tail.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { INLINE_MAX } from "../../services/remote-wire.ts";
import { batch, call, createWs, json, newKey, text } from "../testing.ts";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const read = async (who: Parameters<typeof batch>[0], ws: string, path: string, version?: number) =>
  text((await batch(who, ws, [{ op: "read", path, offset: 0, length: 1 << 20, ...(version !== undefined ? { version } : {}) }])).results[0]!.bytes);

describe("logs: R2 segments and a live tail", () => {
  it("appends are readable at once, flushed to R2 segments, and survive eviction", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const chunk = "x".repeat(100 * 1024) + "\n";
    let expected = "";
    for (let i = 0; i < 4; i++) {
      const line = `${i}:${chunk}`;
      expected += line;
      expect((await call(a, "POST", `/w/${ws}/logs/stdout`, line)).status).toBe(200);
    }
    await call(a, "POST", `/w/${ws}/logs/stdout`, "tail\n");
    expected += "tail\n";
    const segs = await env.BLOBS.list({ prefix: `logs/${ws}/stdout/` });
    expect(segs.objects.length).toBeGreaterThan(0); // ≥ 256 KiB was flushed to R2
    await evictDurableObject(stub(ws));
    expect(await (await call(a, "GET", `/w/${ws}/logs/stdout`)).text()).toBe(expected);
    expect(await (await call(a, "GET", `/w/${ws}/logs/stdout?from=${expected.length - 5}`)).text()).toBe("tail\n");
    expect((await call(a, "GET", `/w/${ws}/logs/nothing`)).status).toBe(404);
  });

  it("a follower gets the backlog and then every append, in order", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await call(a, "POST", `/w/${ws}/logs/events`, "one\n");
    const r = await call(a, "GET", `/w/${ws}/logs/events?follow=1`);
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    let got = "";
    const until = async (s: string) => {
      while (!got.includes(s)) {
        const { value, done } = await reader.read();
        if (done) throw new Error("tail ended");
        got += new TextDecoder().decode(value);
      }
    };
    await until("one\n");
    await call(a, "POST", `/w/${ws}/logs/events`, "two\n");
    await call(a, "POST", `/w/${ws}/logs/events`, "three\n");
    await until("three\n");
    expect(got).toBe("one\ntwo\nthree\n");
    await reader.cancel();
  });
});
