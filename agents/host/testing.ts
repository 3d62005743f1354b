// Test helpers for the marketplace suites: the real local relay (wrangler dev) on a free port with
// its own state, providers on it, and customers speaking plain nostr-tools.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretKey } from "nostr-tools/pure";
import { freePort } from "../../edge/dev/launch.ts";
import { startDev, type DevServer } from "../../relay/dev.ts";
import { loadProgram, type Program } from "../../runtime/modules.ts";
import { Peer, type Event, type Filter } from "./nostr.ts";

export const AGENTS = join(import.meta.dirname, "..", "build");

export async function agent(name: string): Promise<Program> {
  return loadProgram(readFileSync(join(AGENTS, `${name}.wasm`)));
}

export interface TestRelay {
  url: string;
  stop(): Promise<void>;
}

/** The project's relay under `wrangler dev`, fresh state; `vars` e.g. {RELAY_CONFIG: "..."}. */
export async function startRelay(vars?: Record<string, string>): Promise<TestRelay> {
  const dir = mkdtempSync(join(tmpdir(), "oanix-market-"));
  const dev: DevServer = await startDev({ port: await freePort(), persistTo: dir, ...(vars ? { vars } : {}), timeout: 90_000 });
  return {
    url: dev.relayUrl,
    async stop() {
      await dev.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const newPeer = (relay: string): Peer => new Peer([relay], generateSecretKey());

/** Collects every event matching `filter` until `until(events)` holds (or the timeout). */
export async function collect(peer: Peer, filter: Filter, until: (evs: Event[]) => boolean, timeoutMs = 20_000): Promise<Event[]> {
  const evs: Event[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await peer.subscribe(filter, (e) => {
    evs.push(e);
    if (until(evs)) done();
  });
  if (until(evs)) done();
  const timer = setTimeout(done, timeoutMs);
  await finished;
  clearTimeout(timer);
  sub.close();
  return evs;
}

export const status = (e: Event): string | undefined => e.tags.find((t) => t[0] === "status")?.[1];
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
