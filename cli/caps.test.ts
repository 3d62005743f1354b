// oanix run's capability flags: parsing, usage errors (exit 2, one line), and a run with caps.
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { addCapFlag, capGrants, emptyCapArgs } from "./caps.ts";
import { UsageError } from "./sources.ts";

const ROOT = join(import.meta.dirname, "..");
const CAPTEST = join(ROOT, "agents/build/captest.wasm");

function oanix(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [join(ROOT, "cli/oanix.ts"), ...args], { cwd: ROOT, timeout: 20_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
    child.stdin!.end();
  });
}

const parse = (...flags: [string, string][]) => {
  const a = emptyCapArgs();
  for (const [f, v] of flags) addCapFlag(a, f, v);
  return a;
};

describe("capability flags", () => {
  it("turn into grants: hosts, providers, budgets, secrets bound to hosts", () => {
    const a = parse(["--cap", "http=example.com,*.wiki.org"], ["--cap", "llm=openai:http://127.0.0.1:1/v1#m"], ["--budget", "llm:tokens=500"],
      ["--budget", "http:calls=3"], ["--secret", "GH=GH_TOKEN@api.github.com"], ["--secret", "K=MY_KEY"]);
    const { grants, secrets } = capGrants(a, { GH_TOKEN: "ghp_x", MY_KEY: "k", OANIX_LLM_KEY: "llm-key" });
    expect(grants).toEqual({
      http: { hosts: "example.com,*.wiki.org", budget: { calls: 3 } },
      llm: { provider: "openai:http://127.0.0.1:1/v1#m", apiKey: "llm-key", budget: { tokens: 500 } },
    });
    expect(secrets).toEqual({ GH: { value: "ghp_x", hosts: ["api.github.com"] }, K: { value: "k", hosts: ["example.com", "*.wiki.org"] } });
    expect(capGrants(parse(["--cap", "llm"]), {}).grants.llm!.provider).toBe("offline");
  });

  it("refuse what cannot be granted, with a usage error that says why", () => {
    const bad: [[string, string][], RegExp, Record<string, string>?][] = [
      [[["--cap", "disk=/"]], /unknown capability/],
      [[["--cap", "http"]], /needs hosts/],
      [[["--cap", "http=a.com/x"]], /host pattern/],
      [[["--cap", "llm"], ["--cap", "llm=offline"]], /twice/],
      [[["--cap", "llm=gpt"]], /offline or openai/],
      [[["--budget", "llm:tokens"]], /CAP:KIND=N/],
      [[["--budget", "llm:bytes=3"], ["--cap", "llm"]], /no bytes budget/],
      [[["--budget", "http:calls=3"]], /not granted/],
      [[["--secret", "K=NOPE@a.com"]], /NOPE is not set/],
      [[["--secret", "K=SET"]], /bind it to hosts/, { SET: "v" }],
      [[["--cap", "nostr=http://relay"]], /ws:\/\//],
    ];
    for (const [flags, re, env] of bad) {
      expect(() => capGrants(parse(...flags), env ?? {}), JSON.stringify(flags)).toThrow(re);
      try {
        capGrants(parse(...flags), env ?? {});
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
      }
    }
  });
});

describe("oanix run with capabilities", () => {
  it("documents the flags", async () => {
    const r = await oanix(["run", "--help"]);
    for (const w of ["--cap http=HOSTS", "--cap ws=HOSTS", "--cap nostr", "--cap llm=PROVIDER", "--budget CAP:KIND=N", "--secret NAME=ENV_VAR", "llm:tokens", "OANIX_LLM_KEY"]) expect(r.stdout).toContain(w);
  });

  it("mounts what is granted and nothing else; budgets and host grants hold", async () => {
    const s = createServer((_req, res) => res.end("hi"));
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as AddressInfo).port;
    const llm = await oanix(["run", CAPTEST, "--cap", "llm=offline", "--", "llm", "hello there"]);
    expect(llm.code).toBe(0);
    expect(llm.stdout).toContain("VERDICT: GO");
    const none = await oanix(["run", CAPTEST, "--", "llm", "hello"]);
    expect(none).toMatchObject({ code: 1, stderr: "captest: llm: ENOENT\n" });
    const spent = await oanix(["run", CAPTEST, "--cap", "llm", "--budget", "llm:tokens=2", "--", "llmloop", "2"]);
    expect(spent).toMatchObject({ code: 1, stderr: "captest: llm: EDQUOT\n" });
    const ok = await oanix(["run", CAPTEST, "--cap", `http=127.0.0.1:${port}`, "--", "http", `http://127.0.0.1:${port}/`]);
    expect(ok).toMatchObject({ code: 0, stdout: `200 http://127.0.0.1:${port}/\nhi` });
    const refused = await oanix(["run", CAPTEST, "--cap", `http=127.0.0.1:${port}`, "--", "http", `http://127.0.0.1:${port + 1}/`]);
    expect(refused).toMatchObject({ code: 1, stderr: "captest: http: EACCES\n" });
    const bad = await oanix(["run", CAPTEST, "--cap", "http"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^oanix: --cap http needs hosts/);
    s.close();
  });
});
