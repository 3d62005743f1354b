// plans/RUN/package.md: the synthesis with every artifact linked (links relative to the package,
// so the folder can be copied or served as it is).
import type { FileService } from "../../../runtime/types.ts";
import type { PhaseDef } from "../../planning/phases.ts";
import { readText, writeText } from "./files.ts";
import { runDir, type RunRecord } from "./record.ts";

export async function writePackage(fs: FileService, rec: RunRecord, phases: readonly PhaseDef[]): Promise<string> {
  const dir = runDir(rec.run);
  const rel = (p: string): string => (p.startsWith(dir + "/") ? p.slice(dir.length + 1) : p);
  const synthesis = rec.phases.find((r) => r.phase === "synthesis");
  const lines = [`# Plan: ${rec.refinedIdea ?? rec.idea}`, ""];
  if (rec.refinedIdea) lines.push(`_First idea: ${rec.idea}; refined through ${rec.pivots} pivot(s)._`, "");
  lines.push(`Run \`${rec.run}\`, ${rec.phases.length} phases, kill test ${rec.verdict ?? "not run"}, ${rec.tokens} tokens in ${rec.calls} model calls (${rec.llm}).`, "");
  if (synthesis) lines.push("## Synthesis", "", ((await readText(fs, synthesis.artifact)) ?? "").replace(/^# .*\n/, "").trim(), "");
  lines.push("## Artifacts", "", "| # | phase | score | review | iterations |", "|---|---|---|---|---|");
  rec.phases.forEach((r, i) => {
    const tries = r.iterations.map((it) => `[${it.n}](${rel(it.artifact)})${it.review ? ` ([review](${rel(it.review)}))` : ""}`).join(", ");
    lines.push(`| ${i + 1} | [${r.phase}](${rel(r.artifact)}) | ${r.score ?? "—"} | ${r.review ?? "—"} | ${tries} |`);
  });
  for (const p of rec.pivotHistory) lines.push("", `Pivot ${p.pivot}: “${p.from}” → “${p.to}”; the artifacts before it are in [${rel(p.dir)}/](${rel(p.dir)}/).`);
  const missing = phases.filter((ph) => !rec.phases.some((r) => r.phase === ph.name)).map((ph) => ph.name);
  if (missing.length) lines.push("", `Phases without an artifact: ${missing.join(", ")}.`);
  const path = `${dir}/package.md`;
  await writeText(fs, path, lines.join("\n") + "\n");
  return path;
}
