// Shared by the planning agents (phase.ts, reviewer.ts): the spec, result and workspace helpers.
import { lastError } from "../../sdk/errno";
import { dirname } from "../../sdk/path";
import { mkdir, readText, writeText } from "../../sdk/fs";
import { Json, parseJson } from "../../sdk/json";
import { eprintln, exit } from "../../sdk/process";

/** Most characters of one earlier artifact put in a prompt. */
export const MAX_INPUT_CHARS: i32 = 6000;

export const WS = "/workspace/";

/** Ends the process with {"ok": false, "step", "errno"?, "error"} in /task/result.json. */
export function failWith(agent: string, step: string, error: string, code: i32, errno: string = ""): void {
  eprintln(agent + ": " + step + ": " + error + (errno.length > 0 ? " (" + errno + ")" : ""));
  const r = Json.obj().set("ok", Json.bool(false)).set("step", Json.str(step)).set("error", Json.str(error));
  if (errno.length > 0) r.set("errno", Json.str(errno));
  writeText("/task/result.json", r.toString() + "\n");
  exit(code);
}

/** The task's spec object; exits 2 when it is missing or not a JSON object. */
export function readSpec(agent: string): Json {
  const text = readText("/task/spec.json");
  if (text == null) failWith(agent, "spec", "cannot read /task/spec.json", 2, lastError().name);
  const v = parseJson(text!);
  if (v == null || !v.isObject()) failWith(agent, "spec", "/task/spec.json is not a JSON object", 2);
  return v!;
}

/** A workspace file's text, cut to `max` characters (marked), or null. */
export function readWorkspace(path: string, max: i32 = MAX_INPUT_CHARS): string | null {
  const t = readText(WS + path);
  if (t == null) return null;
  return t.length > max ? t.substring(0, max) + "\n[… cut at " + max.toString() + " characters]\n" : t;
}

/** Writes a workspace file, creating its directory; exits 3 when it cannot. */
export function writeWorkspace(agent: string, path: string, text: string): void {
  const full = WS + path;
  mkdir(dirname(full), true);
  if (!writeText(full, text)) failWith(agent, "write", "cannot write " + path, 3, lastError().name);
}

/** The strings of a JSON array member (missing: empty). */
export function strings(v: Json, key: string): string[] {
  const out = new Array<string>();
  const a = v.get(key);
  if (a == null || !a.isArray()) return out;
  for (let i = 0; i < a.length; i++) out.push(a.at(i)!.asString());
  return out;
}

/** A member of `v`, or a JSON null when it is missing (so callers need no null checks). */
export function member(v: Json, key: string): Json {
  const m = v.get(key);
  return m != null ? m : Json.nil();
}
