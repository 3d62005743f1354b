// Real local servers for the edge's capability tests (vitest globalSetup of the workers project):
// workerd reaches them by its own outbound fetch and WebSocket, as the edge reaches the Internet.
//   http  GET /page (an HTML page, no cache headers), /cached (Cache-Control: public, max-age=60),
//         /nostore (no-store), /big?bytes=N (N bytes, chunked), /headers (echoes the request's headers as JSON), /to?url=U (302 to U),
//         /hits?path=P (how many requests P had, query included), /seen?path=P (the headers of
//         P's last request), /openai-requests (what the
//         OpenAI-compatible stub received)
//   ws    an echo server on the same port (any path)
//   llm   the OpenAI-compatible stub (services/cap/openai-stub.ts)
// Tests read the addresses with inject("capServers") (typed in edge/types/cap-servers.d.ts).
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import type { WebSocketServer as WssType } from "ws";
import { startOpenAiStub } from "../../services/cap/openai-stub.ts";

export interface CapServers { http: string; ws: string; openai: string }

export default async function setup({ provide }: { provide: (key: "capServers", value: CapServers) => void }): Promise<() => Promise<void>> {
  const hits = new Map<string, number>();
  const seen = new Map<string, unknown>();
  const openai = await startOpenAiStub();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/hits") return void res.end(String(hits.get(url.searchParams.get("path") ?? "") ?? 0));
    if (url.pathname === "/seen") return void res.end(JSON.stringify(seen.get(url.searchParams.get("path") ?? "") ?? null));
    if (url.pathname === "/openai-requests") return void res.end(JSON.stringify(openai.requests));
    hits.set(req.url ?? "", (hits.get(req.url ?? "") ?? 0) + 1);
    seen.set(req.url ?? "", req.headers);
    const n = hits.get(req.url ?? "");
    if (url.pathname === "/page") {
      res.setHeader("content-type", "text/html; charset=utf-8");
      return void res.end("<html><body><h1>OANIX at the edge</h1><p>Agents see only files. Capabilities are mounts granted by the workspace owner.</p></body></html>");
    }
    if (url.pathname === "/slow") {
      // A page that takes its time (?ms=N): a guest waiting on it leaves the isolate free meanwhile.
      return void setTimeout(() => res.end("<p>worth the wait</p>"), Number(url.searchParams.get("ms") ?? 1000));
    }
    if (url.pathname === "/cached") {
      res.setHeader("cache-control", "public, max-age=60");
      return void res.end(`cached ${n}`);
    }
    if (url.pathname === "/nostore") {
      res.setHeader("cache-control", "no-store");
      return void res.end(`nostore ${n}`);
    }
    if (url.pathname === "/headers") {
      res.setHeader("content-type", "application/json");
      res.setHeader("cache-control", "public, max-age=60");
      return void res.end(JSON.stringify(req.headers));
    }
    if (url.pathname === "/big") {
      // N bytes, chunked (no content-length): only counting the body finds its size.
      const chunk = "a".repeat(64 * 1024);
      for (let left = Number(url.searchParams.get("bytes") ?? 0); left > 0; left -= chunk.length) res.write(chunk.slice(0, left));
      return void res.end();
    }
    if (url.pathname === "/to") {
      res.statusCode = 302;
      res.setHeader("location", url.searchParams.get("url") ?? "/");
      return void res.end();
    }
    res.statusCode = 404;
    res.end("not here");
  });
  // Loaded by Node's resolver: this file is bundled for the workers project, whose conditions pick ws's browser stub.
  const { WebSocketServer } = createRequire(import.meta.url)("ws") as { WebSocketServer: typeof WssType };
  const wss = new WebSocketServer({ server });
  wss.on("connection", (s) => s.on("message", (data, isBinary) => s.send(data, { binary: isBinary })));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  provide("capServers", { http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, openai: openai.url });
  return async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await openai.close();
  };
}
