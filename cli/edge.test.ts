// The CLI against a real local edge (`wrangler dev`, offline): `oanix ws`, remote mounts as a user
// meets them (bad keys, bad URLs, refusals, read-only mounts), and `oanix run --agent`.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, type Edge } from "../edge/dev/launch.ts";
import { keySigner, newSecretKey } from "../services/nip98.ts";

const ROOT = join(import.meta.dirname, "..");
const AGENTS = join(ROOT, "agents/build");
const tmp = mkdtempSync(join(tmpdir(), "oanix-cli-edge-"));
const owner = newSecretKey(), stranger = newSecretKey();
const ownerPub = keySigner(owner).pubkey, strangerPub = keySigner(stranger).pubkey;
let edge: Edge;

beforeAll(async () => {
  // The stranger is the edge's admin (as the key that runs `npm start` is), so it may see owners.
  edge = await startEdge({ persistTo: join(tmp, "state"), adminPubkeys: [strangerPub] });
}, 90_000);
afterAll(async () => {
  await edge?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

interface Result { code: number; stdout: string; stderr: string; ms: number }

function oanix(args: string[], o: { key?: string; env?: Record<string, string>; stdin?: string } = {}): Promise<Result> {
  const t = Date.now();
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, OANIX_EDGE: edge.url, OANIX_KEY: o.key ?? owner, OANIX_CACHE_DIR: join(tmp, "cache") };
    delete env.OANIX_TOKEN;
    Object.assign(env, o.env);
    const child = execFile(process.execPath, [join(ROOT, "cli/oanix.mjs"), ...args], { cwd: tmp, env, timeout: 60_000, encoding: "utf8" }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr, ms: Date.now() - t });
    });
    child.stdin!.end(o.stdin ?? "");
  });
}

const ok = (r: Result): Result => {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  return r;
};
const oneLine = (r: Result, code: number, msg: RegExp): void => {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code, stderr: expect.stringMatching(msg) });
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
};
const unique = (p: string) => `${p}-${Math.random().toString(36).slice(2, 8)}`;

describe("oanix ws", () => {
  it("documents every subcommand", async () => {
    const r = ok(await oanix(["ws", "--help"]));
    for (const s of ["create", "ls", "cat", "put", "get", "rm", "mv", "versions", "snapshot", "fork", "grant", "grants", "revoke", "audit", "--edge", "--json"]) expect(r.stdout).toContain(s);
    expect(ok(await oanix(["ws", "grant", "--help"])).stdout).toMatch(/--pubkey/);
  });

  it("creates, writes, reads, lists, moves and removes files", async () => {
    const ws = unique("files");
    expect(ok(await oanix(["ws", "create", ws])).stdout).toMatch(new RegExp(`created ${ws}`));
    writeFileSync(join(tmp, "local.txt"), "from a local file\n");
    ok(await oanix(["ws", "put", `${ws}/docs/a.txt`, join(tmp, "local.txt")]));
    ok(await oanix(["ws", "put", `${ws}/docs/b.txt`], { stdin: "from stdin\n" }));
    ok(await oanix(["ws", "put", `${ws}/empty`, "-"], { stdin: "" }));
    expect(ok(await oanix(["ws", "cat", `${ws}/docs/a.txt`])).stdout).toBe("from a local file\n");
    expect(ok(await oanix(["ws", "cat", `${ws}/empty`])).stdout).toBe("");
    const ls = ok(await oanix(["ws", "ls", `${ws}/docs`])).stdout;
    expect(ls).toMatch(/a\.txt/);
    expect(ls).toMatch(/b\.txt/);
    const json = JSON.parse(ok(await oanix(["ws", "ls", ws, "--json"])).stdout) as { entries: Array<{ name: string; type: string }> };
    expect(json.entries.map((e) => e.name).sort()).toEqual(["docs", "empty"]);
    ok(await oanix(["ws", "get", `${ws}/docs/b.txt`, join(tmp, "got.txt")]));
    expect(readFileSync(join(tmp, "got.txt"), "utf8")).toBe("from stdin\n");
    ok(await oanix(["ws", "mv", `${ws}/docs/b.txt`, `${ws}/docs/c.txt`]));
    oneLine(await oanix(["ws", "mv", `${ws}/docs/c.txt`, "elsewhere/c.txt"]), 2, /mv works inside one workspace/);
    expect(ok(await oanix(["ws", "cat", `${ws}/docs/c.txt`])).stdout).toBe("from stdin\n");
    ok(await oanix(["ws", "rm", `${ws}/docs/c.txt`]));
    oneLine(await oanix(["ws", "cat", `${ws}/docs/c.txt`]), 1, /ENOENT/);
    const mine = JSON.parse(ok(await oanix(["ws", "ls", "--json"])).stdout) as { workspaces: Array<{ name: string }> };
    expect(mine.workspaces.map((w) => w.name)).toContain(ws);
  });

  it("versions, snapshots, forks and the audit chain", async () => {
    const ws = unique("hist"), copy = unique("copy"), old = unique("old");
    ok(await oanix(["ws", "create", ws]));
    const one = JSON.parse(ok(await oanix(["ws", "put", `${ws}/f`, "--json"], { stdin: "one" })).stdout) as { stat: { version: number } };
    ok(await oanix(["ws", "put", `${ws}/f`], { stdin: "two" }));
    const hist = JSON.parse(ok(await oanix(["ws", "versions", `${ws}/f`, "--json"])).stdout) as { entries: Array<{ version: number }> };
    expect(hist.entries.map((e) => e.version)).toContain(one.stat.version);
    expect(hist.entries.length).toBeGreaterThanOrEqual(2);
    expect(ok(await oanix(["ws", "versions", ws, "--limit", "1"])).stdout.trim().split("\n")).toHaveLength(1);
    expect(ok(await oanix(["ws", "snapshot", ws, "v2"])).stdout).toMatch(/snapshot v2 = version \d+/);
    ok(await oanix(["ws", "put", `${ws}/f`], { stdin: "three" }));
    expect(ok(await oanix(["ws", "snapshot", ws])).stdout).toMatch(/^v2 +version \d+/);
    ok(await oanix(["ws", "fork", ws, copy, "--snapshot", "v2"]));
    expect(ok(await oanix(["ws", "cat", `${copy}/f`])).stdout).toBe("two");
    ok(await oanix(["ws", "fork", ws, old, "--version", String(one.stat.version)]));
    expect(ok(await oanix(["ws", "cat", `${old}/f`])).stdout).toBe("one");
    oneLine(await oanix(["ws", "fork", ws, unique("x"), "--snapshot", "nope"]), 1, /ENOENT/);
    const audit = JSON.parse(ok(await oanix(["ws", "audit", ws, "--json"])).stdout) as { head: { seq: number } };
    expect(audit.head.seq).toBeGreaterThanOrEqual(4);
    expect(ok(await oanix(["ws", "audit", ws, "--verify"])).stdout).toMatch(/intact/);
  }, 60_000);

  it("grants a key, lists and revokes grants; the key's access follows", async () => {
    const ws = unique("shared");
    ok(await oanix(["ws", "create", ws]));
    ok(await oanix(["ws", "put", `${ws}/note`], { stdin: "shared note" }));
    oneLine(await oanix(["ws", "cat", `${ws}/note`], { key: stranger }), 1, /EACCES/);
    const g = JSON.parse(ok(await oanix(["ws", "grant", ws, "--pubkey", strangerPub, "--rights", "r", "--json"])).stdout) as { id: string };
    expect(ok(await oanix(["ws", "cat", `${ws}/note`], { key: stranger })).stdout).toBe("shared note");
    oneLine(await oanix(["ws", "put", `${ws}/note`], { key: stranger, stdin: "overwritten" }), 1, /EACCES/);
    expect(ok(await oanix(["ws", "grants", ws])).stdout).toContain(g.id);
    ok(await oanix(["ws", "revoke", ws, g.id]));
    oneLine(await oanix(["ws", "cat", `${ws}/note`], { key: stranger }), 1, /EACCES/);
    // A token grant prints the token; it reads through OANIX_TOKEN.
    const t = ok(await oanix(["ws", "grant", ws, "--prefix", "/", "--expires", "600"])).stdout;
    const token = /token (\S+)/.exec(t)?.[1];
    expect(token).toMatch(/^oanix_/);
    expect(ok(await oanix(["ws", "cat", `${ws}/note`], { env: { OANIX_TOKEN: token! } })).stdout).toBe("shared note");
    expect(ok(await oanix(["ws", "cat", `${ws}/note`])).stdout).toBe("shared note");
  }, 60_000);

  it("answers usage errors with exit 2 and failures with exit 1, one line each", async () => {
    oneLine(await oanix(["ws", "frobnicate"]), 2, /unknown subcommand/);
    oneLine(await oanix(["ws", "cat"]), 2, /usage: oanix ws cat/);
    oneLine(await oanix(["ws", "cat", "bad name/x"]), 2, /a workspace is NAME/);
    oneLine(await oanix(["ws", "ls", "--bogus"]), 2, /unknown option --bogus/);
    oneLine(await oanix(["ws", "grant", "x", "--rights", "all"]), 2, /--rights is r or rw/);
    oneLine(await oanix(["ws", "versions", "x", "--limit", "abc"]), 2, /whole number/);
    oneLine(await oanix(["ws", "put", "x/y", join(tmp, "nope")]), 2, /cannot read the file/);
    oneLine(await oanix(["ws", "cat", `${unique("nosuch")}/f`]), 1, /ENOENT/);
    oneLine(await oanix(["ws", "ls"], { env: { OANIX_EDGE: "http://127.0.0.1:9" } }), 1, /the edge at http:\/\/127\.0\.0\.1:9 cannot be reached/);
    oneLine(await oanix(["ws", "ls", "--edge", "ftp://x"]), 2, /http\(s\) URL/);
    oneLine(await oanix(["ws", "ls"], { key: "not-a-key" }), 2, /OANIX_KEY: not a nostr secret key/);
  }, 60_000);
});

/** A signed JSON request to the edge, as the owner. */
async function asOwner(method: string, path: string, body?: unknown): Promise<Response> {
  const url = edge.url + path;
  const bytes = body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body));
  return fetch(url, { method, ...(bytes ? { body: bytes } : {}), headers: { "content-type": "application/json", authorization: keySigner(owner).authorize(url, method, bytes) } });
}

const DEMO = join(AGENTS, "demo.wasm");
const TASK = `/task=task:${join(ROOT, "agents/demo-task.json")}`;

describe("oanix run with edge mounts, as a user meets it", () => {
  it("a malformed OANIX_KEY fails at once, naming the key (not a 30 s hang)", async () => {
    for (const key of ["not-a-key", "nsec1garbage", "0".repeat(64)]) {
      const r = await oanix(["run", DEMO, "--mount", `/workspace=${edge.url}/w/${unique("k")}`], { key });
      oneLine(r, 2, /OANIX_KEY: not a (nostr|valid secp256k1) secret key/);
      expect(r.ms).toBeLessThan(10_000);
    }
  });

  it("a bad mount URL is one line and exit 2, no stack trace", async () => {
    for (const url of [`${edge.url}/notw/x`, `${edge.url}/w/`, `${edge.url}/w/a/b`, "http://[::1", `${edge.url}/w/x?y=1`]) {
      oneLine(await oanix(["run", DEMO, "--mount", `/workspace=${url}`]), 2, /an edge workspace is http:\/\/HOST:PORT\/w\/NAME|not a URL/);
    }
  });

  it("an unreachable edge is said before the agent starts, naming the mount", async () => {
    const r = await oanix(["run", DEMO, "--mount", "/workspace=http://127.0.0.1:9/w/x"]);
    oneLine(r, 2, /\/workspace \(http:\/\/127\.0\.0\.1:9\/w\/x\): the edge at http:\/\/127\.0\.0\.1:9 cannot be reached/);
    expect(r.ms).toBeLessThan(10_000);
  });

  it("--ro on a workspace that does not exist fails and creates nothing", async () => {
    const ws = unique("typo");
    oneLine(await oanix(["run", DEMO, "--ro", `/workspace=${edge.url}/w/${ws}`, "--mount", TASK]), 2, new RegExp(`no workspace "${ws}".*read-only mount does not create it`));
    expect((await asOwner("GET", `/w/${ws}`)).status).toBe(404);
  });

  it("a refused key is said once on stderr: which mount, why, whose it is and how to get access", async () => {
    const ws = unique("theirs");
    ok(await oanix(["ws", "create", ws]));
    ok(await oanix(["ws", "put", `${ws}/a.txt`], { stdin: "words here" }));
    const r = await oanix(["run", DEMO, "--mount", `/workspace=${edge.url}/w/${ws}`, "--mount", TASK], { key: stranger });
    expect(r.code).not.toBe(0);
    const lines = r.stderr.split("\n").filter((l) => l.includes(`/workspace (${edge.url}/w/${ws})`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/EACCES/);
    expect(lines[0]).toContain(`you are key ${strangerPub}`);
    expect(lines[0]).toContain(`belongs to key ${ownerPub}`); // the edge lists owners to its admin key
    expect(lines[0]).toContain(`oanix ws grant ${ws} --pubkey ${strangerPub}`);
  });

  it("a token refused on write reaches the guest as EACCES and the terminal as one line", async () => {
    const ws = unique("ro-token");
    ok(await oanix(["ws", "create", ws]));
    ok(await oanix(["ws", "put", `${ws}/a.txt`], { stdin: "some words" }));
    const token = (JSON.parse(ok(await oanix(["ws", "grant", ws, "--rights", "r", "--json"])).stdout) as { token: string }).token;
    const r = await oanix(["run", DEMO, "--mount", `/workspace=${edge.url}/w/${ws}`, "--mount", TASK], { env: { OANIX_TOKEN: token } });
    expect(r.code).not.toBe(0);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith(`oanix: /workspace (${edge.url}/w/${ws}): EACCES`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/OANIX_TOKEN does not allow this/);
  });
});

describe("oanix run --agent: the namespace from the edge's registry", () => {
  it("mounts what the registry lists for the agent and runs on it", async () => {
    const ws = unique("fed"), agent = unique("wordcount");
    ok(await oanix(["ws", "create", ws]));
    ok(await oanix(["ws", "put", `${ws}/notes.txt`], { stdin: "alpha beta beta gamma" }));
    expect((await asOwner("PUT", `/registry/${agent}`, { mounts: { "/workspace": `${edge.url}/w/${ws}` } })).status).toBe(201);
    const r = await oanix(["run", DEMO, "--agent", agent, "--mount", TASK]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/result\.json: \{"ok":true/) });
    expect(ok(await oanix(["ws", "cat", `${ws}/manifest.json`])).stdout).toContain("notes.txt");
    // A --mount at a registry path replaces the registry's mount there.
    const local = join(tmp, "local-ws");
    mkdirSync(local, { recursive: true });
    writeFileSync(join(local, "here.txt"), "local words");
    ok(await oanix(["ws", "rm", `${ws}/manifest.json`]));
    const l = await oanix(["run", DEMO, "--agent", agent, "--mount", TASK, "--mount", `/workspace=dir:${local}`]);
    expect(l.code).toBe(0);
    expect(readFileSync(join(local, "manifest.json"), "utf8")).toContain("here.txt");
    oneLine(await oanix(["ws", "cat", `${ws}/manifest.json`]), 1, /ENOENT/);
  });

  it("says which mount cannot be reached, and what the registry answered", async () => {
    const agent = unique("broken");
    expect((await asOwner("PUT", `/registry/${agent}`, { mounts: { "/workspace": `${edge.url}/w/${unique("fine")}`, "/data": "http://127.0.0.1:9/w/gone" } })).status).toBe(201);
    oneLine(await oanix(["run", DEMO, "--agent", agent]), 2, new RegExp(`agent ${agent}: /data \\(http://127\\.0\\.0\\.1:9/w/gone\\): the edge at .* cannot be reached`));
    oneLine(await oanix(["run", DEMO, "--agent", unique("nobody")]), 2, /agent nobody-\w+: ENOENT/);
    oneLine(await oanix(["run", DEMO, "--agent", agent], { key: stranger }), 2, /agent broken-\w+: EACCES/);
    oneLine(await oanix(["run", DEMO, "--agent", "bad/id"]), 2, /--agent takes an agent id/);
  });
});
