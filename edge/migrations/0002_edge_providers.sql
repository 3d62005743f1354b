-- The edge provider's tables (edge/provider/store.ts imports this file and applies it on first use).
CREATE TABLE IF NOT EXISTS edge_providers (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  config TEXT,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS edge_provider_jobs (
  provider TEXT NOT NULL,
  request TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('claimed', 'answered', 'failed', 'cancelled')),
  job TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (provider, request)
);
CREATE INDEX IF NOT EXISTS edge_provider_jobs_age ON edge_provider_jobs (updated_at);
