// phase: one phase of a planning run. Reads /task/spec.json, the earlier artifacts it names from
// /workspace, asks /cap/llm, and writes the artifact (Markdown) and its fields (JSON).
//
// spec: {"run", "idea", "index", "of", "iteration",
//        "phase": {"name", "purpose", "sections": [..]},
//        "decides": bool            (the kill test: ask for VERDICT / REFINED / REASON / REVISIT),
//        "inputs": ["plans/RUN/01-intake.md", ..]   (workspace paths of earlier artifacts),
//        "revise": {"artifact": PATH, "review": PATH}   (optional: the version to improve),
//        "out": {"md": PATH, "json": PATH}, "maxTokens": n}
// result: {"ok": true, "tokens"} or {"ok": false, "step", "error", "errno"?}.
// The markers in the answer are read by the host (agents/host/planning/markers.ts), not here.
// Exit: 0 done; 1 the model failed (errno in the result: EDQUOT budget, EIO provider, ..);
// 2 bad spec; 3 the workspace refused a write.
import { lastError } from "../sdk/errno";
import { writeText } from "../sdk/fs";
import { Json } from "../sdk/json";
import { llmComplete } from "../sdk/cap";
import { log } from "../sdk/log";
import { failWith, readSpec, readWorkspace, member, strings, writeWorkspace } from "./planning/common";

const AGENT = "phase";

const spec = readSpec(AGENT);
const phase = member(spec, "phase");
const out = member(spec, "out");
const idea = spec.getString("idea");
if (!phase.isObject() || !out.isObject() || idea.length == 0) failWith(AGENT, "spec", "needs idea, phase and out", 2);
const name = phase.getString("name");
const sections = strings(phase, "sections");
const mdPath = out.getString("md");
const jsonPath = out.getString("json");
if (name.length == 0 || mdPath.length == 0 || jsonPath.length == 0) failWith(AGENT, "spec", "needs phase.name, out.md and out.json", 2);

// The prompt: idea and phase first (a short model, or the offline one, sees them first).
let prompt = "Phase " + name + " of a plan for: " + idea + "\nPurpose: " + phase.getString("purpose") + ".\n\n";
prompt += "Write this phase's artifact in Markdown, each section under its own '## ' heading:\n";
for (let i = 0; i < sections.length; i++) prompt += "## " + sections[i] + "\n";
if (spec.getBool("decides")) {
  prompt += "\nEnd with one line VERDICT: GO, VERDICT: PIVOT or VERDICT: KILL. For PIVOT add a line REFINED: <the refined idea>. " +
    "For KILL add REASON: <why> and REVISIT: <months until the idea is worth another look>.\n";
}
const inputs = strings(spec, "inputs");
if (inputs.length > 0) prompt += "\nWhat earlier phases wrote:\n";
for (let i = 0; i < inputs.length; i++) {
  const t = readWorkspace(inputs[i]);
  if (t == null) failWith(AGENT, "input", "cannot read " + inputs[i], 1, lastError().name);
  prompt += "\n--- " + inputs[i] + " ---\n" + t! + "\n";
}
const revise = member(spec, "revise");
if (revise.isObject()) {
  const before = readWorkspace(revise.getString("artifact"));
  const review = readWorkspace(revise.getString("review"));
  if (before == null || review == null) failWith(AGENT, "revise", "cannot read the version or the review to address", 1, lastError().name);
  prompt += "\nYour previous version:\n" + before! + "\nThe reviewer's answer (address every point):\n" + review! + "\nWrite the revised artifact.\n";
}

const system = "You are the " + name + " phase of a planning run. Be concrete and brief; say what you do not know.";
const answer = llmComplete(prompt, system, <i32>spec.getNumber("maxTokens", 0));
if (answer == null) failWith(AGENT, "complete", "the model did not answer", 1, lastError().name);
const text = answer!.text.trim();

// Which required sections the answer has (a '## ' heading naming it, case-insensitive).
const lower = text.toLowerCase();
const fields = Json.arr();
const missing = Json.arr();
for (let i = 0; i < sections.length; i++) {
  const present = lower.indexOf("## " + sections[i].toLowerCase()) >= 0;
  fields.push(Json.obj().set("name", Json.str(sections[i])).set("present", Json.bool(present)));
  if (!present) missing.push(Json.str(sections[i]));
}

let md = "# " + name + "\n\n_Idea: " + idea + "_\n\n" + text + "\n";
if (missing.length > 0) {
  md += "\n---\nSections the answer lacks: ";
  for (let i = 0; i < missing.length; i++) md += (i > 0 ? ", " : "") + missing.at(i)!.asString();
  md += ".\n";
}
writeWorkspace(AGENT, mdPath, md);
const tokens = answer!.promptTokens + answer!.completionTokens;
const fj = Json.obj()
  .set("phase", Json.str(name))
  .set("iteration", Json.num(spec.getNumber("iteration", 1)))
  .set("sections", fields)
  .set("missing", missing)
  .set("model", Json.str(answer!.model))
  .set("finish_reason", Json.str(answer!.finishReason))
  .set("prompt_tokens", Json.num(<f64>answer!.promptTokens))
  .set("completion_tokens", Json.num(<f64>answer!.completionTokens));
writeWorkspace(AGENT, jsonPath, fj.toString() + "\n");
log("phase.done", Json.obj().set("phase", Json.str(name)).set("tokens", Json.num(<f64>tokens)));
writeText("/task/result.json", Json.obj().set("ok", Json.bool(true)).set("tokens", Json.num(<f64>tokens)).toString() + "\n");
