// Planning as a NIP-90 job (kind 5060) through the provider, against the real local relay with
// nostr-tools customers: the package back, the summary as JSON, a killed idea's parked record,
// progress as feedback, and bad requests as `error` feedback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSecretKey } from "nostr-tools/pure";
import { OfflineProvider } from "../../../services/cap/llm-offline.ts";
import { providerFrom } from "../../../services/cap/llm-provider.ts";
import { startOpenAiStub, type OpenAiStub } from "../../../services/cap/openai-stub.ts";
import { PHASES } from "../../planning/phases.ts";
import { Provider } from "../serve.ts";
import { agent, collect, newPeer, sleep, startRelay, status, type TestRelay } from "../testing.ts";
import { PLAN_KIND, planJob } from "./job.ts";

let relay: TestRelay;
let provider: Provider;
let stub: OpenAiStub;

beforeAll(async () => {
  relay = await startRelay();
  stub = await startOpenAiStub();
  // The scripted model kills every idea at the kill test and accepts every review.
  stub.answer = (messages) => {
    const system = messages.find((m) => m.role === "system")?.content ?? "";
    if (system.includes("reviewer")) return "REVIEW: ACCEPT\nSCORE: 8\n";
    return /^You are the kill-test phase/.test(system) ? "VERDICT: KILL\nREASON: nobody wants bread from the sky\nREVISIT: 18\n" : "## Notes\nFine.\n";
  };
  provider = new Provider({
    relays: [relay.url], secretKey: generateSecretKey(), programs: new Map(), concurrency: 2,
    handlers: new Map([[PLAN_KIND, planJob({
      programs: { phase: await agent("phase"), reviewer: await agent("reviewer") },
      llms: { offline: () => new OfflineProvider(), scripted: () => providerFrom(`openai:${stub.url}#stub`) },
      maxBudget: 200_000,
    })]]),
  });
  await provider.start();
}, 120_000);
afterAll(async () => {
  provider?.stop();
  await stub?.close();
  await relay?.stop();
});

async function ask(tags: string[][]) {
  const c = newPeer(relay.url);
  const req = c.sign({ kind: PLAN_KIND, tags, content: "" });
  const evs = collect(c, { "#e": [req.id] }, (es) => es.some((e) => e.kind === PLAN_KIND + 1000 || status(e) === "error"), 60_000);
  await sleep(50);
  await c.publish(req);
  const got = await evs;
  c.close();
  return { events: got, result: got.find((e) => e.kind === PLAN_KIND + 1000), error: got.find((e) => status(e) === "error") };
}

describe("planning as a NIP-90 job (kind 5060)", () => {
  it("announces kind 5060 and answers an idea with the package, progress as processing feedback", async () => {
    const watcher = newPeer(relay.url);
    const ann = await watcher.query({ kinds: [31990], authors: [provider.pubkey] });
    watcher.close();
    expect(ann[0]!.tags).toContainEqual(["k", String(PLAN_KIND)]);
    const { result, events } = await ask([["i", "A bakery that delivers bread by drone", "text"], ["param", "llm", "offline"], ["output", "text/markdown"]]);
    expect(result!.content).toMatch(/^# Plan: A bakery that delivers bread by drone\n/);
    for (const p of PHASES) expect(result!.content).toContain(`[${p.name}](`);
    expect(result!.tags).toContainEqual(["status", "completed"]);
    const progress = events.filter((e) => status(e) === "processing").map((e) => e.content);
    expect(progress.some((l) => /^06\/17 kill-test iter 1: verdict GO/.test(l))).toBe(true);
  }, 90_000);

  it("answers the summary as JSON when asked, and a killed idea's parked record with a killed status", async () => {
    const { result } = await ask([["i", "Bread by bike", "text"], ["output", "application/json"]]);
    expect(JSON.parse(result!.content)).toMatchObject({ idea: "Bread by bike", status: "completed", verdict: "GO", phases: expect.any(Array) });
    const killed = await ask([["i", "Bread from the sky", "text"], ["param", "llm", "scripted"]]);
    expect(killed.result!.tags).toContainEqual(["status", "killed"]);
    expect(JSON.parse(killed.result!.content)).toMatchObject({ idea: "Bread from the sky", phase: "kill-test", reason: "nobody wants bread from the sky", revisitMonths: 18 });
  }, 90_000);

  it("refuses bad requests with error feedback: no idea, a model not offered, a bad param, a budget that runs out", async () => {
    const cases: Array<[string[][], RegExp]> = [
      [[["i", "   ", "text"]], /idea is empty/],
      [[["i", "x".repeat(4001), "text"]], /at most 4000/],
      [[["i", "Bread", "text"], ["param", "llm", "openai:http://10.0.0.1/v1"]], /not offered here \(offline, scripted\)/],
      [[["i", "Bread", "text"], ["param", "review-iterations", "0"]], /review-iterations takes a whole number from 1 to 10/],
      [[["i", "Bread", "text"], ["param", "budget", "300000"]], /budget takes a whole number from 1 to 200000/],
      [[["i", "Bread", "text"], ["param", "budget", "300"]], /the run paused: .*token budget is spent \(\d+ tokens spent\)/],
    ];
    const answers = await Promise.all(cases.map(([tags]) => ask(tags)));
    answers.forEach((a, i) => {
      expect(a.result).toBeUndefined();
      expect(a.error!.content).toMatch(cases[i]![1]);
    });
  }, 90_000);
});
