// The local edge's secrets file (edge/dev/launch.ts secretsEnvFile): made once, kept across
// restarts, and completed when an older one lacks a secret a newer edge needs.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { secretsEnvFile } from "../edge/dev/launch.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), "oanix-secrets-"));
  dirs.push(d);
  return d;
};
const parse = (file: string): Record<string, string> =>
  Object.fromEntries(readFileSync(file, "utf8").trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

it("makes SECRETS_KEY and PROVIDER_KEY once, readable by its owner only, and keeps them on the next start", () => {
  const state = join(tmp(), "state");
  const file = secretsEnvFile(state);
  const first = parse(file);
  expect(Object.keys(first).sort()).toEqual(["PROVIDER_KEY", "SECRETS_KEY"]);
  for (const v of Object.values(first)) expect(v).toMatch(/^[0-9a-f]{64}$/);
  expect(first.PROVIDER_KEY).not.toBe(first.SECRETS_KEY);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(parse(secretsEnvFile(state))).toEqual(first);
});

it("adds what an older file lacks without touching the key that seals existing secrets", () => {
  const state = tmp();
  const file = join(state, "secrets.env");
  writeFileSync(file, "SECRETS_KEY=kept-from-an-older-edge", { mode: 0o600 }); // no trailing newline
  secretsEnvFile(state);
  const now = parse(file);
  expect(now.SECRETS_KEY).toBe("kept-from-an-older-edge");
  expect(now.PROVIDER_KEY).toMatch(/^[0-9a-f]{64}$/);
});
