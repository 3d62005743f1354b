// Both verifiers (libsecp256k1 in wasm, @noble/curves) accept exactly the valid events.
import { describe, expect, it } from "vitest";
import { finalizeEvent, generateSecretKey } from "nostr-tools/pure";
import { defaultVerifier, nobleVerifier, wasmVerifier, type Verifier } from "./verify.ts";
import { eventHash, toHex, type NostrEvent } from "./event.ts";

const sign = (sk: Uint8Array, content: string, kind = 1) =>
  finalizeEvent({ kind, created_at: 1_760_000_000, tags: [["t", "x"], ["e", "a".repeat(64)]], content }, sk) as NostrEvent;

function flipHex(hex: string, at: number): string {
  const c = hex[at]!;
  return hex.slice(0, at) + (c === "0" ? "1" : "0") + hex.slice(at + 1);
}

describe("verifiers", () => {
  const verifiers: Verifier[] = [wasmVerifier(), nobleVerifier()];

  it("the default is the wasm verifier", () => {
    expect(defaultVerifier().name).toBe("wasm");
  });

  for (const v of verifiers) {
    it(`${v.name}: accepts valid events and refuses every corruption`, () => {
      const keys = [generateSecretKey(), generateSecretKey(), generateSecretKey()];
      for (let i = 0; i < 30; i++) {
        const sk = keys[i % keys.length]!;
        const e = sign(sk, `message ${i} "quoted" \n ünï 🦩`);
        expect(v.verify(e)).toBe("ok");
        expect(v.verify({ ...e, content: e.content + " " })).toBe("bad-id");
        expect(v.verify({ ...e, tags: [...e.tags, ["p", "b".repeat(64)]] })).toBe("bad-id");
        expect(v.verify({ ...e, created_at: e.created_at + 1 })).toBe("bad-id");
        expect(v.verify({ ...e, kind: 7 })).toBe("bad-id");
        expect(v.verify({ ...e, sig: flipHex(e.sig, i % 128) })).toBe("bad-sig");
        // Another author's valid signature over a different id: wrong for this event.
        const other = sign(keys[(i + 1) % keys.length]!, `message ${i}`);
        expect(v.verify({ ...e, sig: other.sig })).toBe("bad-sig");
      }
    });

    it(`${v.name}: refuses a pubkey that is not on the curve, even with a correct id`, () => {
      const e = sign(generateSecretKey(), "x");
      // Changing the pubkey changes the id: bad-id comes first.
      expect(v.verify({ ...e, pubkey: "f".repeat(64) })).toBe("bad-id");
      // x = 2^256 - 1 is not a field element: with a correct id, the signature check refuses it.
      const off = { ...e, pubkey: "f".repeat(64) };
      off.id = toHex(eventHash(off));
      expect(v.verify(off)).toBe("bad-sig");
    });
  }
});
