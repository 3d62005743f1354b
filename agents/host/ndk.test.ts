// A customer written with NDK (its NDKDVMRequest), the client library DVM users already have,
// against `oanix serve`'s provider on the real local relay.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import NDK, { NDKDVMRequest, NDKEvent, NDKPrivateKeySigner, NDKUser } from "@nostr-dev-kit/ndk";
import { generateSecretKey } from "nostr-tools/pure";
import { bytesToHex } from "@noble/hashes/utils.js";
import { Provider } from "./serve.ts";
import { agent, startRelay, type TestRelay } from "./testing.ts";

let relay: TestRelay;
let provider: Provider;
let ndk: NDK;

beforeAll(async () => {
  relay = await startRelay();
  provider = new Provider({ relays: [relay.url], secretKey: generateSecretKey(), programs: new Map([[5050, await agent("jobcount")]]) });
  await provider.start();
  ndk = new NDK({ explicitRelayUrls: [relay.url], signer: new NDKPrivateKeySigner(bytesToHex(generateSecretKey())) });
  await ndk.connect(5000);
}, 120_000);
afterAll(async () => {
  provider?.stop();
  for (const r of ndk?.pool.relays.values() ?? []) r.disconnect();
  await relay?.stop();
});

/** Publishes the request and waits for its result (kind + 1000) through NDK. */
async function resultOf(req: NDKDVMRequest): Promise<{ result: NDKEvent; feedback: string[] }> {
  await req.sign();
  const feedback: string[] = [];
  const result = new Promise<NDKEvent>((resolve) => {
    const sub = ndk.subscribe({ kinds: [7000, req.kind! + 1000], "#e": [req.id] }, { closeOnEose: false });
    sub.on("event", (e: NDKEvent) => {
      if (e.kind === 7000) feedback.push(e.tagValue("status") ?? "");
      else resolve(e);
    });
  });
  await new Promise((r) => setTimeout(r, 200));
  await req.publish();
  return { result: await result, feedback };
}

describe("an NDK customer", () => {
  it("NDKDVMRequest with an input and a param gets the agent's answer", async () => {
    const req = new NDKDVMRequest(ndk);
    req.kind = 5050;
    req.addInput("the quick brown fox", "text");
    req.addParam("op", "upper");
    const { result, feedback } = await resultOf(req);
    expect(result.content).toBe("THE QUICK BROWN FOX");
    expect(result.pubkey).toBe(provider.pubkey);
    expect(result.tagValue("e")).toBe(req.id);
    expect(feedback).toContain("processing");
  });

  it("an NDK-encrypted request (NIP-04, as NDK sends it) is answered encrypted", async () => {
    const req = new NDKDVMRequest(ndk);
    req.kind = 5050;
    req.addInput("four words in secret", "text");
    const dvm = new NDKUser({ pubkey: provider.pubkey });
    await req.encryption(dvm);
    expect(req.tags.some((t) => t[0] === "i")).toBe(false);
    const { result } = await resultOf(req);
    expect(result.tags.some((t) => t[0] === "encrypted")).toBe(true);
    const plain = await ndk.signer!.decrypt(new NDKUser({ pubkey: provider.pubkey }), result.content, result.content.includes("?iv=") ? "nip04" : "nip44");
    expect(plain).toBe("4 words");
  });
});
