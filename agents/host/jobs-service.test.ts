// /cap/nostr/jobs as files: the customer side of NIP-90 for agents, against the real local relay
// and `oanix serve`'s provider; and a WASI agent that hires another agent with file operations.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSecretKey } from "nostr-tools/pure";
import { Namespace } from "../../runtime/namespace.ts";
import { spawn } from "../../runtime/process.ts";
import { isFsError } from "../../runtime/errors.ts";
import { LogsService } from "../../services/logs.ts";
import { MemService } from "../../services/mem.ts";
import { TaskService } from "../../services/task.ts";
import { JobsService } from "./jobs-service.ts";
import { Provider } from "./serve.ts";
import { submitJob } from "./job.ts";
import { agent, newPeer, startRelay, type TestRelay } from "./testing.ts";
import type { FileHandle } from "../../runtime/types.ts";

let relay: TestRelay;
let provider: Provider;
const peers: ReturnType<typeof newPeer>[] = [];
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  relay = await startRelay();
  provider = new Provider({ relays: [relay.url], secretKey: generateSecretKey(), programs: new Map([[5050, await agent("jobcount")], [5051, await agent("echo")]]) });
  await provider.start();
}, 120_000);
afterAll(async () => {
  provider?.stop();
  for (const p of peers) p.close();
  await relay?.stop();
});

function service(o: { timeoutMs?: number } = {}) {
  const peer = newPeer(relay.url);
  peers.push(peer);
  const events: Record<string, unknown>[] = [];
  return { jobs: new JobsService({ peer, timeoutMs: o.timeoutMs ?? 20_000, onEvent: (e) => events.push(e) }), events };
}

async function readAll(h: FileHandle): Promise<string> {
  let out = "";
  for (;;) {
    const b = await h.read(4096);
    if (!b.length) return out;
    out += dec(b);
  }
}

async function hire(jobs: JobsService, request: unknown): Promise<string> {
  const h = await jobs.open("new", { read: true, write: true });
  await h.write(enc(JSON.stringify(request)));
  const reply = JSON.parse(await readAll(h)) as { id: string };
  await h.close();
  return reply.id;
}

async function fails(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isFsError(e)) return e.code;
    throw e;
  }
  return "no error";
}

describe("/cap/nostr/jobs", () => {
  it("new → id; ID/result waits for the answer; ID/status and ID/feedback tell the story", async () => {
    const { jobs } = service();
    const id = await hire(jobs, { kind: 5050, input: "five words are right here", params: { op: "count" } });
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await jobs.readdir("")).map((e) => e.name)).toEqual(["new", id]);
    expect((await jobs.readdir(id)).map((e) => e.name)).toEqual(["status", "feedback", "result", "cancel"]);
    expect(await readAll(await jobs.open(`${id}/result`, { read: true }))).toBe("5 words");
    expect(JSON.parse(await readAll(await jobs.open(`${id}/status`, { read: true })))).toEqual({ status: "success", provider: provider.pubkey });
    const lines = (await readAll(await jobs.open(`${id}/feedback`, { read: true }))).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((e) => e.tags.find((t: string[]) => t[0] === "status")[1])).toContain("processing");
  });

  it("answers bad requests with EINVAL on the reply, and wrong opens with the right errno", async () => {
    const { jobs } = service();
    for (const bad of ["not json", "[]", JSON.stringify({ kind: 1, input: "x" }), JSON.stringify({ kind: 5050 }), JSON.stringify({ kind: 5050, input: [{ data: "x", type: "sound" }] }), JSON.stringify({ kind: 5050, input: "x", encrypted: true })]) {
      const h = await jobs.open("new", { read: true, write: true });
      await h.write(enc(bad));
      expect({ bad, code: await fails(Promise.resolve().then(() => h.read(100))) }).toEqual({ bad, code: "EINVAL" });
    }
    const fresh = await jobs.open("new", { read: true, write: true });
    expect(await fails(Promise.resolve().then(() => fresh.read(10)))).toBe("EINVAL"); // nothing written
    expect(await fails(Promise.resolve().then(() => jobs.open("ab".repeat(32) + "/result", { read: true })))).toBe("ENOENT");
    const id = await hire(jobs, { kind: 5050, input: "x" });
    expect(await fails(Promise.resolve().then(() => jobs.open(`${id}/status`, { write: true })))).toBe("EACCES");
    expect(await fails(Promise.resolve().then(() => jobs.mkdir("mine")))).toBe("EACCES");
  });

  it("a provider's error is EIO on ID/result, no answer by the job's limit is ETIMEDOUT, a cancel is ECANCELED", async () => {
    const { jobs, events } = service({ timeoutMs: 2000 });
    const broken = await hire(jobs, { kind: 5051, input: "x" }); // echo writes no result.json
    expect(await fails(Promise.resolve(jobs.open(`${broken}/result`, { read: true })).then((h) => h.read(100)))).toBe("EIO");
    expect(events).toContainEqual(expect.objectContaining({ event: "job-failed", id: broken, code: "EIO" }));
    const ignored = await hire(jobs, { kind: 5999, input: "nobody serves this" });
    expect(await fails(Promise.resolve(jobs.open(`${ignored}/result`, { read: true })).then((h) => h.read(100)))).toBe("ETIMEDOUT");
    const cancelled = await hire(jobs, { kind: 5998, input: "never mind" });
    const c = await jobs.open(`${cancelled}/cancel`, { write: true });
    await c.write(enc("cancel"));
    expect(await fails(Promise.resolve(jobs.open(`${cancelled}/result`, { read: true })).then((h) => h.read(100)))).toBe("ECANCELED");
    expect(JSON.parse(await readAll(await jobs.open(`${cancelled}/status`, { read: true })))).toEqual({ status: "cancelled" });
  });

  it("a WASI agent hires another agent with file operations only", async () => {
    const { jobs } = service();
    const task = new TaskService({ id: "x", kind: 5200, input: [{ data: "hire someone to shout this", type: "text" }], params: { kind: "5050", op: "upper" } });
    const ns = new Namespace().mount("/task", task).mount("/workspace", new MemService()).mount("/logs", new LogsService()).mount("/cap/nostr/jobs", jobs);
    let stderr = "";
    const st = await spawn(await agent("hire"), { namespace: ns, limits: { wallTimeMs: 30_000 }, onStderr: (b) => (stderr += dec(b)) });
    expect({ code: st.code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(task.result()).toEqual({ content: "HIRE SOMEONE TO SHOUT THIS" });
  });

  it("the orchestrator demo splits a text, hires word counters for the parts in parallel, and adds up", async () => {
    const { jobs } = service();
    const run = async (params: Record<string, string>) => {
      const task = new TaskService({ id: "y", kind: 5201, input: [{ data: "one two three four five six seven eight nine", type: "text" }], params });
      const ns = new Namespace().mount("/task", task).mount("/workspace", new MemService()).mount("/logs", new LogsService()).mount("/cap/nostr/jobs", jobs);
      let stderr = "";
      const st = await spawn(await agent("orchestrate"), { namespace: ns, limits: { wallTimeMs: 30_000 }, onStderr: (b) => (stderr += dec(b)) });
      return { code: st.code, stderr, result: st.code === 0 ? (task.result() as { content: string; parts: number[]; jobs: string[] }) : null };
    };
    const ok = await run({ parts: "3", kind: "5050" });
    expect(ok.stderr).toBe("");
    expect(ok.result).toMatchObject({ content: "9 words", parts: [3, 3, 3] });
    expect(new Set(ok.result!.jobs).size).toBe(3);
    // Each part was a real job on the relay, answered by the provider.
    const watcher = newPeer(relay.url);
    peers.push(watcher);
    const answers = await watcher.query({ kinds: [6050], "#e": ok.result!.jobs });
    expect(answers.map((e) => e.content).sort()).toEqual(["3 words", "3 words", "3 words"]);
    const broken = await run({ parts: "2", kind: "5051" });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/orchestrate: job [0-9a-f]{64}: .*EIO/);
  });

  it("served: a customer asks the orchestrator provider, which hires the word-count provider through the relay", async () => {
    const boss = new Provider({ relays: [relay.url], secretKey: generateSecretKey(), programs: new Map([[5201, await agent("orchestrate")]]), hire: { timeoutMs: 15_000 } });
    await boss.start();
    try {
      const c = newPeer(relay.url);
      peers.push(c);
      const job = await submitJob(c, { kind: 5201, inputs: [{ data: "a b c d e f g h i j k", type: "text" }], params: { parts: "4", kind: "5050" } }, { timeoutMs: 30_000 });
      const r = await job.result;
      expect(r.content).toBe("11 words");
      expect(r.event.pubkey).toBe(boss.pubkey);
      // The four hired jobs were requested by the orchestrator provider's key and answered by the counter.
      const hired = await c.query({ kinds: [5050], authors: [boss.pubkey] });
      expect(hired).toHaveLength(4);
      const answers = await c.query({ kinds: [6050], "#e": hired.map((e) => e.id) });
      expect(answers.every((e) => e.pubkey === provider.pubkey)).toBe(true);
      expect(answers).toHaveLength(4);
    } finally {
      boss.stop();
    }
  });
});
