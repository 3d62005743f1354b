// grantCaps(namespace, grants): mounts /cap/<name> for each capability granted, and nothing for the
// others (a capability not granted does not exist). For hosts embedding the runtime: the CLI, the
// browser library, and (later) the edge runner.
//
//   const caps = grantCaps(ns, {
//     http: { hosts: "example.com,*.wikipedia.org" },
//     llm: { provider: "offline", budget: { tokens: 10_000 } },
//   }, { secrets: { GH: { value: token, hosts: ["api.github.com"] } } });
//   …spawn…
//   caps.close();
import { isPromise, type FileHandle, type FileService } from "../../runtime/types.ts";
import { Budget, type BudgetLimits, type Namespace } from "../../runtime/namespace.ts";
import type { CapContext, EventSink } from "./events.ts";
import { parseHosts, type HostGrant, type Resolver } from "./hosts.ts";
import { HttpCap } from "./http.ts";
import { LlmCap } from "./llm.ts";
import { providerFrom, type LlmProvider } from "./llm-provider.ts";
import { NostrCap } from "./nostr.ts";
import type { LinkFactory } from "./nostr-relays.ts";
import { Secrets, type Secret } from "./secrets.ts";
import { WsCap, type WsConnect } from "./ws.ts";

export interface CapGrants {
  http?: { hosts: string | string[]; timeoutMs?: number; maxReply?: number; budget?: BudgetLimits };
  ws?: { hosts: string | string[]; timeoutMs?: number; budget?: BudgetLimits };
  /** The agent's identity (hex secret key) and its relays. */
  nostr?: { secretKey: string; relays: string[]; links?: LinkFactory[]; timeoutMs?: number; budget?: BudgetLimits };
  /** "offline", "openai:BASE_URL[#MODEL]", or a provider object (workers-ai at the edge). */
  llm?: { provider: string | LlmProvider; apiKey?: string; timeoutMs?: number; budget?: BudgetLimits };
}

export interface GrantOptions {
  /** Secrets named in headers as "$secret:NAME", each bound to hosts. */
  secrets?: Secrets | Record<string, Secret>;
  /** DNS resolution for the host check (Node: services/cap/dns-node.ts); absent at the edge. */
  resolve?: Resolver;
  /** Where cap.error lines go; by default appended to the namespace's /logs/events.jsonl. */
  events?: EventSink;
  fetch?: typeof fetch;
  /** A fetch made for one grant (Node: fetch-node.ts's pinnedFetch, which checks the address it connects to). */
  fetchFor?: (grant: HostGrant) => typeof fetch;
  wsConnect?: WsConnect;
  /** A WebSocket connect made for one grant (Node: ws-node.ts's pinnedWsConnect, which checks the address it connects to). */
  wsConnectFor?: (grant: HostGrant) => WsConnect;
}

export interface Granted {
  /** The budgets in force, per capability (for `usage` and for the host's report). */
  budgets: Record<string, Budget>;
  /** Closes what the capabilities hold open (relay sockets). */
  close(): void;
}

export function grantCaps(ns: Namespace, grants: CapGrants, o: GrantOptions = {}): Granted {
  const secrets = o.secrets instanceof Secrets ? o.secrets : new Secrets(o.secrets ?? {});
  const ctx: CapContext = { events: o.events ?? namespaceEvents(ns), scrub: secrets.scrub };
  const budgets: Record<string, Budget> = {};
  const budget = (name: string, limits?: BudgetLimits): Budget | undefined => (limits ? (budgets[name] = new Budget(limits)) : undefined);
  const closers: (() => void)[] = [];
  const mount = (name: string, service: FileService): void => void ns.mount(`/cap/${name}`, service);

  if (grants.http) {
    const g = grants.http;
    const grant: HostGrant = { patterns: parseHosts(g.hosts), resolve: o.resolve };
    mount("http", new HttpCap({
      grant, secrets, timeoutMs: g.timeoutMs, maxReply: g.maxReply,
      budget: budget("http", g.budget), fetch: o.fetchFor?.(grant) ?? o.fetch, ctx,
    }).service());
  }
  if (grants.ws) {
    const g = grants.ws;
    const grant: HostGrant = { patterns: parseHosts(g.hosts), resolve: o.resolve };
    const cap = new WsCap({ grant, secrets, timeoutMs: g.timeoutMs, budget: budget("ws", g.budget), connect: o.wsConnectFor?.(grant) ?? o.wsConnect, ctx });
    mount("ws", cap.service());
    closers.push(() => cap.close());
  }
  if (grants.nostr) {
    const g = grants.nostr;
    const cap = new NostrCap({ secretKey: g.secretKey, relays: g.relays, links: g.links, timeoutMs: g.timeoutMs, budget: budget("nostr", g.budget), ctx });
    // Read-write, not "sign": the key is held in the service and is never a file, so there is
    // nothing to hide, and sign-only would forbid the subscription clone files.
    mount("nostr", cap.service());
    closers.push(() => cap.close());
  }
  if (grants.llm) {
    const g = grants.llm;
    const provider = typeof g.provider === "string" ? providerFrom(g.provider, { apiKey: g.apiKey, fetch: o.fetch }) : g.provider;
    mount("llm", new LlmCap({ provider, budget: budget("llm", g.budget), timeoutMs: g.timeoutMs, ctx }).service());
  }
  return { budgets, close: () => closers.forEach((c) => c()) };
}

/** Appends each event as one line to /logs/events.jsonl in the namespace, if it has one. */
export function namespaceEvents(ns: FileService): EventSink {
  const enc = new TextEncoder();
  return (ev) => {
    const line = enc.encode(JSON.stringify(ev) + "\n");
    const write = (h: FileHandle): void => {
      const done = (): unknown => h.close();
      try {
        const w = h.write(line);
        if (isPromise(w)) void w.then(done, done);
        else done();
      } catch {
        done();
      }
    };
    try {
      const h = ns.open("/logs/events.jsonl", { write: true, append: true, create: true });
      if (isPromise(h)) h.then(write, () => {});
      else write(h);
    } catch {
      // No /logs: the errno still reaches the guest.
    }
  };
}
