// The planning tables in D1: edge/migrations/0003_planning.sql, applied by the Worker on first use as
// edge/d1.ts does for its own, so `wrangler dev` needs no migration step.
import { schemaOnce, statementsOf } from "../d1.ts";
import planningSql from "../migrations/0003_planning.sql";

const PLANNING_STATEMENTS = statementsOf(planningSql);

/** Applies the planning schema once per isolate (idempotent: every statement is IF NOT EXISTS). */
export const ensurePlanningSchema = schemaOnce(PLANNING_STATEMENTS);
