// The negentropy protocol (negentropy.ts) against published vectors (negentropy.vectors.ts: the
// reference repository's Kotlin-port test data and a JavaScript/Kotlin interop transcript), plus
// randomized two-party syncs that must find exactly the symmetric difference.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Negentropy, NegentropyError, NegentropyStorage, fromHex, toHex, type ReconcileResult } from "./negentropy.ts";
import { VECTORS } from "./negentropy.vectors.ts";
import { nip77 } from "nostr-tools";

function storage(items: ReadonlyArray<readonly [number, string]>): NegentropyStorage {
  const s = new NegentropyStorage();
  for (const [t, id] of items) s.insert(t, id);
  return s.seal();
}
const hex = (b: Uint8Array | null) => (b === null ? null : toHex(b));
const bytes = (h: string) => fromHex(h)!;

/** Runs a whole sync in memory; returns the ids the client has/needs and the messages exchanged. */
function sync(client: NegentropyStorage, server: NegentropyStorage, frame = 0) {
  const c = new Negentropy(client, frame);
  const s = new Negentropy(server, frame);
  const have = new Set<string>();
  const need = new Set<string>();
  let msg: Uint8Array | null = c.initiate();
  let rounds = 0;
  while (msg) {
    if (frame) expect(msg.length).toBeLessThanOrEqual(frame);
    const answer = s.reconcile(msg).message!;
    if (frame) expect(answer.length).toBeLessThanOrEqual(frame);
    const r: ReconcileResult = c.reconcile(answer);
    r.have.forEach((x) => have.add(x));
    r.need.forEach((x) => need.add(x));
    msg = r.message;
    rounds++;
    if (rounds > 100) throw new Error("sync does not terminate");
  }
  return { have, need, rounds };
}

describe("negentropy: published vectors", () => {
  it("fingerprints: sha256(sum of ids mod 2^256 ‖ varint count), first 16 bytes", () => {
    for (const v of VECTORS.fingerprints) {
      const s = storage(v.items);
      expect(toHex(s.fingerprint(0, s.size))).toBe(v.expect);
    }
    // A sub-range uses the same prefix sums.
    const three = storage(VECTORS.fingerprints[2].items);
    expect(toHex(three.fingerprint(0, 2))).toBe(VECTORS.fingerprints[1].expect);
  });

  it("IdList exchange: the server lists its ids, the client learns have and need", () => {
    const v = VECTORS.clientServer;
    const client = new Negentropy(storage(v.client));
    const server = new Negentropy(storage(v.server));
    const reply = server.reconcile(client.initiate());
    expect(hex(reply.message)).toBe(v.serverReply);
    const r = client.reconcile(reply.message!);
    expect(r).toEqual({ message: null, have: v.have, need: v.need });
    const same = new Negentropy(storage(v.client));
    expect(hex(same.reconcile(new Negentropy(storage(v.client)).initiate()).message)).toBe(v.equalReply);
  });

  it("30 vs 30 records: initiate, answer, have/need in the reference order", () => {
    const v = VECTORS.twoRounds;
    const client = new Negentropy(storage(v.client));
    const server = new Negentropy(storage(v.server));
    const init = client.initiate();
    expect(toHex(init)).toBe(v.initiate);
    const reply = server.reconcile(init);
    expect(hex(reply.message)).toBe(v.serverReply);
    const r = client.reconcile(reply.message!);
    expect(r.message).toBeNull();
    expect(r.have).toEqual(v.have);
    expect(r.need).toEqual(v.need);
  });

  it("frame size limit 4096: fingerprints, splits and continuation are byte-identical over two rounds", () => {
    const v = VECTORS.frameLimits;
    const client = new Negentropy(storage(v.client), v.frameSizeLimit);
    const server = new Negentropy(storage(v.server), v.frameSizeLimit);
    const m0 = client.initiate();
    expect(toHex(m0)).toBe(v.messages[0]);
    const m1 = server.reconcile(m0).message!;
    expect(toHex(m1)).toBe(v.messages[1]);
    const r1 = client.reconcile(m1);
    expect(hex(r1.message)).toBe(v.messages[2]);
    expect(r1.have).toEqual(v.rounds[0]!.have);
    expect(r1.need).toEqual(v.rounds[0]!.need);
    const m3 = server.reconcile(r1.message!).message!;
    expect(toHex(m3)).toBe(v.messages[3]);
    const r2 = client.reconcile(m3);
    expect(r2.message).toBeNull();
    expect(r2.have).toEqual(v.rounds[1]!.have);
    expect(r2.need).toEqual(v.rounds[1]!.need);
  });

  it("JavaScript reference interop transcript: 25 shared records", () => {
    const v = VECTORS.lang1;
    const client = new Negentropy(storage(v.items));
    const server = new Negentropy(storage(v.items));
    const init = client.initiate();
    expect(toHex(init)).toBe(v.initiate);
    const reply = server.reconcile(init).message!;
    expect(toHex(reply)).toBe(v.serverReply);
    expect(client.reconcile(reply)).toEqual({ message: null, have: [], need: [] });
  });

  it("an unknown protocol version is answered with 0x61 (the reference's protoversion test)", () => {
    const server = new Negentropy(storage([[12345, "ee".repeat(32)]]));
    expect(hex(server.reconcile(bytes("62aabbccddeeff")).message)).toBe("61");
    expect(hex(server.reconcile(bytes("6100000200")).message)).toBe("6100000201" + "ee".repeat(32));
  });
});

describe("negentropy: frame size limit", () => {
  it("a server IdList that fills the frame is sent, followed by one fingerprint for the rest", () => {
    // Regression: the list used to be dropped whole when it crossed the limit, leaving only the
    // fingerprint (the reference keeps the ids that fit; found by differential fuzzing against it).
    const items: Array<[number, string]> = Array.from({ length: 200 }, (_, i) => [i, toHex(crypto.getRandomValues(new Uint8Array(32)))]);
    const server = new Negentropy(storage(items), 4096);
    const reply = server.reconcile(bytes("6100000200")).message!; // the client has nothing: empty IdList over everything
    expect(reply.length).toBeGreaterThan(3000);
    expect(reply.length).toBeLessThanOrEqual(4096);
    // Ids are added while 1 (version byte) + 32·k stays within 4096 − 200: k = 122.
    const k = 122;
    expect(reply[1]).toBe(1 + k); // upper bound: the first record left out (timestamp k, delta-encoded)…
    expect(reply[2]).toBe(32); // …with its whole id,
    expect(toHex(reply.subarray(3, 35))).toBe(items[k]![1]);
    expect(reply[35]).toBe(2); // then IdList mode
    expect(reply[36]).toBe(k); // of the ids that fit
    const tail = reply.subarray(37 + k * 32);
    expect(toHex(tail)).toBe("0000" + "01" + toHex(storage(items).fingerprint(k, 200)));
    const { need, rounds } = sync(storage([]), storage(items), 4096);
    expect([...need].sort()).toEqual(items.map(([, id]) => id).sort());
    expect(rounds).toBe(2);
  });
});

describe("negentropy: bad input", () => {
  const server = () => new Negentropy(storage([[1, "11".repeat(32)]]));
  it.each([
    ["empty", ""],
    ["not a version byte", "00"],
    ["truncated bound", "6180"],
    ["truncated fingerprint", "61000001aabb"],
    ["unknown mode", "61000003"],
    ["id prefix longer than 32", "610021"],
    ["IdList longer than the message", "610000028080800100"],
  ])("%s → NegentropyError", (_name, h) => {
    expect(() => server().reconcile(bytes(h))).toThrow(NegentropyError);
  });
  it("refuses unsealed storage, duplicates and a frame limit under 4096", () => {
    expect(() => new Negentropy(new NegentropyStorage())).toThrow(NegentropyError);
    const s = new NegentropyStorage();
    s.insert(1, "aa".repeat(32));
    s.insert(1, "aa".repeat(32));
    expect(() => s.seal()).toThrow(/duplicate/);
    expect(() => new Negentropy(storage([]), 1000)).toThrow(NegentropyError);
    expect(() => NegentropyStorage.fromSorted([2, 1], ["aa".repeat(32), "bb".repeat(32)])).toThrow(/sorted/);
  });
});

describe("negentropy: random sets", () => {
  const record = fc.tuple(fc.integer({ min: 0, max: 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 }));
  it("finds exactly the symmetric difference, with and without a frame limit", () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 600 }), fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 600 }), fc.boolean(), (recs, sides, limited) => {
        const seen = new Set<string>();
        const a: Array<[number, string]> = [];
        const b: Array<[number, string]> = [];
        recs.forEach(([t, id], i) => {
          const h = toHex(id);
          if (seen.has(h)) return;
          seen.add(h);
          const side = sides[i] ?? 2; // 0: client only, 1: server only, 2: both
          if (side !== 1) a.push([t, h]);
          if (side !== 0) b.push([t, h]);
        });
        const { have, need } = sync(storage(a), storage(b), limited ? 4096 : 0);
        const inA = new Set(a.map(([, h]) => h));
        const inB = new Set(b.map(([, h]) => h));
        expect([...have].sort()).toEqual([...inA].filter((h) => !inB.has(h)).sort());
        expect([...need].sort()).toEqual([...inB].filter((h) => !inA.has(h)).sort());
      }),
      { numRuns: 60 },
    );
  });

  it("as a client, says exactly what nostr-tools' independent port says, message by message", () => {
    const theirStorage = (items: Array<[number, string]>) => {
      const s = new nip77.NegentropyStorageVector();
      for (const [t, id] of items) s.insert(t, id);
      s.seal();
      return s;
    };
    fc.assert(
      fc.property(fc.array(record, { maxLength: 800 }), fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 800 }), fc.constantFrom(4096, 8192, 60_000), (recs, sides, frame) => {
        const seen = new Set<string>();
        const a: Array<[number, string]> = [];
        const b: Array<[number, string]> = [];
        recs.forEach(([t, id], i) => {
          const h = toHex(id);
          if (seen.has(h)) return;
          seen.add(h);
          const side = sides[i] ?? 2;
          if (side !== 1) a.push([t, h]);
          if (side !== 0) b.push([t, h]);
        });
        // nostr-tools' port is client-only: both clients get the same replies from our server and
        // must say the same things back, and end up with the same have/need.
        const server = new Negentropy(storage(b), frame);
        const ours = new Negentropy(storage(a), frame);
        const theirs = new nip77.Negentropy(theirStorage(a), frame);
        const have: string[] = [];
        const need: string[] = [];
        const theirHave: string[] = [];
        const theirNeed: string[] = [];
        let msg: string | null = toHex(ours.initiate());
        expect(theirs.initiate()).toBe(msg);
        for (let round = 0; msg !== null; round++) {
          if (round > 100) throw new Error("does not terminate");
          const reply = toHex(server.reconcile(bytes(msg)).message!);
          const r = ours.reconcile(bytes(reply));
          have.push(...r.have);
          need.push(...r.need);
          msg = hex(r.message);
          expect(theirs.reconcile(reply, (id) => theirHave.push(id), (id) => theirNeed.push(id))).toBe(msg);
        }
        expect(theirHave.sort()).toEqual(have.sort());
        expect(theirNeed.sort()).toEqual(need.sort());
      }),
      { numRuns: 40 },
    );
  });

  it("fromSorted builds the same storage as insert + seal", () => {
    const items: Array<[number, string]> = Array.from({ length: 200 }, (_, i) => [Math.floor(i / 3), toHex(crypto.getRandomValues(new Uint8Array(32)))]);
    const a = storage(items);
    const sorted = items.slice().sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : 1));
    const b = NegentropyStorage.fromSorted(sorted.map((x) => x[0]), sorted.map((x) => x[1]));
    expect(toHex(a.fingerprint(0, 200))).toBe(toHex(b.fingerprint(0, 200)));
    expect(toHex(a.fingerprint(17, 123))).toBe(toHex(b.fingerprint(17, 123)));
  });
});
