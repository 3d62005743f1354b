// Runs the Worker (relay at /relay, plus everything else the Worker serves) under `wrangler dev`,
// offline, on loopback, with persistent local state. Node script (not part of the Worker bundle).
//
//   node relay/dev.ts [--port N] [--persist-to DIR]      (PORT=N also works; default 8787)
//
// `startDev()` is also used by bench/relay.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface DevOptions {
  port?: number;
  /** Directory for local Durable Object / D1 / KV / R2 state (default .wrangler/state). */
  persistTo?: string;
  /** Extra `--var NAME:VALUE` bindings, e.g. RELAY_CONFIG. */
  vars?: Record<string, string>;
  /** Forward wrangler's output to this process's stdout/stderr. */
  inherit?: boolean;
  /** How long to wait for the server to answer (ms). */
  timeout?: number;
}

export interface DevServer {
  url: string;
  relayUrl: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
};

export async function startDev(opts: DevOptions = {}): Promise<DevServer> {
  const port = opts.port ?? 8787;
  const args = [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--persist-to",
    opts.persistTo ?? join(ROOT, ".wrangler/state"),
    "--show-interactive-dev-session=false",
    "--log-level",
    opts.inherit ? "info" : "warn",
  ];
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push("--var", `${k}:${v}`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...OFFLINE_ENV },
    stdio: opts.inherit ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout?.on("data", (d: Buffer) => (log += d.toString()).length > 20000 && (log = log.slice(-10000)));
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()).length > 20000 && (log = log.slice(-10000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeout ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${log}`);
    try {
      const res = await fetch(`${url}/relay`, { headers: { Accept: "application/nostr+json" } });
      if (res.ok) {
        await res.body?.cancel();
        break;
      }
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error(`wrangler dev did not answer on ${url} in time:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    relayUrl: `ws://127.0.0.1:${port}/relay`,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.exitCode === null && child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

function portFromArgs(argv: string[]): number | undefined {
  const i = argv.findIndex((a) => a === "--port" || a.startsWith("--port="));
  if (i < 0) return undefined;
  const v = argv[i]!.includes("=") ? argv[i]!.split("=")[1] : argv[i + 1];
  return v === undefined ? undefined : Number(v);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const port = portFromArgs(argv) ?? (process.env.PORT ? Number(process.env.PORT) : 8787);
  const pi = argv.indexOf("--persist-to");
  const persistTo = pi >= 0 ? argv[pi + 1] : undefined;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`bad port: ${port}`);
    process.exit(2);
  }
  const dev = await startDev({ port, inherit: true, ...(persistTo ? { persistTo } : {}) });
  console.log(`OANIX relay: ${dev.relayUrl} (NIP-11: curl -H 'Accept: application/nostr+json' ${dev.url}/relay)`);
  const stop = () => void dev.stop().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  dev.child.on("exit", (code) => process.exit(code ?? 0));
}
