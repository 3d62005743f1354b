// oanix serve, oanix job and oanix wallet as a user runs them: child processes on the real local
// relay, feedback on stderr, the result on stdout, the documented exit statuses.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { generateSecretKey } from "nostr-tools/pure";
import { startRelay, type TestRelay } from "./testing.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const OANIX = join(ROOT, "cli/oanix.ts");
const JOBCOUNT = join(ROOT, "agents/build/jobcount.wasm");
const HIRE = join(ROOT, "agents/build/hire.wasm");
let relay: TestRelay;
let dir: string;
const children: ChildProcess[] = [];
const key = () => bytesToHex(generateSecretKey());

function oanix(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [OANIX, ...args], { cwd: ROOT, timeout: 30_000, env: { ...process.env, OANIX_KEY: key(), ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Starts a long-running command and resolves once its stderr shows `ready`. */
function daemon(args: string[], ready: RegExp): Promise<{ child: ChildProcess; stdout: () => string; stderr: () => string }> {
  const child = spawn(process.execPath, [OANIX, ...args], { cwd: ROOT, env: { ...process.env, OANIX_KEY: key() } });
  children.push(child);
  let out = "", err = "";
  child.stdout!.on("data", (d) => (out += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not ready: ${err}`)), 20_000);
    child.stderr!.on("data", (d) => {
      err += d;
      if (ready.test(err)) {
        clearTimeout(t);
        resolve({ child, stdout: () => out, stderr: () => err });
      }
    });
  });
}

beforeAll(async () => {
  relay = await startRelay();
  dir = mkdtempSync(join(tmpdir(), "oanix-market-cli-"));
}, 120_000);
afterAll(async () => {
  for (const c of children) c.kill("SIGTERM");
  await relay?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the marketplace commands", () => {
  it("document themselves", async () => {
    for (const [cmd, words] of [
      ["serve", ["--relay", "--kind", "--price", "--wallet", "--concurrency", "--timeout", "/task/spec.json", "--cap http=HOSTS", "--cap ws=HOSTS", "--cap llm=PROVIDER", "--cap nostr[=RELAYS]", "--budget CAP:KIND=N", "nostr:msats=N", "--secret NAME=ENV_VAR"]],
      ["run", ["--cap nostr", "--wallet URI", "nostr:msats", "pay_invoice"]],
      ["job", ["--input-type", "--param", "--bid", "--provider", "--timeout", "--json", "124"]],
      ["wallet", ["--ledger", "--account", "pay_invoice", "make_invoice", "lookup_invoice"]],
    ] as const) {
      const r = await oanix([cmd, "--help"]);
      expect(r.code).toBe(0);
      for (const w of words) expect(r.stdout).toContain(w);
    }
  });

  it("answer usage errors with exit 2 and one line", async () => {
    const cases: [string[], RegExp][] = [
      [["serve", "--kind", `5050=${JOBCOUNT}`], /needs at least one --relay/],
      [["serve", "--relay", relay.url], /needs at least one --kind/],
      [["serve", "--relay", relay.url, "--kind", `42=${JOBCOUNT}`], /KIND in 5000-5999/],
      [["serve", "--relay", relay.url, "--kind", "5050=/no/such.wasm"], /cannot read the module/],
      [["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--wallet", "nostr+walletconnect://nope"], /--wallet: bad wallet connect URI/],
      [["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--concurrency", "0"], /--concurrency takes a whole number/],
      [["job", "--relay", relay.url, "--kind", "5050"], /needs at least one --input/],
      [["job", "--relay", relay.url, "--kind", "5050", "--input", "x", "--input-type", "sound"], /--input-type takes text, url, event, job/],
      [["job", "--relay", relay.url, "--kind", "5050", "--input", "x", "--param", "novalue"], /--param takes K=V/],
      [["job", "--relay", relay.url, "--kind", "5050", "--input", "x", "--encrypt"], /--encrypt needs exactly one --provider/],
      [["job", "--relay", "http://x", "--kind", "5050", "--input", "x"], /--relay takes a ws:\/\/ or wss:\/\/ URL/],
      [["job", "--relay", relay.url, "--kind", "5050", "--input", "x", "--frobnicate"], /unknown option --frobnicate/],
      [["wallet", "--relay", relay.url], /needs --ledger/],
    ];
    for (const [args, msg] of cases) {
      const r = await oanix(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  it("answer capability and wallet mistakes with exit 2 and one line, before serving or running anything", async () => {
    const cases: [string[], RegExp][] = [
      [["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--cap", "http"], /--cap http needs hosts/],
      [["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--cap", "teleport"], /unknown capability/],
      [["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--budget", "llm:tokens=5"], /llm is not granted/],
      [["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--budget", "nostr:msats=5"], /needs --cap nostr/],
      [["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--cap", "http=*.example.com:80"], /wildcard takes a domain name/],
      [["run", HIRE, "--wallet", "nostr+walletconnect://x", "--budget", "nostr:msats=5"], /nostr is not granted|needs --cap nostr/],
      [["run", HIRE, "--cap", `nostr=${relay.url}`, "--wallet", "nostr+walletconnect://x"], /--wallet needs --budget nostr:msats=N/],
      [["run", HIRE, "--cap", `nostr=${relay.url}`, "--budget", "nostr:msats=5"], /needs --wallet/],
      [["run", HIRE, "--cap", `nostr=${relay.url}`, "--wallet", "https://wallet.example", "--budget", "nostr:msats=5"], /--wallet takes a nostr\+walletconnect:\/\/ URI/],
      [["run", HIRE, "--cap", `nostr=${relay.url}`, "--wallet", "nostr+walletconnect://nope", "--budget", "nostr:msats=5"], /--wallet: bad wallet connect URI/],
    ];
    const results = await Promise.all(cases.map(([args]) => oanix(args)));
    for (const [i, [args, msg]] of cases.entries()) {
      const r = results[i]!;
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  it("a paid job end to end: wallet, provider, customer; exit 0 / 1 / 124", async () => {
    const ledger = join(dir, "ledger.json");
    const w = await daemon(["wallet", "--ledger", ledger, "--relay", relay.url, "--account", "provider=0", "--account", "customer=10000"], /answering NIP-47/);
    const uri = (name: string) => w.stdout().split("\n").find((l) => l.startsWith(name + " "))!.split(" ")[1]!;
    const s = await daemon(["serve", "--relay", relay.url, "--kind", `5050=${JOBCOUNT}`, "--price", "2000", "--wallet", uri("provider"), "--name", "counter"], /serving kinds 5050/);

    const ok = await oanix(["job", "--relay", relay.url, "--kind", "5050", "--input", "the quick brown fox", "--bid", "2000", "--wallet", uri("customer"), "--budget", "5000"]);
    expect(ok.stderr).toMatch(/payment-required 2000 msats/);
    expect(ok.stderr).toMatch(/paid 2000 msats/);
    expect(ok.stderr).toMatch(/processing/);
    expect({ code: ok.code, stdout: ok.stdout }).toEqual({ code: 0, stdout: "4 words\n" });

    const json = await oanix(["job", "--relay", relay.url, "--kind", "5050", "--input", "a b", "--param", "op=upper", "--bid", "2000", "--wallet", uri("customer"), "--json"]);
    expect(json.code).toBe(0);
    const ev = JSON.parse(json.stdout);
    expect(ev).toMatchObject({ kind: 6050, content: "A B" });
    expect(ev.tags).toContainEqual(["amount", "2000"]);

    const dear = await oanix(["job", "--relay", relay.url, "--kind", "5050", "--input", "x", "--bid", "2000", "--wallet", uri("customer"), "--budget", "1999"]);
    expect(dear.code).toBe(1);
    expect(dear.stderr).toMatch(/EDQUOT: the invoice asks 2000 msats, over the budget of 1999 msats; nothing was paid/);

    const cheap = await oanix(["job", "--relay", relay.url, "--kind", "5050", "--input", "x", "--bid", "5"]);
    expect(cheap.code).toBe(1);
    expect(cheap.stderr).toMatch(/error: bid of 5 msats is below the price of 2000 msats/);

    const nobody = await oanix(["job", "--relay", relay.url, "--kind", "5999", "--input", "x", "--timeout", "2"]);
    expect(nobody.code).toBe(124);
    expect(nobody.stdout).toBe("");

    const balances = await oanix(["wallet", "--ledger", ledger, "--balances"]);
    expect(JSON.parse(balances.stdout)).toEqual({ provider: 4000, customer: 6000 });
    expect(s.stderr()).toMatch(/result published/);
  });

  it("an orchestrator served with --cap nostr hires a priced provider and pays it within its budget", async () => {
    const ledger = join(dir, "ledger2.json");
    const w = await daemon(["wallet", "--ledger", ledger, "--relay", relay.url, "--account", "counter=0", "--account", "boss=10000"], /answering NIP-47/);
    const uri = (name: string) => w.stdout().split("\n").find((l) => l.startsWith(name + " "))!.split(" ")[1]!;
    await daemon(["serve", "--relay", relay.url, "--kind", `5060=${JOBCOUNT}`, "--price", "1500", "--wallet", uri("counter")], /serving kinds 5060/);
    const boss = ["serve", "--relay", relay.url, "--kind", `5261=${join(ROOT, "agents/build/orchestrate.wasm")}`, "--cap", "nostr", "--wallet", uri("boss")];
    await daemon([...boss, "--budget", "nostr:msats=3000"], /serving kinds 5261/);
    const ok = await oanix(["job", "--relay", relay.url, "--kind", "5261", "--input", "one two three four five", "--param", "parts=2", "--param", "kind=5060", "--json"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).content).toBe("5 words");
    expect(JSON.parse((await oanix(["wallet", "--ledger", ledger, "--balances"])).stdout)).toEqual({ counter: 3000, boss: 7000 });
    // Three parts cost 4500 msats, over the 3000 budget: the agent's hire is EDQUOT and the job fails.
    const dear = await oanix(["job", "--relay", relay.url, "--kind", "5261", "--input", "one two three four five six", "--param", "parts=3", "--param", "kind=5060", "--timeout", "20"]);
    expect(dear.code).toBe(1);
    expect(dear.stderr).toMatch(/EDQUOT/);
  });

  it("oanix run --cap nostr mounts /cap/nostr/jobs: an agent hires a served agent with file operations", async () => {
    await daemon(["serve", "--relay", relay.url, "--kind", `5071=${JOBCOUNT}`], /serving kinds 5071/);
    const spec = join(dir, "hire-spec.json");
    writeFileSync(spec, JSON.stringify({ input: [{ data: "alpha beta gamma", type: "text" }], params: { kind: "5071" } }));
    const hire = join(ROOT, "agents/build/hire.wasm");
    const r = await oanix(["run", hire, "--cap", `nostr=${relay.url}`, "--mount", `/task=task:${spec}`]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(r.stderr).toMatch(/\/task\/result\.json: .*"content":"3 words"/);
    // Not granted: no /cap/nostr at all, so the agent cannot hire.
    const bare = await oanix(["run", hire, "--mount", `/task=task:${spec}`]);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/hire: .*ENOENT|hire: .*no such/i);
  });

  it("oanix run --wallet pays what its agent hires through /cap/nostr/jobs, within --budget nostr:msats", async () => {
    const ledger = join(dir, "ledger3.json");
    const w = await daemon(["wallet", "--ledger", ledger, "--relay", relay.url, "--account", "counter=0", "--account", "me=5000"], /answering NIP-47/);
    const uri = (name: string) => w.stdout().split("\n").find((l) => l.startsWith(name + " "))!.split(" ")[1]!;
    await daemon(["serve", "--relay", relay.url, "--kind", `5072=${JOBCOUNT}`, "--price", "1500", "--wallet", uri("counter")], /serving kinds 5072/);
    const spec = join(dir, "paid-hire-spec.json");
    writeFileSync(spec, JSON.stringify({ input: [{ data: "paid for by the agent", type: "text" }], params: { kind: "5072" } }));
    const run = (budget: number) => oanix(["run", HIRE, "--cap", `nostr=${relay.url}`, "--wallet", uri("me"), "--budget", `nostr:msats=${budget}`, "--mount", `/task=task:${spec}`, "--timeout", "30000"]);
    const ok = await run(2000);
    expect({ code: ok.code, stderr: ok.stderr }).toMatchObject({ code: 0 });
    expect(ok.stderr).toMatch(/\/task\/result\.json: .*"content":"5 words"/);
    expect(JSON.parse((await oanix(["wallet", "--ledger", ledger, "--balances"])).stdout)).toEqual({ counter: 1500, me: 3500 });
    // The invoice is over this run's budget: EDQUOT for the agent, and nothing is paid.
    const dear = await run(1000);
    expect(dear.code).toBe(1);
    expect(dear.stderr).toMatch(/hire: .*EDQUOT/);
    expect(JSON.parse((await oanix(["wallet", "--ledger", ledger, "--balances"])).stdout)).toEqual({ counter: 1500, me: 3500 });
  });
});
