// hire: an agent that hires another agent with file operations only, through the NIP-90 customer
// files of /cap/nostr/jobs (agents/host/jobs-service.ts).
//
// spec (/task/spec.json), the NIP-90 shape `oanix serve` writes:
//   {"input":[{"data",...}], "params":{"kind":"5050", "op"?: "..."}}
// It writes {"kind":<params.kind>,"input":<the inputs' data joined by newlines>,"params":{"op"}}
// to /cap/nostr/jobs/new, reads {"id"} back on the same handle, then reads
// /cap/nostr/jobs/<id>/result (which waits for the hired agent's answer) and answers, in
// /task/result.json, {"content":"<the hired agent's content>"}.
// Exit 2 for a spec it cannot use, 1 when hiring fails (the errno is on stderr).

import { File, Json, eprintln, exit, lastError, parseJson, readSpec, readText, stringify, writeText } from "../sdk";

function fail(code: i32, why: string): void {
  eprintln("hire: " + why);
  exit(code);
}

function main(): void {
  const spec = readSpec("hire");
  const input = spec.get("input");
  const params = spec.get("params");
  if (input == null || !input.isArray() || params == null || !params.isObject()) return fail(2, "/task/spec.json: needs input and params");
  const parts = new Array<string>();
  for (let i = 0; i < input!.length; i++) {
    const item = input!.at(i);
    if (item != null && item.isObject()) parts.push(item.getString("data", ""));
  }
  const kind = I32.parseInt(params!.getString("kind", "5050"));

  const req = Json.obj();
  req.set("kind", Json.num(<f64>kind));
  req.set("input", Json.str(parts.join("\n")));
  const op = params!.getString("op", "");
  if (op.length > 0) {
    const p = Json.obj();
    p.set("op", Json.str(op));
    req.set("params", p);
  }
  const f = File.open("/cap/nostr/jobs/new", "r+");
  if (f == null) return fail(1, lastError().toString());
  if (!f!.writeText(stringify(req))) return fail(1, lastError().toString());
  const reply = f!.readText();
  f!.close();
  if (reply == null) return fail(1, lastError().toString());
  const r = parseJson(reply!);
  if (r == null || !r.isObject()) return fail(1, "jobs/new answered " + reply!);
  const id = r!.getString("id", "");

  const result = readText("/cap/nostr/jobs/" + id + "/result");
  if (result == null) return fail(1, lastError().toString());
  const out = Json.obj();
  out.set("content", Json.str(result!));
  if (!writeText("/task/result.json", stringify(out) + "\n")) fail(1, lastError().toString());
}

main();
