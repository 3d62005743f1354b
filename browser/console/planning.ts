// The console's planning panel, over the edge's planning API (NIP-98 signed, the owner is the
// signer's key): start a run from an idea, list the runs, watch one (phases with their scores,
// verdicts and artifacts; events) while it runs, resume a paused or failed one, read an artifact
// in the workspace view, see parked ideas, add a webhook. Loaded when the person opens the panel,
// so an edge without the API costs the page nothing until then.
import type { Edge } from "./edge.ts";

/** A run as listed (GET /api/planning/runs). */
interface RunRow { id: string; idea: string; status: string; phase: string | null; workspace: string; createdAt: string; updatedAt: string }

/** One try at a phase: its artifact and the reviewer's answer (paths are the workspace's). */
interface Iteration { n: number; artifact: string | null; review: string | null; verdict: string | null; score: number | null }

/** A phase of a pass (a PIVOT starts another pass): the kept artifact once it is done, and every try. */
interface PhaseRow { phase: string; pass: number; artifact: string | null; score: number | null; review: string | null; verdict: string | null; iterations: Iteration[] }

interface Parked { idea: string; refinedIdea?: string | null; run: string; phase: string; reason: string; revisitMonths: number }

/** GET /api/planning/runs/ID (edge/planning/store.ts). */
interface RunDetail extends RunRow {
  refinedIdea: string | null;
  verdict: string | null;
  pivots: number;
  tokens: number;
  calls: number;
  package: { path: string } | null;
  parked: Parked | null;
  error: { phase?: string; code?: string; message?: string } | null;
  phases: PhaseRow[];
  events: { seq: number; type: string; time: string; data: Record<string, unknown> }[];
}

export interface PlanningContext {
  $: <T extends HTMLElement = HTMLElement>(id: string) => T;
  act: (fn: () => Promise<void> | void) => (ev?: Event) => Promise<void>;
  /** The edge's signed requests (as whoever the page signs as now). */
  edge: Edge;
  /** Opens `path` of workspace `ws` in the workspace view. */
  openArtifact: (ws: string, path: string) => Promise<void>;
}

const RESUMABLE = new Set(["paused", "failed"]);
const POLL_MS = 3000;

const cell = (text: string): HTMLTableCellElement => {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
};
const button = (label: string, fn: () => Promise<void>, act: PlanningContext["act"]): HTMLButtonElement => {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", act(fn));
  return b;
};
const when = (iso?: string): string => (iso ? new Date(iso).toLocaleString() : "");

/** The best score a phase's reviews gave so far (the kept one's once it is done). */
const bestScore = (p: PhaseRow): number | null =>
  p.score ?? p.iterations.reduce<number | null>((best, it) => (it.score !== null && (best === null || it.score > best) ? it.score : best), null);

const parkedText = (p: Parked): string =>
  [p.idea, p.refinedIdea && p.refinedIdea !== p.idea ? `(as "${p.refinedIdea}")` : "", `at ${p.phase}`, p.reason, p.revisitMonths ? `revisit in ${p.revisitMonths} months` : "", `(run ${p.run})`].filter(Boolean).join(" · ");

/** What an event says, in a line: its data's telling fields (the rest is in the webhook's body). */
function eventText(e: RunDetail["events"][number]): string {
  const d = e.data;
  const parts = [new Date(e.time).toLocaleTimeString(), e.type];
  for (const k of ["phase", "verdict", "review", "score", "status", "reason", "refinedIdea", "package"] as const)
    if (typeof d[k] === "string" || typeof d[k] === "number") parts.push(k === "score" ? `score ${d[k]}` : String(d[k]));
  const err = d.error as { code?: string; message?: string } | undefined;
  if (err?.message) parts.push(`${err.code ?? "error"}: ${err.message}`);
  return parts.join(" · ");
}

/** The form's numbers: empty is absent, anything else a whole number ≥ min, or an error naming the field. */
function whole(value: string, field: string, min: number): number | undefined {
  if (!value.trim()) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${field} is a whole number of at least ${min}`);
  return n;
}

export function setupPlanning(c: PlanningContext): void {
  const { $, act, edge } = c;
  let loaded = false;
  let open: string | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const listRuns = async (): Promise<void> => {
    const { runs } = await edge.json<{ runs: RunRow[] }>("/api/planning/runs");
    $("plan-runs").replaceChildren(...runs.map((r) => {
      const tr = document.createElement("tr");
      tr.append(cell(r.idea), cell(r.status), cell(r.phase ?? ""), cell(r.workspace), cell(when(r.updatedAt)));
      const td = document.createElement("td");
      td.append(button(`Open run ${r.id}`, () => showRun(r.id), act));
      tr.append(td);
      return tr;
    }));
    $("plan-runs-none").hidden = runs.length > 0;
  };

  const listParked = async (): Promise<void> => {
    const { parked } = await edge.json<{ parked: Parked[] }>("/api/planning/parked");
    $("plan-parked").replaceChildren(...parked.map((p) => {
      const li = document.createElement("li");
      li.textContent = parkedText(p);
      return li;
    }));
    $("plan-parked-none").hidden = parked.length > 0;
  };

  const showRun = async (id: string): Promise<void> => {
    clearTimeout(timer);
    const run = await edge.json<RunDetail>(`/api/planning/runs/${encodeURIComponent(id)}`);
    if (open !== id) $("plan-package").hidden = true;
    open = id;
    $("plan-run").hidden = false;
    $("plan-run-id").textContent = id;
    $("plan-run-info").textContent = [
      `${run.status}${run.phase ? ` at ${run.phase}` : ""}`, `workspace ${run.workspace}`,
      run.verdict ? `verdict ${run.verdict}` : "", run.pivots ? `${run.pivots} pivot${run.pivots > 1 ? "s" : ""}` : "",
      run.refinedIdea && run.refinedIdea !== run.idea ? `now "${run.refinedIdea}"` : "",
      `${run.tokens} tokens in ${run.calls} calls`, `updated ${when(run.updatedAt)}`,
      run.error?.message ? `error${run.error.phase ? ` in ${run.error.phase}` : ""}: ${run.error.code ? run.error.code + " " : ""}${run.error.message}` : "",
    ].filter(Boolean).join(", ");
    $("plan-run-info").className = run.status === "failed" || run.status === "killed" ? "bad" : run.status === "completed" ? "good" : "";
    $("plan-run-parked").hidden = !run.parked;
    $("plan-run-parked").textContent = run.parked ? `Parked: ${parkedText(run.parked)}` : "";
    $("plan-resume").hidden = !RESUMABLE.has(run.status);
    $("plan-package-get").hidden = !run.package;
    $("plan-phases").replaceChildren(...run.phases.map((p) => {
      const tr = document.createElement("tr");
      const best = bestScore(p);
      const last = p.iterations.at(-1);
      tr.append(
        cell(p.pass ? `${p.phase} (pass ${p.pass + 1})` : p.phase), cell(p.review ?? (p.artifact ? "" : `working${last?.verdict ? `, last ${last.verdict}` : ""}`)),
        cell(best === null ? "" : String(best)), cell(String(p.iterations.length)), cell(p.verdict ?? ""),
      );
      const td = document.createElement("td");
      const path = p.artifact ?? last?.artifact;
      if (path) td.append(button(path, () => c.openArtifact(run.workspace, path), act));
      tr.append(td);
      return tr;
    }));
    if (run.package) {
      const path = run.package.path;
      const pkg = button(path, () => c.openArtifact(run.workspace, path), act);
      $("plan-package-path").replaceChildren(pkg);
    } else $("plan-package-path").replaceChildren();
    $("plan-events").replaceChildren(...run.events.slice(-50).map((e) => {
      const li = document.createElement("li");
      li.textContent = eventText(e);
      return li;
    }));
    // A running run is watched until it stops or another is opened (or the panel is closed).
    if (run.status === "running")
      timer = setTimeout(() => {
        if (open === id && $<HTMLDetailsElement>("planning").open) void act(() => Promise.all([showRun(id), listRuns()]).then(() => {}))();
      }, POLL_MS);
  };

  // The package as the API gives it (from R2), read here; its workspace copy opens in the workspace view.
  $("plan-package-get").addEventListener("click", act(async () => {
    if (!open) return;
    const r = await edge.fetch(`/api/planning/runs/${encodeURIComponent(open)}/package`);
    $("plan-package").textContent = await r.text();
    $("plan-package").hidden = false;
  }));

  $("planning").addEventListener("toggle", act(async () => {
    if (!$<HTMLDetailsElement>("planning").open) return clearTimeout(timer);
    if (loaded) return;
    loaded = true;
    try {
      await Promise.all([listRuns(), listParked()]);
    } catch (e) {
      loaded = false;
      throw e;
    }
  }));
  $("plan-refresh").addEventListener("click", act(() => Promise.all([listRuns(), listParked(), open ? showRun(open) : undefined]).then(() => {})));

  $("plan-new").addEventListener("submit", act(async () => {
    const idea = $<HTMLTextAreaElement>("plan-idea").value.trim();
    if (!idea) throw new Error("a run needs an idea");
    const body: Record<string, unknown> = { idea };
    const llm = $<HTMLInputElement>("plan-llm").value.trim();
    const workspace = $<HTMLInputElement>("plan-workspace").value.trim();
    if (llm) body.llm = llm;
    if (workspace) body.workspace = workspace;
    const numbers: [string, string, string, number][] = [["maxPivots", "plan-pivots", "Pivots at most", 0], ["reviewIterations", "plan-reviews", "Review rounds", 1], ["budgetTokens", "plan-budget", "Token budget", 1]];
    for (const [key, id, field, min] of numbers) {
      const n = whole($<HTMLInputElement>(id).value, field, min);
      if (n !== undefined) body[key] = n;
    }
    const started = await edge.json<RunRow>("/api/planning/runs", { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    $("plan-status").textContent = `started run ${started.id} in workspace ${started.workspace}`;
    await listRuns();
    await showRun(started.id);
  }));

  $("plan-resume").addEventListener("click", act(async () => {
    if (!open) return;
    const r = await edge.json<{ id: string; status: string }>(`/api/planning/runs/${encodeURIComponent(open)}/resume`, { method: "POST", body: "" });
    $("plan-status").textContent = `run ${r.id}: ${r.status}`;
    await Promise.all([showRun(r.id), listRuns()]);
  }));

  $("plan-hook").addEventListener("submit", act(async () => {
    const url = $<HTMLInputElement>("hook-url").value.trim();
    if (!URL.canParse(url) || !/^https?:/.test(url)) throw new Error("a webhook is an http(s) URL");
    const events = $<HTMLInputElement>("hook-events").value.split(",").map((s) => s.trim()).filter(Boolean);
    const secret = $<HTMLInputElement>("hook-secret").value;
    const body = { url, ...(events.length ? { events } : {}), ...(secret ? { secret } : {}) };
    const h = await edge.json<{ id: string; url: string; events?: string[] }>("/api/webhooks", { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    $("hook-status").textContent = `webhook ${h.id} for ${h.url}${h.events?.length ? ` (${h.events.join(", ")})` : ""}`;
    $<HTMLInputElement>("hook-secret").value = "";
  }));
}
