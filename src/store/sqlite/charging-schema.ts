/**
 * Schema of the charging tables in the shared `tokengrid.db`. Migrations are append-only and recorded in
 * charging_migrations by the shared runner (migrations.ts), each applied in its own transaction. CHECK constraints are the backstop of the
 * no-overspend invariant: a buggy planner cannot commit a bucket with consumed + held + forfeited > amount - floor.
 */
import type { Database } from 'better-sqlite3';
import { runMigrations } from './migrations.ts';

const V1 = `
CREATE TABLE IF NOT EXISTS charging_buckets (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  member_id TEXT,
  unit TEXT NOT NULL CHECK (unit IN ('tokens', 'requests', 'money')),
  currency TEXT,
  kind TEXT NOT NULL CHECK (kind IN ('plan_allowance', 'addon', 'trial', 'wallet', 'points', 'code', 'manual', 'postpaid_line')),
  amount INTEGER NOT NULL CHECK (amount >= 0),
  consumed INTEGER NOT NULL CHECK (consumed >= 0),
  held INTEGER NOT NULL CHECK (held >= 0),
  forfeited INTEGER NOT NULL CHECK (forfeited >= 0),
  floor INTEGER NOT NULL CHECK (floor <= 0),
  effective_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER,
  priority INTEGER NOT NULL,
  models TEXT,
  rollover INTEGER NOT NULL CHECK (rollover IN (0, 1)),
  source_ref TEXT NOT NULL,
  schedule_id TEXT,
  cycle_index INTEGER,
  created_at_ms INTEGER NOT NULL,
  CHECK (consumed + held + forfeited <= amount - floor),
  CHECK ((unit = 'money') = (currency IS NOT NULL)),
  CHECK (expires_at_ms IS NULL OR expires_at_ms > effective_at_ms),
  UNIQUE (account_id, source_ref)
) STRICT;
CREATE INDEX IF NOT EXISTS charging_buckets_account_expiry ON charging_buckets (account_id, expires_at_ms);
CREATE INDEX IF NOT EXISTS charging_buckets_schedule_cycle ON charging_buckets (schedule_id, cycle_index) WHERE schedule_id IS NOT NULL;
-- Not a partial index on the counters: every hold and charge would then rewrite its entry.
CREATE INDEX IF NOT EXISTS charging_buckets_expiry ON charging_buckets (expires_at_ms) WHERE expires_at_ms IS NOT NULL;

CREATE TABLE IF NOT EXISTS charging_schedules (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  member_id TEXT,
  unit TEXT NOT NULL CHECK (unit IN ('tokens', 'requests', 'money')),
  currency TEXT,
  kind TEXT NOT NULL,
  amount_per_cycle INTEGER NOT NULL CHECK (amount_per_cycle >= 0),
  anchor_ms INTEGER NOT NULL,
  cycle TEXT NOT NULL CHECK (cycle IN ('month', 'day', 'year')),
  priority INTEGER NOT NULL,
  models TEXT,
  rollover INTEGER NOT NULL CHECK (rollover IN (0, 1)),
  source_ref TEXT NOT NULL,
  ends_at_ms INTEGER,
  next_cycle_index INTEGER NOT NULL,
  next_cycle_start_ms INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  UNIQUE (account_id, source_ref)
) STRICT;
CREATE INDEX IF NOT EXISTS charging_schedules_account ON charging_schedules (account_id);
CREATE INDEX IF NOT EXISTS charging_schedules_due ON charging_schedules (next_cycle_start_ms);

CREATE TABLE IF NOT EXISTS charging_policies (
  account_id TEXT PRIMARY KEY,
  overage TEXT NOT NULL CHECK (overage IN ('block', 'wallet', 'postpaid')),
  credit_limit_minor INTEGER NOT NULL CHECK (credit_limit_minor >= 0),
  currency TEXT
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS charging_member_caps (
  account_id TEXT NOT NULL,
  member_id TEXT NOT NULL,
  tokens_per_cycle INTEGER CHECK (tokens_per_cycle IS NULL OR tokens_per_cycle >= 0),
  cycle TEXT NOT NULL CHECK (cycle IN ('month', 'day', 'year')),
  anchor_ms INTEGER NOT NULL,
  PRIMARY KEY (account_id, member_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS charging_member_usage (
  account_id TEXT NOT NULL,
  member_id TEXT NOT NULL,
  cycle_index INTEGER NOT NULL,
  used INTEGER NOT NULL CHECK (used >= 0),
  held INTEGER NOT NULL CHECK (held >= 0),
  PRIMARY KEY (account_id, member_id, cycle_index)
) STRICT, WITHOUT ROWID;

-- The reservation id is derived from the request id (rsv_<requestId>), so this primary key alone enforces one
-- reservation per request. Rows are large (the rate and allocations as JSON), so this is a rowid table:
-- WITHOUT ROWID pays off only for rows well under 1/20 of a page (measured 2.5x slower inserts here).
CREATE TABLE IF NOT EXISTS charging_reservations (
  id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  member_id TEXT,
  state TEXT NOT NULL CHECK (state IN ('open', 'settled', 'voided', 'expired')),
  valid_until_ms INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  data TEXT NOT NULL,
  CHECK (id = 'rsv_' || request_id)
) STRICT;
CREATE INDEX IF NOT EXISTS charging_reservations_open_until ON charging_reservations (valid_until_ms) WHERE state = 'open';

CREATE TABLE IF NOT EXISTS charging_usage_records (
  request_id TEXT PRIMARY KEY,
  reservation_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  member_id TEXT,
  key_id TEXT NOT NULL,
  model TEXT NOT NULL,
  upstream_model TEXT NOT NULL,
  provider TEXT NOT NULL,
  deployment_id TEXT NOT NULL,
  region TEXT NOT NULL,
  tokens_input INTEGER NOT NULL CHECK (tokens_input >= 0),
  tokens_output INTEGER NOT NULL CHECK (tokens_output >= 0),
  tokens_cached_input INTEGER NOT NULL CHECK (tokens_cached_input >= 0),
  tokens_cache_write INTEGER NOT NULL CHECK (tokens_cache_write >= 0),
  tokens_reasoning INTEGER NOT NULL CHECK (tokens_reasoning >= 0),
  usage_estimated INTEGER NOT NULL CHECK (usage_estimated IN (0, 1)),
  status TEXT NOT NULL CHECK (status IN ('ok', 'upstream_error', 'client_aborted', 'timeout', 'truncated')),
  rate_version TEXT NOT NULL,
  cost_coins INTEGER NOT NULL CHECK (cost_coins >= 0),
  cost_minor INTEGER,
  cost_requests INTEGER,
  charges TEXT NOT NULL,
  leak_coins INTEGER NOT NULL CHECK (leak_coins >= 0),
  vendor_cost_micros INTEGER,
  latency_ms INTEGER NOT NULL,
  ttft_ms INTEGER,
  started_at_ms INTEGER NOT NULL,
  settled_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS charging_usage_account_time ON charging_usage_records (account_id, settled_at_ms);

CREATE TABLE IF NOT EXISTS charging_ledger (
  account_id TEXT NOT NULL,
  id TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('grant', 'topup', 'consume', 'forfeit', 'rollover')),
  debit TEXT NOT NULL,
  credit TEXT NOT NULL,
  unit TEXT NOT NULL,
  currency TEXT,
  amount INTEGER NOT NULL CHECK (amount > 0),
  request_id TEXT,
  at_ms INTEGER NOT NULL,
  CHECK (debit <> credit),
  PRIMARY KEY (account_id, id)
) STRICT, WITHOUT ROWID; -- small rows: the key's B-tree holds them, one B-tree per insert

CREATE TABLE IF NOT EXISTS charging_topups (
  account_id TEXT NOT NULL,
  source_ref TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  amount INTEGER NOT NULL CHECK (amount > 0),
  at_ms INTEGER NOT NULL,
  PRIMARY KEY (account_id, source_ref)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS charging_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  account_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  data TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  delivery_state TEXT NOT NULL CHECK (delivery_state IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at_ms INTEGER,
  delivered_at_ms INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS charging_events_account ON charging_events (account_id, seq);
CREATE INDEX IF NOT EXISTS charging_events_pending ON charging_events (next_attempt_at_ms) WHERE delivery_state = 'pending';
`;

// Closing a reservation (settle, void, expiry) changes only its state and closing time: with those in columns the
// close is a small UPDATE instead of re-serialising and rewriting the whole JSON document (the columns win over
// the document's copies when read; rows written before V2 have closed_at_ms NULL and their document is exact).
const V2 = `ALTER TABLE charging_reservations ADD COLUMN closed_at_ms INTEGER;`;

// V3: the client's x-request-id, a correlation label on the usage record (issue 12: never the charging key).
const V3 = `ALTER TABLE charging_usage_records ADD COLUMN client_request_id TEXT;`;
// Issue 12 (prices per offer): an account's own money price, token coins per major unit (its pay-as-you-go offer's).
const V4 = `ALTER TABLE charging_policies ADD COLUMN coins_per_major INTEGER CHECK (coins_per_major IS NULL OR coins_per_major > 0);`;

// V5 (issue 17): what the gateway's stages did for the request (route, cache, compression, savings), as JSON.
const V5 = `ALTER TABLE charging_usage_records ADD COLUMN serving TEXT;`;

const MIGRATIONS: readonly string[] = [V1, V2, V3, V4, V5];

/** Bring the charging tables to the latest version (idempotent; safe to call at every start). */
export function migrateChargingSchema(db: Database): void {
  runMigrations(db, { store: 'charging', steps: MIGRATIONS });
}
