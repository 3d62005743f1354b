// Structured events: log(event, fields) appends one JSON line to /logs/events.jsonl.
//
//   {"ts":1732180000000,"event":"file","path":"a.txt","bytes":120}
//
// The file is opened once in append mode and each line goes out in a single write, so lines
// from concurrent writers never interleave mid-line. Without /logs (or if it cannot be opened)
// log() does nothing and returns false: logging must never take an agent down.

import { nowMs } from "./clock";
import { Json, quote } from "./json";
import * as sys from "./sys";

export const EVENTS_PATH = "/logs/events.jsonl";

const UNTRIED: i32 = -1;
const UNAVAILABLE: i32 = -2;
let eventsFd: i32 = UNTRIED;

function eventsFile(): i32 {
  if (eventsFd == UNTRIED) {
    eventsFd = UNAVAILABLE;
    const ref = sys.resolve(EVENTS_PATH);
    if (ref != null) {
      const fd = sys.open(ref, sys.O_CREAT, sys.FD_APPEND, sys.RIGHTS_WRITE);
      if (fd >= 0) eventsFd = fd;
    }
  }
  return eventsFd;
}

/**
 * Appends {"ts":<ms>,"event":event,...fields}. `fields` should be an object; its "ts" and
 * "event" members are ignored. Returns whether the line was written.
 */
export function log(event: string, fields: Json | null = null): bool {
  const fd = eventsFile();
  if (fd < 0) return false;
  const out = new Array<string>();
  out.push("{\"ts\":");
  out.push(nowMs().toString());
  out.push(",\"event\":");
  out.push(quote(event));
  if (fields != null && fields.isObject()) {
    const keys = fields.keys();
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k == "ts" || k == "event") continue;
      out.push(",");
      out.push(quote(k));
      out.push(":");
      fields.get(k)!.writeTo(out, 0, 0);
    }
  }
  out.push("}\n");
  const line = String.UTF8.encode(out.join(""));
  return sys.writeAll(<u32>fd, changetype<usize>(line), <usize>line.byteLength) == 0;
}
