// The agent's job: /task/spec.json, read once, as a JSON object.
import { lastError } from "./errno";
import { readText } from "./fs";
import { Json, parseJson } from "./json";
import { eprintln, exit } from "./process";

/**
 * /task/spec.json as a JSON object. A spec that cannot be read or is not an object ends the agent
 * with exit 2 and one line on stderr naming `agent` and the reason.
 */
export function readSpec(agent: string): Json {
  const text = readText("/task/spec.json");
  if (text == null) {
    eprintln(agent + ": " + lastError().toString());
    exit(2);
  }
  const spec = parseJson(text!);
  if (spec == null || !spec.isObject()) {
    eprintln(agent + ": /task/spec.json: not a JSON object");
    exit(2);
  }
  return spec!;
}
