// The runtime's limits from a page's run options. Only the limits the page gave are passed:
// runtime/process.ts spreads them over its defaults, and a key present as `undefined` would
// override a default with nothing (no wall-time, memory or output bound at all).
import type { Limits } from "../runtime/process.ts";
import type { RunOptions } from "./protocol.ts";

export function limitsOf(o: Pick<RunOptions, "timeoutMs" | "memoryBytes" | "outputBytes">): Limits {
  const l: Limits = {};
  if (o.timeoutMs !== undefined) l.wallTimeMs = o.timeoutMs;
  if (o.memoryBytes !== undefined) l.memoryBytes = o.memoryBytes;
  if (o.outputBytes !== undefined) l.outputBytes = o.outputBytes;
  return l;
}
