// Starts the local edge (`wrangler dev`, offline, loopback only, persistent state) from Node:
// used by `npm start` (edge/dev/start.ts), the end-to-end tests and the bench.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { lockState } from "./state-lock.ts";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface Edge {
  url: string;
  port: number;
  persistTo: string;
  child: ChildProcess;
  /** Output so far (for error messages). */
  log(): string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? res(a.port) : rej(new Error("no port"))));
    });
  });
}

export const OFFLINE_ENV = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true", CI: "1", NO_COLOR: "1" };

/** The local edge's Worker secrets, each made once per state directory. */
const LOCAL_SECRETS = [
  "SECRETS_KEY", // seals workspace secrets and agent keys (edge/workspace/seal.ts)
  "PROVIDER_KEY", // the edge providers' Nostr keys derive from it (edge/provider/keys.ts)
];

/**
 * The local edge's secrets, kept beside its state so sealed secrets, agent keys and provider
 * identities hold across restarts: `<state>/secrets.env`, mode 0600, passed to wrangler with
 * --env-file (never on the command line). A secret missing from an older file is added to it.
 */
export function secretsEnvFile(persistTo: string): string {
  const file = join(persistTo, "secrets.env");
  mkdirSync(persistTo, { recursive: true });
  const have = existsSync(file) ? readFileSync(file, "utf8") : "";
  const missing = LOCAL_SECRETS.filter((name) => !new RegExp(`^${name}=`, "m").test(have));
  if (missing.length) {
    const lines = missing.map((name) => `${name}=${randomBytes(32).toString("hex")}\n`).join("");
    appendFileSync(file, (have && !have.endsWith("\n") ? "\n" : "") + lines, { mode: 0o600 });
  }
  return file;
}

export async function startEdge(o: { port?: number; persistTo?: string; adminPubkeys?: string[]; vars?: Record<string, string>; timeoutMs?: number; stdio?: "pipe" | "inherit" } = {}): Promise<Edge> {
  const port = o.port ?? (await freePort());
  const inspector = await freePort();
  const persistTo = o.persistTo ?? join(ROOT, ".wrangler", "state");
  const url = `http://127.0.0.1:${port}`;
  const lock = lockState(persistTo, url); // throws StateLockedError when another edge has it
  const args = [
    join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "dev", "--config", join(ROOT, "wrangler.toml"),
    "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspector),
    "--persist-to", persistTo, "--show-interactive-dev-session=false", "--log-level", "warn",
    "--env-file", secretsEnvFile(persistTo),
  ];
  if (o.adminPubkeys?.length) args.push("--var", `ADMIN_PUBKEYS:${o.adminPubkeys.join(",")}`);
  for (const [k, v] of Object.entries(o.vars ?? {})) args.push("--var", `${k}:${v}`);
  // Development: webhooks and openai:URL models on this machine are allowed (a deployed edge refuses them).
  args.push("--var", "ALLOW_PRIVATE_HOSTS:127.0.0.1,localhost");
  const child = spawn(process.execPath, args, {
    cwd: ROOT, env: { ...process.env, ...OFFLINE_ENV }, stdio: ["ignore", o.stdio === "inherit" ? "inherit" : "pipe", o.stdio === "inherit" ? "inherit" : "pipe"],
    detached: false,
  });
  lock.setChild(child.pid);
  let out = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let exited = false;
  child.once("exit", () => {
    exited = true;
    lock.release();
  });
  for (;;) {
    if (exited) throw new Error(`wrangler dev exited early:\n${out}`);
    try {
      const r = await fetch(`${url}/edge`);
      if (r.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error(`wrangler dev did not answer on ${url} in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url, port, persistTo, child, log: () => out,
    stop: () => new Promise<void>((res) => {
      if (exited) return res();
      child.once("exit", () => res());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
    }),
  };
}
