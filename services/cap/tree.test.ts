// The capability tree itself: fixed files, public identity files, nothing created or removed.
import { bytesToHex } from "@noble/hashes/utils.js";
import { generateSecretKey } from "nostr-tools/pure";
import { describe, expect, it } from "vitest";
import { grantCaps } from "./grant.ts";
import { capNamespace, failsWith } from "./testing.ts";

describe("capability trees", () => {
  it("a capability not granted does not exist; a granted one lists its files", async () => {
    const { ns } = capNamespace();
    grantCaps(ns, { llm: { provider: "offline" } });
    expect((await ns.readdir("/cap")).map((e) => e.name)).toEqual(["llm"]);
    expect((await ns.readdir("/cap/llm")).map((e) => e.name).sort()).toEqual(["clone", "complete", "models", "usage"]);
    expect(await failsWith(async () => ns.open("/cap/http/fetch", { read: true, write: true }))).toBe("ENOENT");
  });

  it("nothing can be created, removed or renamed; public files are marked public, request/reply files transactional", async () => {
    const { ns } = capNamespace();
    grantCaps(ns, { nostr: { secretKey: bytesToHex(generateSecretKey()), relays: [] } });
    expect(await failsWith(async () => ns.open("/cap/nostr/key", { write: true, create: true }))).toBe("ENOENT");
    expect(await failsWith(async () => ns.mkdir("/cap/nostr/x"))).toBe("EACCES");
    expect(await failsWith(async () => ns.remove("/cap/nostr/sign"))).toBe("EACCES");
    expect(await failsWith(async () => ns.rename("/cap/nostr/sign", "/cap/nostr/sig"))).toBe("EACCES");
    const pub = await ns.open("/cap/nostr/pubkey", { read: true });
    expect(pub.public).toBe(true);
    const sign = await ns.open("/cap/nostr/sign", { read: true, write: true });
    expect(sign.transactional).toBe(true);
    expect(sign.public).toBeFalsy();
  });
});
