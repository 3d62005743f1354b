// Event id and BIP-340 signature verification.
//
// Two verifiers run in workerd:
//  - "wasm": libsecp256k1 compiled to WebAssembly (the `secp256k1.wasm` shipped by the nostr-wasm
//    package, a dependency of nostr-tools). workerd forbids compiling bytes at run time, so the module
//    is imported statically (wrangler's CompiledWasm rule) and instantiated synchronously here with
//    our own small glue over its C ABI.
//  - "noble": @noble/curves schnorr (pure JS; what nostr-tools' verifyEvent uses).
// The wasm one is several times faster (see relay/README.md for measured numbers) and is the default;
// noble is the fallback if the wasm module cannot be instantiated.
import { schnorr } from "@noble/curves/secp256k1.js";
import secp256k1Module from "../node_modules/nostr-wasm/public/out/secp256k1.wasm";
import { eventHash, fromHex, type NostrEvent } from "./event.ts";

export type VerifyResult = "ok" | "bad-id" | "bad-sig";

export interface Verifier {
  name: string;
  /** Checks the id (sha256 of the NIP-01 serialisation) and then the signature. */
  verify(e: NostrEvent): VerifyResult;
}

function idMatches(e: NostrEvent, hash: Uint8Array): boolean {
  const want = fromHex(e.id);
  for (let i = 0; i < 32; i++) if (want[i] !== hash[i]) return false;
  return true;
}

export function nobleVerifier(): Verifier {
  return {
    name: "noble",
    verify(e) {
      const hash = eventHash(e);
      if (!idMatches(e, hash)) return "bad-id";
      try {
        return schnorr.verify(fromHex(e.sig), hash, fromHex(e.pubkey)) ? "ok" : "bad-sig";
      } catch {
        return "bad-sig";
      }
    },
  };
}

// Export names of the emscripten build (minified by its toolchain) and the C functions they are.
interface SecpExports {
  g: WebAssembly.Memory; // memory
  h: () => void; // runtime init
  i: (n: number) => number; // malloc
  o: (flags: number) => number; // secp256k1_context_create
  p: (ctx: number, xonlyOut: number, in32: number) => number; // secp256k1_xonly_pubkey_parse
  u: (ctx: number, sig64: number, msg: number, msglen: number, xonly: number) => number; // secp256k1_schnorrsig_verify
}

const CONTEXT_VERIFY = 0x101;
const KEY_CACHE_SIZE = 4096;

export function wasmVerifier(): Verifier {
  let heap: Uint8Array | undefined;
  let exp: SecpExports | undefined;
  const imports = {
    a: {
      a: () => {
        throw new Error("secp256k1 aborted");
      },
      b: () => 0, // fd_write: the library writes nothing on the verify path
      c: () => 70, // fd_seek: unsupported
      d: () => {
        throw new Error("secp256k1 out of memory");
      },
      e: () => 52, // fd_close: unsupported
      f: (dst: number, src: number, n: number) => heap!.copyWithin(dst, src, src + n),
    },
  };
  const instance = new WebAssembly.Instance(secp256k1Module, imports);
  exp = instance.exports as unknown as SecpExports;
  heap = new Uint8Array(exp.g.buffer);
  exp.h();
  const ctx = exp.o(CONTEXT_VERIFY);
  const pSig = exp.i(64);
  const pMsg = exp.i(32);
  const pPub = exp.i(32);
  const pXonly = exp.i(64);
  const e2 = exp;
  const keyCache = new Map<string, Uint8Array>();
  return {
    name: "wasm",
    verify(e) {
      const hash = eventHash(e);
      if (!idMatches(e, hash)) return "bad-id";
      const h = heap!.buffer === e2.g.buffer ? heap! : (heap = new Uint8Array(e2.g.buffer));
      fromHex(e.sig, h.subarray(pSig, pSig + 64));
      h.set(hash, pMsg);
      // Parsing an x-only key costs a square root; authors repeat, so parsed keys are cached.
      let parsed = keyCache.get(e.pubkey);
      if (parsed === undefined) {
        fromHex(e.pubkey, h.subarray(pPub, pPub + 32));
        if (e2.p(ctx, pXonly, pPub) !== 1) return "bad-sig";
        parsed = h.slice(pXonly, pXonly + 64);
        if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!);
        keyCache.set(e.pubkey, parsed);
      } else {
        h.set(parsed, pXonly);
      }
      return e2.u(ctx, pSig, pMsg, 32, pXonly) === 1 ? "ok" : "bad-sig";
    },
  };
}

let chosen: Verifier | undefined;

/** The fastest verifier available in this runtime (wasm, else noble). */
export function defaultVerifier(): Verifier {
  if (chosen) return chosen;
  try {
    chosen = wasmVerifier();
  } catch (err) {
    console.warn("relay: wasm verifier unavailable, using @noble/curves:", err);
    chosen = nobleVerifier();
  }
  return chosen;
}
