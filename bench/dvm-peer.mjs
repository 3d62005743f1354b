// The dvm bench's peer: a NIP-90 provider written by hand with nostr-tools, in plain JavaScript,
// no sandbox. It answers the same job as agents/src/jobcount.ts (op count: "<n> words", op upper)
// with the same conversation as `oanix serve` (processing feedback, then the result with request,
// e, p and i tags).
//   node bench/dvm-peer.mjs RELAY_URL KIND
// Prints "READY <pubkey>" once subscribed.
import { SimplePool } from "nostr-tools/pool";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";

const [relay, kindArg] = process.argv.slice(2);
const kind = Number(kindArg);
const sk = generateSecretKey();
const me = getPublicKey(sk);
const pool = new SimplePool();
const seen = new Set();

const words = (s) => s.split(/[ \t\r\n]+/).filter(Boolean).length;

function answer(req) {
  if (seen.has(req.id)) return;
  seen.add(req.id);
  const to = req.tags.filter((t) => t[0] === "p").map((t) => t[1]);
  if (to.length && !to.includes(me)) return;
  const inputs = req.tags.filter((t) => t[0] === "i");
  const base = [["e", req.id, relay], ["p", req.pubkey]];
  const now = Math.floor(Date.now() / 1000);
  if (!inputs.length) {
    pool.publish([relay], finalizeEvent({ kind: 7000, created_at: now, tags: [["status", "error", "no input"], ...base], content: "no input" }, sk));
    return;
  }
  pool.publish([relay], finalizeEvent({ kind: 7000, created_at: now, tags: [["status", "processing"], ...base], content: "" }, sk));
  const text = inputs.map((t) => t[1]).join("\n");
  const op = req.tags.find((t) => t[0] === "param" && t[1] === "op")?.[2] ?? "count";
  const content = op === "upper" ? text.replace(/[a-z]/g, (c) => c.toUpperCase()) : `${words(text)} words`;
  const result = finalizeEvent({ kind: kind + 1000, created_at: now, tags: [["request", JSON.stringify(req)], ...base, ...inputs], content }, sk);
  pool.publish([relay], result);
}

pool.subscribeMany([relay], { kinds: [kind], since: Math.floor(Date.now() / 1000) }, {
  onevent: answer,
  oneose: () => console.log(`READY ${me}`),
});
