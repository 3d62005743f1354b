// jobcount: the trivial NIP-90 job agent that `oanix serve` runs for tests and benchmarks.
//
// spec (/task/spec.json), as the provider writes it:
//   {"id","kind","customer","created_at","input":[{"data","type",...}],"params":{"op":"count"},...}
// It joins every input's `data` with a newline and answers, in /task/result.json,
//   {"content":"<n> words"}           op "count" (the default)
//   {"content":"<TEXT IN UPPER CASE>"} op "upper" (ASCII letters only)
// Words are maximal runs of characters other than space, tab, CR and LF.
// Exit 2 with "jobcount: <reason>" on stderr for a spec it cannot use (missing, not JSON, no
// input array, an unknown op); exit 1 when the result cannot be written.

import { Json, eprintln, exit, lastError, readSpec, stringify, writeText } from "../sdk";

function fail(code: i32, why: string): void {
  eprintln("jobcount: " + why);
  exit(code);
}

function countWords(s: string): i32 {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const space = c == 32 || c == 9 || c == 10 || c == 13;
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

function upper(s: string): string {
  const out = new Array<string>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out.push(String.fromCharCode(c >= 97 && c <= 122 ? c - 32 : c));
  }
  return out.join("");
}

function main(): void {
  const spec = readSpec("jobcount");
  const input = spec.get("input");
  if (input == null || !input.isArray()) return fail(2, "/task/spec.json: no input array");
  const parts = new Array<string>();
  for (let i = 0; i < input!.length; i++) {
    const item = input!.at(i);
    parts.push(item != null && item.isObject() ? item.getString("data", "") : "");
  }
  const joined = parts.join("\n");

  const params = spec.get("params");
  const op = params != null && params.isObject() ? params!.getString("op", "count") : "count";
  let content: string;
  if (op == "count") content = countWords(joined).toString() + " words";
  else if (op == "upper") content = upper(joined);
  else return fail(2, "unknown op \"" + op + "\" (count or upper)");

  const result = Json.obj();
  result.set("content", Json.str(content));
  if (!writeText("/task/result.json", stringify(result) + "\n")) fail(1, lastError().toString());
}

main();
