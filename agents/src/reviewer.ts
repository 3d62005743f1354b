// reviewer: scores one artifact of a planning run. Reads /task/spec.json
//   {"idea", "phase": {"name", "purpose", "sections"}, "artifact": PATH, "out": PATH, "maxTokens"}
// asks /cap/llm for a review and writes the answer to `out` in the workspace. The answer carries
// REVIEW: ACCEPT|REVISE and SCORE: n (0–10), read by the host (agents/host/planning/markers.ts).
// result: {"ok": true, "tokens"} or {"ok": false, ..}; exit codes as phase.ts.
import { lastError } from "../sdk/errno";
import { writeText } from "../sdk/fs";
import { Json } from "../sdk/json";
import { llmComplete } from "../sdk/cap";
import { failWith, readSpec, readWorkspace, member, strings, writeWorkspace } from "./planning/common";

const AGENT = "reviewer";

const spec = readSpec(AGENT);
const phase = member(spec, "phase");
const artifact = spec.getString("artifact");
const outPath = spec.getString("out");
if (!phase.isObject() || artifact.length == 0 || outPath.length == 0) failWith(AGENT, "spec", "needs phase, artifact and out", 2);
const text = readWorkspace(artifact, 12000);
if (text == null) failWith(AGENT, "input", "cannot read " + artifact, 1, lastError().name);
const sections = strings(phase, "sections");

let prompt = "Review the " + phase.getString("name") + " phase of a plan for: " + spec.getString("idea") + "\n";
prompt += "Its purpose: " + phase.getString("purpose") + ". Required sections: " + sections.join(", ") + ".\n";
prompt += "Answer with a line REVIEW: ACCEPT or REVIEW: REVISE, a line SCORE: n (0 to 10), then what must change.\n\n";
prompt += "--- " + artifact + " ---\n" + text! + "\n";
const answer = llmComplete(prompt, "You are a demanding reviewer of business plans. Score honestly.", <i32>spec.getNumber("maxTokens", 0));
if (answer == null) failWith(AGENT, "complete", "the model did not answer", 1, lastError().name);
writeWorkspace(AGENT, outPath, answer!.text.trim() + "\n");
const tokens = answer!.promptTokens + answer!.completionTokens;
writeText("/task/result.json", Json.obj().set("ok", Json.bool(true)).set("tokens", Json.num(<f64>tokens)).toString() + "\n");
