// summarize: the capabilities demo. Fetches a page through /cap/http, asks the model through
// /cap/llm to summarise it, and publishes the summary as a Nostr note through /cap/nostr. The URL
// comes from /task/spec.json {"url": …}, the first input of a NIP-90 job spec, or the first
// argument; the result goes to /task/result.json: {"ok", "url", "status", "summary", "content"
// (the summary again: a served job's answer), "note": {"id", "accepted"}, "tokens"}.
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
// Served as a NIP-90 job (oanix serve): the first input names the page; a url input the provider
// already fetched (it was granted http) carries the page in `data` and its URL in `ref`.
let prefetched: string | null = null;
const spec = readText("/task/spec.json");
if (spec != null) {
  const v = parseJson(spec!);
  if (v != null && v.isObject()) {
    url = v.getString("url");
    const input = v.get("input");
    if (url.length == 0 && input != null && input.isArray() && input.length > 0) {
      const first = input.at(0);
      if (first != null && first.isObject()) {
        const ref = first.getString("ref", "");
        if (ref.length > 0) {
          url = ref;
          prefetched = first.getString("data", "");
        } else url = first.getString("data", "");
      }
    }
  }
}
const a = args();
if (url.length == 0 && a.length > 0) url = a[0];
const result = Json.obj();
if (url.length == 0) {
  eprintln("summarize: no URL (give {\"url\"} in /task/spec.json, a job input, or an argument)");
  result.set("ok", Json.bool(false)).set("error", Json.str("no URL"));
  finish(result, 2);
}
result.set("url", Json.str(url));

let body = "";
let pageUrl = url;
if (prefetched != null) body = prefetched!;
else {
  const page = httpFetch(url);
  if (page == null) failed(result, "fetch");
  result.set("status", Json.num(<f64>page!.status));
  body = page!.body;
  pageUrl = page!.url;
}
log("summarize.fetched", Json.obj().set("url", Json.str(pageUrl)).set("chars", Json.num(<f64>body.length)).set("prefetched", Json.bool(prefetched != null)));

const text = body.length > MAX_PAGE ? body.substring(0, MAX_PAGE) : body;
const answer = llmComplete("Summarise this page in three sentences.\n\n" + text, "You write short, factual summaries.", 400);
if (answer == null) failed(result, "complete");
const summary = answer!.text.trim();
result.set("summary", Json.str(summary));
// A job's answer (oanix serve publishes `content` as the result).
result.set("content", Json.str(summary));
result.set("tokens", Json.num(<f64>(answer!.promptTokens + answer!.completionTokens)));

const tags = Json.arr().push(Json.arr().push(Json.str("r")).push(Json.str(pageUrl)));
const note = nostrPublish(1, summary + "\n\n" + pageUrl, tags);
if (note == null) failed(result, "publish");
result.set("note", Json.obj().set("id", Json.str(note!.id)).set("accepted", Json.bool(note!.accepted)));
result.set("ok", Json.bool(true));
println(summary);
println("note " + note!.id + (note!.accepted ? " accepted" : " not accepted by any relay"));
finish(result, 0);
