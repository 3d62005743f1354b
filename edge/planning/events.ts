// A planning run's events, derived from its checkpoints (the run record): each event has a key that
// names the fact it reports, so deriving them again from the same or a later record adds nothing,
// and a run resumed after a crash reports each fact once. `epoch` counts the run's starts and
// resumes: a run may pause, be resumed and pause again, and each end is its own event.
import { fsError } from "../../runtime/errors.ts";
import { PHASES, KILL_TEST } from "../../agents/planning/phases.ts";
import type { RunRecord } from "../../agents/host/planning/record.ts";

/** The event types (the seed's names, adapted): what webhooks subscribe to. */
export const EVENT_TYPES = ["phase_completed", "verdict", "run_completed", "run_parked", "run_paused", "run_failed"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface RunEvent {
  key: string;
  type: EventType;
  data: Record<string, unknown>;
}

const END: Record<string, EventType | undefined> = { completed: "run_completed", killed: "run_parked", paused: "run_paused", failed: "run_failed" };

export function eventsOf(rec: RunRecord, epoch: number): RunEvent[] {
  const out: RunEvent[] = [];
  const pass = rec.pivots;
  for (const r of rec.phases) {
    out.push({
      key: `phase:${pass}:${r.phase}`, type: "phase_completed",
      data: { phase: r.phase, index: PHASES.findIndex((p) => p.name === r.phase) + 1, pass, artifact: r.artifact, score: r.score, review: r.review, iterations: r.iterations.length, tokens: r.tokens },
    });
    if (r.phase === KILL_TEST && r.verdict) {
      out.push({
        key: `verdict:${pass}`, type: "verdict",
        data: {
          verdict: r.verdict, defaulted: !!r.verdictDefaulted, pass, artifact: r.artifact,
          ...(r.verdict === "PIVOT" && rec.pivotPending ? { refinedIdea: rec.pivotPending.to } : {}),
          ...(rec.parked ? { reason: rec.parked.reason, revisitMonths: rec.parked.revisitMonths } : {}),
        },
      });
    }
  }
  const end = END[rec.status];
  if (end) {
    out.push({
      key: `end:${epoch}`, type: end,
      data: {
        status: rec.status, tokens: rec.tokens, calls: rec.calls, pivots: rec.pivots,
        ...(rec.package ? { package: rec.package } : {}), ...(rec.parked ? { parked: rec.parked } : {}), ...(rec.error ? { error: rec.error } : {}),
      },
    });
  }
  return out;
}

/** Parses a subscription: "*" (or nothing) for every type, else a list of known types. */
export function eventFilter(v: unknown): EventType[] | "*" {
  if (v === undefined || v === "*" || (Array.isArray(v) && v.length === 1 && v[0] === "*")) return "*";
  if (!Array.isArray(v) || !v.length || !v.every((t) => typeof t === "string")) return invalid();
  for (const t of v) if (!(EVENT_TYPES as readonly string[]).includes(t)) return invalid(`unknown event "${String(t).slice(0, 40)}"`);
  return [...new Set(v as EventType[])];
}

function invalid(why = "events is \"*\" or a list of event types"): never {
  throw fsError("EINVAL", `${why} (${EVENT_TYPES.join(", ")})`);
}
