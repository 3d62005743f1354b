// The console's planning panel, over the edge's planning API (NIP-98 signed, the owner is the
// signer's key): start a run from an idea, list the runs, watch one (phases with their scores,
// verdicts and artifacts; events) while it runs, resume a paused or failed one, read an artifact
// in the workspace view, see parked ideas, add a webhook. Loaded when the person opens the panel,
// so an edge without the API costs the page nothing until then.
import type { Edge } from "./edge.ts";

/** A run as listed (GET /api/planning/runs). */
interface RunRow { id: string; idea: string; status: string; phase?: string | null; workspace: string; createdAt: string; updatedAt?: string }

/** A phase of a run (GET /api/planning/runs/ID); fields beyond these are shown when present. */
interface PhaseRow { phase: string; artifact?: string; artifacts?: string[]; score?: number | null; verdict?: string | null; review?: string | null; status?: string }

interface RunDetail extends RunRow {
  phases?: PhaseRow[];
  events?: Record<string, unknown>[];
  error?: { phase?: string; code?: string; message?: string } | null;
  tokens?: number;
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

/** An artifact's path in its workspace: as given, or inside the run's folder when it is a bare file name. */
export const artifactPath = (run: string, artifact: string): string => (artifact.includes("/") ? artifact.replace(/^\/+/, "") : `plans/${run}/${artifact}`);

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
      tr.append(cell(r.idea), cell(r.status), cell(r.phase ?? ""), cell(r.workspace), cell(when(r.updatedAt ?? r.createdAt)));
      const td = document.createElement("td");
      td.append(button(`Open run ${r.id}`, () => showRun(r.id), act));
      tr.append(td);
      return tr;
    }));
    $("plan-runs-none").hidden = runs.length > 0;
  };

  const listParked = async (): Promise<void> => {
    const { parked } = await edge.json<{ parked: { idea?: string; reason?: string; phase?: string; run?: string; revisitMonths?: number }[] }>("/api/planning/parked");
    $("plan-parked").replaceChildren(...parked.map((p) => {
      const li = document.createElement("li");
      li.textContent = [p.idea, p.phase && `at ${p.phase}`, p.reason, p.revisitMonths ? `revisit in ${p.revisitMonths} months` : "", p.run && `(run ${p.run})`].filter(Boolean).join(" · ");
      return li;
    }));
    $("plan-parked-none").hidden = parked.length > 0;
  };

  const showRun = async (id: string): Promise<void> => {
    clearTimeout(timer);
    const run = await edge.json<RunDetail>(`/api/planning/runs/${encodeURIComponent(id)}`);
    open = id;
    $("plan-run").hidden = false;
    $("plan-run-id").textContent = id;
    $("plan-run-info").textContent = [
      `${run.status}${run.phase ? ` at ${run.phase}` : ""}`, `workspace ${run.workspace}`,
      run.tokens !== undefined ? `${run.tokens} tokens` : "", `updated ${when(run.updatedAt ?? run.createdAt)}`,
      run.error?.message ? `error${run.error.phase ? ` in ${run.error.phase}` : ""}: ${run.error.code ? run.error.code + " " : ""}${run.error.message}` : "",
    ].filter(Boolean).join(", ");
    $("plan-run-info").className = run.status === "failed" || run.status === "killed" ? "bad" : run.status === "completed" ? "good" : "";
    $("plan-resume").hidden = !RESUMABLE.has(run.status);
    $("plan-phases").replaceChildren(...(run.phases ?? []).map((p) => {
      const tr = document.createElement("tr");
      tr.append(cell(p.phase), cell(p.status ?? ""), cell(p.score === null || p.score === undefined ? "" : String(p.score)), cell(p.verdict ?? p.review ?? ""));
      const td = document.createElement("td");
      for (const a of p.artifacts ?? (p.artifact ? [p.artifact] : [])) {
        const path = artifactPath(id, a);
        td.append(button(path, () => c.openArtifact(run.workspace, path), act), " ");
      }
      tr.append(td);
      return tr;
    }));
    $("plan-events").replaceChildren(...(run.events ?? []).slice(-50).map((e) => {
      const li = document.createElement("li");
      const { ts, at, type, event, ...rest } = e as { ts?: unknown; at?: unknown; type?: unknown; event?: unknown };
      const time = typeof ts === "number" ? new Date(ts).toLocaleTimeString() : typeof (ts ?? at) === "string" ? when(String(ts ?? at)) : "";
      li.textContent = [time, String(type ?? event ?? ""), Object.keys(rest).length ? JSON.stringify(rest) : ""].filter(Boolean).join(" · ");
      return li;
    }));
    // A running run is watched until it stops or another is opened (or the panel is closed).
    if (run.status === "running")
      timer = setTimeout(() => {
        if (open === id && $<HTMLDetailsElement>("planning").open) void act(() => Promise.all([showRun(id), listRuns()]).then(() => {}))();
      }, POLL_MS);
  };

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
    const numbers: [string, string, string, number][] = [["maxPivots", "plan-pivots", "Pivots at most", 0], ["reviewIterations", "plan-reviews", "Review rounds", 0], ["budgetTokens", "plan-budget", "Token budget", 1]];
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
