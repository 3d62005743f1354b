// What browsers load from the Worker: the console page, the library and its worker, the page's
// agents; cached by ETag; an unknown agent is the edge's JSON 404.
import { describe, expect, it } from "vitest";
import { call, json } from "../testing.ts";

describe("browser assets", () => {
  it("serves the console page with a strict content security policy", async () => {
    const r = await call(null, "GET", "/");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.headers.get("content-security-policy")).toContain("default-src 'self'");
    const html = await r.text();
    expect(html).toContain("<title>OANIX console</title>");
    expect(html).toContain('<script type="module" src="/console.js"></script>');
  });

  it("makes the page, the library and its worker cross-origin isolated (the JSPI-free path shares memory)", async () => {
    for (const path of ["/", "/oanix.js", "/oanix-worker.js"]) {
      const r = await call(null, "GET", path);
      expect(r.headers.get("cross-origin-opener-policy"), path).toBe("same-origin");
      expect(r.headers.get("cross-origin-embedder-policy"), path).toBe("require-corp");
    }
    // What other origins' isolated pages load must say it may be embedded.
    for (const path of ["/oanix.js", "/oanix-worker.js", "/agents/hello.wasm"]) {
      const r = await call(null, "GET", path);
      expect(r.headers.get("cross-origin-resource-policy"), path).toBe("cross-origin");
    }
  });

  it("serves /oanix.js and its worker as JavaScript, importable from other origins", async () => {
    for (const path of ["/oanix.js", "/oanix-worker.js", "/console.js"]) {
      const r = await call(null, "GET", path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect((await r.text()).length).toBeGreaterThan(1000);
    }
    const lib = await call(null, "GET", "/oanix.js");
    expect(lib.headers.get("access-control-allow-origin")).toBe("*");
    expect(await lib.text()).toMatch(/export\s*\{[^}]*createHost/);
  });

  it("answers 304 to a matching If-None-Match", async () => {
    const first = await call(null, "GET", "/oanix.js");
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]{24}"$/);
    const again = await call(null, "GET", "/oanix.js", undefined, { "if-none-match": etag });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  it("serves the page's agents as wasm bytes, and a JSON 404 for others", async () => {
    const r = await call(null, "GET", "/agents/hello.wasm");
    expect(r.headers.get("content-type")).toBe("application/wasm");
    const b = new Uint8Array(await r.arrayBuffer());
    expect([...b.subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]);
    const missing = await call(null, "GET", "/agents/nope.wasm");
    expect(missing.status).toBe(404);
    expect((await json(missing)).error.code).toBe("ENOENT");
  });
});
