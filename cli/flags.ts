// Flag parsing for the marketplace commands (serve, job, wallet): `--name value` pairs, repeatable
// where declared, `--flag` booleans, every mistake a UsageError (one line, exit 2).
import { UsageError } from "./usage.ts";

export type FlagKind = "one" | "many" | "bool";

export interface Flags {
  one: Record<string, string>;
  many: Record<string, string[]>;
  bool: Set<string>;
}

export function parseFlags(argv: string[], spec: Record<string, FlagKind>, command: string): Flags {
  const out: Flags = { one: {}, many: {}, bool: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(2, eq) : a.replace(/^--/, "");
    const kind = a.startsWith("--") ? spec[name] : undefined;
    if (!kind) throw new UsageError(`unknown ${a.startsWith("-") ? "option" : "argument"} ${a} (try oanix ${command} --help)`);
    if (kind === "bool") {
      out.bool.add(name);
      continue;
    }
    const v = a.startsWith("--") && eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) throw new UsageError(`--${name} needs a value`);
    if (kind === "one") {
      if (name in out.one) throw new UsageError(`--${name} given twice`);
      out.one[name] = v;
    } else (out.many[name] ??= []).push(v);
  }
  return out;
}

/** A whole number ≥ min (default 0), or a UsageError naming the flag. */
export function integer(v: string, flag: string, min = 0): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag} takes a whole number${min > 0 ? ` ≥ ${min}` : ""} (got "${v}")`);
  return n;
}

export function relays(f: Flags): string[] {
  const r = f.many.relay ?? [];
  if (!r.length) throw new UsageError("needs at least one --relay ws://HOST/relay");
  for (const u of r) if (!/^wss?:\/\/./.test(u)) throw new UsageError(`--relay takes a ws:// or wss:// URL (got "${u}")`);
  return r;
}

export const wantsHelp = (argv: string[]): boolean => argv.includes("--help") || argv.includes("-h");

/** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once("SIGINT", on("SIGINT"));
    process.once("SIGTERM", on("SIGTERM"));
  });
}
