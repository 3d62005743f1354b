// summarize: the capabilities demo. Fetches a page through /cap/http, asks the model through
// /cap/llm to summarise it, and publishes the summary as a Nostr note through /cap/nostr. The URL
// comes from /task/spec.json {"url": …} or the first argument; the result goes to
// /task/result.json: {"ok", "url", "status", "summary", "note": {"id", "accepted"}, "tokens"}.
//
//   oanix run agents/build/summarize.wasm --cap http=example.com --cap llm=offline \
//     --cap nostr -- https://example.com/
// Exit: 0 done, 1 a capability failed (the errno is printed and in the result), 2 no URL.

import { args, eprintln, exit, println } from "../sdk/process";
import { lastError } from "../sdk/errno";
import { readText, writeText } from "../sdk/fs";
import { Json, parseJson } from "../sdk/json";
import { log } from "../sdk/log";
import { httpFetch, llmComplete, nostrPublish } from "../sdk/cap";

/** Most characters of the page sent to the model. */
const MAX_PAGE = 12000;

function finish(result: Json, code: i32): void {
  writeText("/task/result.json", result.toString() + "\n");
  exit(code);
}

function failed(result: Json, step: string): void {
  const why = lastError().name;
  eprintln("summarize: " + step + ": " + why);
  result.set("ok", Json.bool(false));
  result.set("step", Json.str(step));
  result.set("errno", Json.str(why));
  finish(result, 1);
}

let url = "";
const spec = readText("/task/spec.json");
if (spec != null) {
  const v = parseJson(spec!);
  if (v != null && v.isObject()) url = v.getString("url");
}
const a = args();
if (url.length == 0 && a.length > 0) url = a[0];
const result = Json.obj();
if (url.length == 0) {
  eprintln("summarize: no URL (give {\"url\"} in /task/spec.json or an argument)");
  result.set("ok", Json.bool(false)).set("error", Json.str("no URL"));
  finish(result, 2);
}
result.set("url", Json.str(url));

const page = httpFetch(url);
if (page == null) failed(result, "fetch");
result.set("status", Json.num(<f64>page!.status));
log("summarize.fetched", Json.obj().set("url", Json.str(page!.url)).set("status", Json.num(<f64>page!.status)).set("chars", Json.num(<f64>page!.body.length)));

const text = page!.body.length > MAX_PAGE ? page!.body.substring(0, MAX_PAGE) : page!.body;
const answer = llmComplete("Summarise this page in three sentences.\n\n" + text, "You write short, factual summaries.", 400);
if (answer == null) failed(result, "complete");
const summary = answer!.text.trim();
result.set("summary", Json.str(summary));
result.set("tokens", Json.num(<f64>(answer!.promptTokens + answer!.completionTokens)));

const tags = Json.arr().push(Json.arr().push(Json.str("r")).push(Json.str(page!.url)));
const note = nostrPublish(1, summary + "\n\n" + page!.url, tags);
if (note == null) failed(result, "publish");
result.set("note", Json.obj().set("id", Json.str(note!.id)).set("accepted", Json.bool(note!.accepted)));
result.set("ok", Json.bool(true));
println(summary);
println("note " + note!.id + (note!.accepted ? " accepted" : " not accepted by any relay"));
finish(result, 0);
