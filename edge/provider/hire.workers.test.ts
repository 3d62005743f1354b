// Agents hiring agents with no machine on: an agent served at the edge (orchestrate, granted
// nostr) hires the edge's word-count provider through /cap/nostr/jobs, with file operations only,
// and answers its own customer with the combined count. Real relay, real Runners.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { call, json } from "../testing.ts";
import { listJobs } from "../d1.ts";
import { addProvider, ask, kindsFrom, query } from "./testing.ts";

kindsFrom(5850); // apart from the other provider suites' kinds: the relay is one

describe("edge provider: an edge agent hires edge agents", () => {
  it("orchestrate splits the text, hires the counting provider for each part, and answers the total", async () => {
    const count = await addProvider();
    const boss = await addProvider({ program: "orchestrate", caps: { nostr: true }, timeoutMs: 25_000 }, { nostr: true });
    const text = "one two three four five six seven eight nine ten eleven";
    const { result, error, relay } = await ask(boss.cfg.kind, [["i", text, "text"], ["param", "parts", "3"], ["param", "kind", String(count.cfg.kind)]], boss.pubkey, { ms: 28_000 });
    relay.close();
    expect(error?.content).toBeUndefined();
    expect(result?.content).toBe("11 words");
    // Three jobs were asked for, each signed by the orchestrator's workspace identity, each answered by the counter.
    const identity = (await json(call(boss.owner, "GET", `/w/${boss.ws}/caps`))).identity.pubkey as string;
    const hired = await query({ kinds: [count.cfg.kind], authors: [identity] });
    expect(hired).toHaveLength(3);
    const answers = await query({ kinds: [count.cfg.kind + 1000], authors: [count.pubkey], "#e": hired.map((e) => e.id) });
    expect(answers.map((e) => e.content).sort()).toEqual(["3 words", "4 words", "4 words"]);
    expect((await listJobs(env.DB, count.ws)).filter((j) => j.kind === `nip90:${count.cfg.kind}`)).toHaveLength(3);
  });
});
