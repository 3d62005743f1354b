-- OANIX edge D1 schema: jobs, their events, and the hash-chained audit log.
-- edge/d1.ts imports this file and applies its statements idempotently on first use,
-- so `wrangler dev` works without a migration step; `wrangler d1 migrations apply` is still right.
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  workspace TEXT NOT NULL,
  kind TEXT NOT NULL,
  input TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  result TEXT,
  error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_workspace ON jobs (workspace, created_at);
CREATE TABLE IF NOT EXISTS job_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  time INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id, id);
CREATE TABLE IF NOT EXISTS audit (
  workspace TEXT NOT NULL,
  seq INTEGER NOT NULL,
  time INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (workspace, seq)
);
