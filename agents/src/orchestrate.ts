// orchestrate: the marketplace demo — splits a text, hires word-count agents for the parts through
// /cap/nostr/jobs, and combines their answers. Every hire is file operations only.
//
// spec (/task/spec.json), the NIP-90 shape `oanix serve` writes:
//   {"input":[{"data",...}], "params":{"parts":"3", "kind":"5050"}}
// The inputs' data (joined by newlines) is cut into `parts` pieces of whole words (1..16, default
// 2). All jobs are posted first (jobs/new, kind `kind`, op count), then each ID/result is read, so
// the hired agents work in parallel. Each answer must read "<n> words"; the result is
//   {"content":"<total> words","parts":[n1, n2, ...],"jobs":["id1", ...]}
// Exit 2 for a spec it cannot use, 1 when a hire fails (the errno is on stderr).

import { File, Json, eprintln, exit, lastError, parseJson, readSpec, readText, stringify, writeText } from "../sdk";

function fail(code: i32, why: string): void {
  eprintln("orchestrate: " + why);
  exit(code);
}

function isSpace(c: i32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13;
}

/** The words of `s`, in order. */
function words(s: string): string[] {
  const out = new Array<string>();
  let start = -1;
  for (let i = 0; i <= s.length; i++) {
    const space = i == s.length || isSpace(s.charCodeAt(i));
    if (!space && start < 0) start = i;
    if (space && start >= 0) {
      out.push(s.substring(start, i));
      start = -1;
    }
  }
  return out;
}

/** Posts one job; answers its id, or "" after reporting why. */
function post(kind: i32, text: string): string {
  const req = Json.obj();
  req.set("kind", Json.num(<f64>kind));
  req.set("input", Json.str(text));
  const params = Json.obj();
  params.set("op", Json.str("count"));
  req.set("params", params);
  const f = File.open("/cap/nostr/jobs/new", "r+");
  if (f == null) return "";
  if (!f!.writeText(stringify(req))) return "";
  const reply = f!.readText();
  f!.close();
  if (reply == null) return "";
  const r = parseJson(reply!);
  return r != null && r.isObject() ? r!.getString("id", "") : "";
}

function main(): void {
  const spec = readSpec("orchestrate");
  const input = spec.get("input");
  if (input == null || !input.isArray()) return fail(2, "/task/spec.json: no input array");
  const params = spec.get("params");
  const parts = params != null && params.isObject() ? I32.parseInt(params!.getString("parts", "2")) : 2;
  const kind = params != null && params.isObject() ? I32.parseInt(params!.getString("kind", "5050")) : 5050;
  if (parts < 1 || parts > 16) return fail(2, "parts must be 1..16");
  const all = new Array<string>();
  for (let i = 0; i < input!.length; i++) {
    const item = input!.at(i);
    if (item != null && item.isObject()) {
      const w = words(item.getString("data", ""));
      for (let j = 0; j < w.length; j++) all.push(w[j]);
    }
  }
  const n = parts < all.length ? parts : all.length > 0 ? all.length : 1;
  const ids = new Array<string>();
  for (let p = 0; p < n; p++) {
    const from = (all.length * p) / n;
    const to = (all.length * (p + 1)) / n;
    const id = post(kind, all.slice(from, to).join(" "));
    if (id.length == 0) return fail(1, "jobs/new: " + lastError().toString());
    ids.push(id);
  }
  let total = 0;
  const counts = Json.arr();
  const jobs = Json.arr();
  for (let p = 0; p < ids.length; p++) {
    const answer = readText("/cap/nostr/jobs/" + ids[p] + "/result");
    if (answer == null) return fail(1, "job " + ids[p] + ": " + lastError().toString());
    const sp = answer!.indexOf(" ");
    if (sp <= 0 || answer!.substring(sp) != " words") return fail(1, "job " + ids[p] + " answered \"" + answer! + "\", not \"<n> words\"");
    const count = I32.parseInt(answer!.substring(0, sp));
    total += count;
    counts.push(Json.num(<f64>count));
    jobs.push(Json.str(ids[p]));
  }
  const out = Json.obj();
  out.set("content", Json.str(total.toString() + " words"));
  out.set("parts", counts);
  out.set("jobs", jobs);
  if (!writeText("/task/result.json", stringify(out) + "\n")) fail(1, lastError().toString());
}

main();
