// Real local servers for the workerd tests (a vitest globalSetup of the workers project; the
// tests inside workerd reach them over the loopback, which the test edge allows through
// ALLOW_PRIVATE_HOSTS): a webhook receiver and an OpenAI-compatible model.
//
// Receiver, at http://127.0.0.1:PORT:
//   POST /hook/NAME[?fail=N]   records the delivery (headers and body); the first N to NAME answer 500
//   GET  /hooks/NAME           the deliveries recorded for NAME, as JSON
// Model: `llmUrl` (services/cap/openai-stub.ts), scripted as a planning model (sections, ACCEPT
// with SCORE 8, VERDICT GO; for an idea naming "pivot-then-kill" the first kill test PIVOTs to
// "bread subscriptions by bike" and the second KILLs), and told from the tests:
//   POST /llm/delay?ms=N       wait N ms before each answer     GET /llm/requests   every request
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { PHASES } from "../../agents/planning/phases.ts";
import { startOpenAiStub } from "../../services/cap/openai-stub.ts";

declare module "vitest" {
  export interface ProvidedContext {
    testServer: string;
    llmUrl: string;
  }
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stub = await startOpenAiStub();
  stub.answer = (messages) => {
    const system = messages.find((m) => m.role === "system")?.content ?? "";
    if (system.includes("reviewer")) return "REVIEW: ACCEPT\nSCORE: 8\nClear and complete.";
    const phase = /^You are the (\S+) phase/.exec(system)?.[1] ?? "";
    const all = JSON.stringify(messages);
    if (phase === "kill-test" && (all.includes("pivot-then-kill") || all.includes("bread subscriptions by bike"))) {
      return all.includes("bread subscriptions by bike")
        ? "## Verdict\nVERDICT: KILL\nREASON: margins too thin for a local bakery\nREVISIT: 12\n"
        : "## Verdict\nVERDICT: PIVOT\nREFINED: bread subscriptions by bike\n";
    }
    const def = PHASES.find((p) => p.name === phase);
    return (def?.sections ?? ["Notes"]).map((s) => `## ${s}\nAbout ${s.toLowerCase()}.\n`).join("\n") + (phase === "kill-test" ? "VERDICT: GO\n" : "");
  };
  const hooks = new Map<string, Array<{ headers: Record<string, string>; body: string; status: number }>>();
  const server = createServer(async (req, res) => {
    const u = new URL(req.url!, "http://x");
    const json = (v: unknown) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(v));
    };
    if (req.method === "POST" && u.pathname.startsWith("/hook/")) {
      const name = u.pathname.slice("/hook/".length);
      const seen = hooks.get(name) ?? [];
      hooks.set(name, seen);
      const status = seen.length < Number(u.searchParams.get("fail") ?? 0) ? 500 : 200;
      seen.push({ headers: req.headers as Record<string, string>, body: await bodyOf(req), status });
      res.statusCode = status;
      return void res.end(status === 200 ? "ok" : "try again");
    }
    if (u.pathname.startsWith("/hooks/")) return json(hooks.get(u.pathname.slice("/hooks/".length)) ?? []);
    if (u.pathname === "/llm/delay") {
      stub.delayMs = Number(u.searchParams.get("ms") ?? 0);
      return json({ delayMs: stub.delayMs });
    }
    if (u.pathname === "/llm/requests") return json(stub.requests);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  project.provide("testServer", `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  project.provide("llmUrl", stub.url);
  return async () => {
    server.close();
    await stub.close();
  };
}
