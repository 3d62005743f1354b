// The bench peer: @nostr-relay/core with its SQLite event repository, on a loopback WebSocket.
// Runs under the system Node (/usr/bin/node, v20) because better-sqlite3 is built for it. The
// peer is an optional dependency: where its native addon cannot be built, npm ci goes on without it.
//   /usr/bin/node bench/relay-peer.mjs <port> <sqlite file>
// Prints "READY <port>" when listening. A line "VERIFY <n>" on stdin makes it measure its own
// event verifier (@nostr-relay/common EventUtils.validate: sha256 id + @noble/curves schnorr) on n
// fresh events and print "VERIFY <verifications per second>". "LOAD <json file>" stores the events
// of the file straight into the repository (no verification: a bulk load for relay-search) and
// prints "LOAD <n>".
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { WebSocketServer } from "ws";
import { NostrRelay } from "@nostr-relay/core";
import { EventUtils } from "@nostr-relay/common";
import { EventRepositorySqlite } from "@nostr-relay/event-repository-sqlite";

const port = Number(process.argv[2] ?? 8790);
const file = process.argv[3] ?? ":memory:";
const repo = new EventRepositorySqlite(file);
await repo.init();
const relay = new NostrRelay(repo, { maxSubscriptionsPerClient: 1000 });
const wss = new WebSocketServer({ host: "127.0.0.1", port, maxPayload: 512 * 1024 });
wss.on("connection", (ws) => {
  relay.handleConnection(ws, "127.0.0.1");
  ws.on("message", async (data) => {
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      ws.send(JSON.stringify(["NOTICE", "invalid: bad JSON"]));
      return;
    }
    await relay.handleMessage(ws, msg);
  });
  ws.on("close", () => relay.handleDisconnect(ws));
});
wss.on("listening", () => console.log(`READY ${port}`));

let events = [];
createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === "EVENTS") {
    events = JSON.parse(Buffer.from(arg, "base64").toString("utf8"));
    console.log(`EVENTS ${events.length}`);
  } else if (cmd === "VERIFY") {
    for (const e of events.slice(0, 50)) if (EventUtils.validate(e)) throw new Error("peer verifier refused a valid event");
    const t0 = performance.now();
    for (const e of events) EventUtils.validate(e);
    const dt = (performance.now() - t0) / 1000;
    console.log(`VERIFY ${Math.round(events.length / dt)}`);
  } else if (cmd === "LOAD") {
    const list = JSON.parse(readFileSync(arg, "utf8"));
    (async () => {
      for (const e of list) await repo.upsert(e);
      console.log(`LOAD ${list.length}`);
    })();
  } else if (cmd === "EXIT") {
    process.exit(0);
  }
});
