-- OANIX edge D1 schema, planning: runs, their artifacts (one row per kept version: the files are in
-- the run's workspace), parked ideas, run events, and webhook destinations per owner. Adapted from
-- the Foundation seed's planning_runs, planning_artifacts, planning_parked_ideas and
-- webhook_destinations (the tenant is the owner's pubkey; the seed's audit_chain is the
-- workspace's own chain, table audit). edge/planning/schema.ts imports this file and applies its
-- statements on first use.
CREATE TABLE IF NOT EXISTS planning_runs (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  workspace TEXT NOT NULL,
  idea TEXT NOT NULL,
  refined_idea TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'killed', 'paused', 'failed')),
  current_phase TEXT,
  llm TEXT NOT NULL,
  kill_verdict TEXT,
  pivot_count INTEGER NOT NULL DEFAULT 0,
  tokens INTEGER NOT NULL DEFAULT 0,
  calls INTEGER NOT NULL DEFAULT 0,
  package_path TEXT,
  package_key TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS planning_runs_owner ON planning_runs (owner, created_at);
CREATE TABLE IF NOT EXISTS planning_artifacts (
  run_id TEXT NOT NULL,
  pass INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  phase TEXT NOT NULL,
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  review_name TEXT,
  review_verdict TEXT,
  overall_score REAL,
  kill_verdict TEXT,
  review_iterations INTEGER,
  tokens INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, pass, idx, version)
);
CREATE TABLE IF NOT EXISTS planning_parked_ideas (
  run_id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  workspace TEXT NOT NULL,
  idea TEXT NOT NULL,
  refined_idea TEXT,
  source_phase TEXT NOT NULL,
  reason TEXT NOT NULL,
  revisit_estimate_months INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS planning_parked_owner ON planning_parked_ideas (owner, created_at);
CREATE TABLE IF NOT EXISTS planning_events (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  time INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS webhook_destinations (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  url TEXT NOT NULL,
  hostname TEXT NOT NULL,
  secret TEXT,
  events TEXT NOT NULL DEFAULT '*',
  active INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_destinations_owner ON webhook_destinations (owner, created_at);
