// What browsers load from the edge: the console page at `/`, the OANIX library at `/oanix.js` and
// its runtime worker, and the bundled agents' bytes at `/agents/NAME.wasm`. Built by
// browser/build.ts (run by `npm run build:agents`) and imported as modules, so they are part of
// the Worker: served offline, identical in `wrangler dev`, tests and a deployed Worker.
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { errorResponse } from "./app.ts";
import { PAGE_AGENTS } from "../../browser/agents.ts";
import page from "../build/browser/console.html";
import consoleJs from "../build/browser/console.js.txt";
import oanixJs from "../build/browser/oanix.js.txt";
import workerJs from "../build/browser/oanix-worker.js.txt";
import demo from "../build/browser/demo.bin";
import hello from "../build/browser/hello.bin";
import echo from "../build/browser/echo.bin";
import smallfile from "../build/browser/smallfile.bin";
import busy from "../build/browser/busy.bin";
import membomb from "../build/browser/membomb.bin";
import spew from "../build/browser/spew.bin";

const AGENTS: Record<(typeof PAGE_AGENTS)[number], ArrayBuffer> = { demo, hello, echo, smallfile, busy, membomb, spew };

const JS = "text/javascript; charset=utf-8";
// Cross-origin isolation, so the library's JSPI-free path can share memory between its workers
// (SharedArrayBuffer, Atomics.wait): the page opts in (COOP + COEP), and so do the library and its
// worker, whose scripts carry their own COEP (a worker's policy is its script's). Everything the
// page loads is its own origin's, so require-corp refuses nothing it uses.
const ISOLATED = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
/** What other origins' pages import (also isolated ones: CORS for module scripts, CORP for the rest). */
const SHARED = { "access-control-allow-origin": "*", "cross-origin-resource-policy": "cross-origin" };
// Revalidated on every load: a rebuilt edge is picked up at once (the ETag keeps it cheap).
const CACHE = "no-cache";

async function etagOf(body: string | ArrayBuffer): Promise<string> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : new Uint8Array(body);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `"${[...d.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("")}"`;
}
const etags = new Map<string | ArrayBuffer, Promise<string>>();

async function serve(req: Request, body: string | ArrayBuffer, type: string, extra: Record<string, string> = {}): Promise<Response> {
  let tag = etags.get(body);
  if (!tag) etags.set(body, (tag = etagOf(body)));
  const etag = await tag;
  const headers = { "content-type": type, "cache-control": CACHE, etag, "x-content-type-options": "nosniff", ...extra };
  if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
  return new Response(req.method === "HEAD" ? null : body, { headers });
}

export const assets = new Hono()
  .get("/", (c) => serve(c.req.raw, page, "text/html; charset=utf-8", {
    ...ISOLATED,
    "content-security-policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' ws: wss:",
  }))
  .get("/console.js", (c) => serve(c.req.raw, consoleJs, JS))
  // The library is meant to be imported by other origins' pages too.
  .get("/oanix.js", (c) => serve(c.req.raw, oanixJs, JS, { ...ISOLATED, ...SHARED }))
  .get("/oanix-worker.js", (c) => serve(c.req.raw, workerJs, JS, { ...ISOLATED, ...SHARED }))
  .get("/agents/:file{[a-z]+\\.wasm}", (c) => {
    const name = c.req.param("file").slice(0, -5);
    const bytes = (AGENTS as Record<string, ArrayBuffer>)[name];
    if (!bytes) return errorResponse(new FsError("ENOENT", `no bundled agent ${name} (there are: ${PAGE_AGENTS.join(", ")})`));
    return serve(c.req.raw, bytes, "application/wasm", SHARED);
  });
