// The OANIX agent SDK for AssemblyScript. Agents see only files; this is how they touch them.
//
//   import { readText, parseJson, log, println, exit } from "../sdk";
//
// errno.ts    WASI errno names and lastError()
// path.ts     namespace path helpers (normalize, join, basename, dirname, relative)
// fs.ts       files by path: read/write/append/list/stat/exists/mkdir/remove/rename
// file.ts     open handles (File.open/read/write/close) for ctl files and streaming
// utf8.ts     strict UTF-8 decoding (invalid bytes become U+FFFD)
// json.ts     Json value, parseJson, stringify
// process.ts  args, env, exit, print to stdout/stderr
// clock.ts    nowMs, monotonicNs
// log.ts      log(event, fields) -> /logs/events.jsonl
// task.ts     readSpec: /task/spec.json as a JSON object
// cap.ts      /cap/* helpers: httpFetch, llmComplete, nostrSign/Publish/Query, wsConnect
// sys.ts      the raw layer (preopens, resolved paths, fd calls); import it as `* as sys`

export * from "./errno";
export * from "./path";
export * from "./fs";
export * from "./file";
export * from "./utf8";
export * from "./json";
export * from "./process";
export * from "./clock";
export * from "./log";
export * from "./task";
export * from "./cap";
