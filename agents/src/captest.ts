// captest: drives each /cap/* file as an agent would, for the tests and the bench.
//
//   captest http URL [METHOD BODY]   prints "STATUS URL\n" then the body
//   captest httph URL NAME VALUE     a GET with one request header; prints as http
//   captest fetchloop URL N          N fetches; prints "ok N ELAPSED_NS"
//   captest stream URL               the body through clone → N/body; prints "bytes B ELAPSED_NS"
//   captest llm PROMPT [MAX]         prints the model's text; "usage P C" on stderr
//   captest llmloop N                N completions of "ping"; prints "ok N ELAPSED_NS"
//   captest llmstream PROMPT         through clone → N/ctl, N/data: prints each delta read, then "|"
//   captest sign CONTENT             prints the signed event
//   captest publish CONTENT          prints "id ACCEPTED"
//   captest query AUTHOR             prints one content per line, newest first
//   captest ws URL MSG...            sends each MSG, prints each echo; then closes
// A failure prints "captest: OP: ERRNO" to stderr and exits 1.

import { args, eprintln, exit, println, print } from "../sdk/process";
import { lastError } from "../sdk/errno";
import { File } from "../sdk/file";
import { Json, parseJson } from "../sdk/json";
import { monotonicNs } from "../sdk/clock";
import * as sys from "../sdk/sys";
import { httpFetch, llmComplete, nostrPublish, nostrQuery, nostrSign, wsConnect } from "../sdk/cap";

function die(op: string): void {
  eprintln("captest: " + op + ": " + lastError().name);
  exit(1);
}

const a = args();
const cmd = a.length > 0 ? a[0] : "";

if (cmd == "http") {
  const r = a.length > 3 ? httpFetch(a[1], a[2], a[3]) : httpFetch(a[1]);
  if (r == null) die("http");
  else {
    println(r.status.toString() + " " + r.url);
    print(r.body);
  }
} else if (cmd == "httph") {
  const r = httpFetch(a[1], "GET", null, Json.obj().set(a[2], Json.str(a[3])));
  if (r == null) die("http");
  else {
    println(r.status.toString() + " " + r.url);
    print(r.body);
  }
} else if (cmd == "fetchloop") {
  const n = I32.parseInt(a[2]);
  const t0 = monotonicNs();
  for (let i = 0; i < n; i++) if (httpFetch(a[1]) == null) die("fetch");
  println("ok " + n.toString() + " " + (monotonicNs() - t0).toString());
} else if (cmd == "stream") {
  const clone = File.open("/cap/http/clone", "r");
  if (clone == null) die("clone");
  const id = clone!.readText()!.trim();
  const ctl = File.open("/cap/http/" + id + "/ctl", "r+");
  if (ctl == null) die("ctl");
  if (!ctl!.writeText(Json.obj().set("url", Json.str(a[1])).toString())) die("ctl write");
  const t0 = monotonicNs();
  const body = File.open("/cap/http/" + id + "/body", "r");
  if (body == null) die("body");
  let total: u64 = 0;
  const CHUNK: usize = 1 << 20;
  const buf = heap.alloc(CHUNK);
  while (true) {
    const got = sys.read(body!.fd, buf, CHUNK);
    if (got < 0) die("read body");
    if (got == 0) break;
    total += <u64>got;
  }
  println("bytes " + total.toString() + " " + (monotonicNs() - t0).toString());
  body!.close();
  ctl!.close();
  clone!.close();
} else if (cmd == "llm") {
  const r = llmComplete(a[1], "", a.length > 2 ? I32.parseInt(a[2]) : 0);
  if (r == null) die("llm");
  else {
    print(r.text);
    eprintln("usage " + r.promptTokens.toString() + " " + r.completionTokens.toString() + " " + r.finishReason);
  }
} else if (cmd == "llmloop") {
  const n = I32.parseInt(a[1]);
  const t0 = monotonicNs();
  for (let i = 0; i < n; i++) if (llmComplete("ping") == null) die("llm");
  println("ok " + n.toString() + " " + (monotonicNs() - t0).toString());
} else if (cmd == "llmstream") {
  const clone = File.open("/cap/llm/clone", "r");
  if (clone == null) die("clone");
  const id = clone!.readText()!.trim();
  const ctl = File.open("/cap/llm/" + id + "/ctl", "r+");
  if (ctl == null) die("ctl");
  if (!ctl!.writeText(a[1])) die("ctl write");
  const data = File.open("/cap/llm/" + id + "/data", "r");
  if (data == null) die("data");
  while (true) {
    const d = data!.read(65536);
    if (d == null) die("data read");
    if (d!.length == 0) break;
    print(String.UTF8.decode(d!.slice().buffer) + "|");
  }
  println("");
  data!.close();
  ctl!.close();
  clone!.close();
} else if (cmd == "sign") {
  const e = nostrSign(1, a[1]);
  if (e == null) die("sign");
  else println(e.toString());
} else if (cmd == "publish") {
  const p = nostrPublish(1, a[1]);
  if (p == null) die("publish");
  else println(p.id + " " + (p.accepted ? "accepted" : "refused"));
} else if (cmd == "query") {
  const f = parseJson('{"kinds":[1]}')!;
  f.set("authors", Json.arr().push(Json.str(a[1])));
  const list = nostrQuery(f);
  if (list == null) die("query");
  else for (let i = 0; i < list.length; i++) println(list.at(i)!.getString("content"));
} else if (cmd == "ws") {
  const c = wsConnect(a[1]);
  if (c == null) die("ws connect");
  else {
    for (let i = 2; i < a.length; i++) {
      if (!c.send(a[i])) die("ws send");
      const m = c.recv();
      if (m == null) die("ws recv");
      else println(m);
    }
    c.close();
  }
} else {
  eprintln("captest: unknown command " + cmd);
  exit(2);
}
