/**
 * TokenGrid's PostgreSQL schema as versioned, append-only migrations (a released step is never edited; a change
 * is a new step). CHECK constraints are the backstop of the no-overspend invariant, as in SQLite
 * (store/sqlite/charging-schema.ts): a buggy planner cannot commit consumed + held + forfeited > amount - floor.
 * Holds live here too (charging_buckets.held and open charging_reservations rows): every gateway process shares
 * them. Usage records are partitioned by month of settle time (usage-partitions.ts) and rolled up per day.
 */

const V1_CORE = `
CREATE OR REPLACE FUNCTION tg_check(ok boolean, msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN RAISE EXCEPTION '%', msg USING ERRCODE = 'check_violation'; END IF;
END $$;

CREATE TABLE charging_buckets (
  id text PRIMARY KEY,
  account_id text NOT NULL,
  member_id text,
  unit text NOT NULL CHECK (unit IN ('tokens', 'requests', 'money')),
  currency text,
  kind text NOT NULL CHECK (kind IN ('plan_allowance', 'addon', 'trial', 'wallet', 'points', 'code', 'manual', 'postpaid_line')),
  amount bigint NOT NULL CHECK (amount >= 0),
  consumed bigint NOT NULL CHECK (consumed >= 0),
  held bigint NOT NULL CHECK (held >= 0),
  forfeited bigint NOT NULL CHECK (forfeited >= 0),
  floor bigint NOT NULL CHECK (floor <= 0),
  effective_at_ms bigint NOT NULL,
  expires_at_ms bigint,
  priority integer NOT NULL,
  models jsonb,
  rollover boolean NOT NULL,
  source_ref text NOT NULL,
  schedule_id text,
  cycle_index integer,
  created_at_ms bigint NOT NULL,
  CHECK (consumed + held + forfeited <= amount - floor),
  CHECK ((unit = 'money') = (currency IS NOT NULL)),
  CHECK (expires_at_ms IS NULL OR expires_at_ms > effective_at_ms),
  UNIQUE (account_id, source_ref)
);
CREATE INDEX charging_buckets_account_expiry ON charging_buckets (account_id, expires_at_ms);
CREATE INDEX charging_buckets_schedule_cycle ON charging_buckets (schedule_id, cycle_index) WHERE schedule_id IS NOT NULL;
CREATE INDEX charging_buckets_expiry ON charging_buckets (expires_at_ms) WHERE expires_at_ms IS NOT NULL;

CREATE TABLE charging_schedules (
  id text PRIMARY KEY,
  account_id text NOT NULL,
  data jsonb NOT NULL,
  ends_at_ms bigint,
  next_cycle_index integer NOT NULL,
  next_cycle_start_ms bigint NOT NULL,
  source_ref text NOT NULL,
  UNIQUE (account_id, source_ref)
);
CREATE INDEX charging_schedules_due ON charging_schedules (next_cycle_start_ms);

CREATE TABLE charging_policies (
  account_id text PRIMARY KEY,
  data jsonb NOT NULL
);

CREATE TABLE charging_member_caps (
  account_id text NOT NULL,
  member_id text NOT NULL,
  data jsonb NOT NULL,
  PRIMARY KEY (account_id, member_id)
);

CREATE TABLE charging_member_usage (
  account_id text NOT NULL,
  member_id text NOT NULL,
  cycle_index integer NOT NULL,
  used bigint NOT NULL CHECK (used >= 0),
  held bigint NOT NULL CHECK (held >= 0),
  PRIMARY KEY (account_id, member_id, cycle_index)
);

-- One reservation per request: the id is derived from the request id (rsv_<requestId>).
CREATE TABLE charging_reservations (
  id text PRIMARY KEY,
  request_id text NOT NULL,
  account_id text NOT NULL,
  member_id text,
  state text NOT NULL CHECK (state IN ('open', 'settled', 'voided', 'expired')),
  valid_until_ms bigint NOT NULL,
  data jsonb NOT NULL,
  CHECK (id = 'rsv_' || request_id)
);
CREATE INDEX charging_reservations_open_until ON charging_reservations (valid_until_ms) WHERE state = 'open';
CREATE INDEX charging_reservations_open_account ON charging_reservations (account_id) WHERE state = 'open';

-- Usage records (CDRs), partitioned by month of settled_at_ms (usage-partitions.ts creates the months; rows
-- outside them land in the default partition). A partitioned table's unique keys must contain the partition
-- key, so one request id = one record is enforced by charging_usage_ids, written in the same transaction.
CREATE TABLE charging_usage_ids (
  request_id text PRIMARY KEY,
  settled_at_ms bigint NOT NULL
);
CREATE TABLE charging_usage_records (
  request_id text NOT NULL,
  account_id text NOT NULL,
  member_id text,
  key_id text NOT NULL,
  model text NOT NULL,
  provider text NOT NULL,
  status text NOT NULL,
  tokens_input bigint NOT NULL CHECK (tokens_input >= 0),
  tokens_output bigint NOT NULL CHECK (tokens_output >= 0),
  cost_coins bigint NOT NULL CHECK (cost_coins >= 0),
  cost_minor bigint,
  leak_coins bigint NOT NULL CHECK (leak_coins >= 0),
  started_at_ms bigint NOT NULL,
  settled_at_ms bigint NOT NULL,
  -- How the request was served (route, cache, compression, savings: UsageRecord.serving); NULL for a plain one.
  serving jsonb,
  -- The rest of the record.
  data jsonb NOT NULL,
  PRIMARY KEY (request_id, settled_at_ms)
) PARTITION BY RANGE (settled_at_ms);
CREATE TABLE charging_usage_records_default PARTITION OF charging_usage_records DEFAULT;
CREATE INDEX charging_usage_account_time ON charging_usage_records (account_id, settled_at_ms);

-- Daily rollup (UTC days), maintained by the settle that writes the record (same transaction, same account lock).
CREATE TABLE charging_usage_daily (
  account_id text NOT NULL,
  day date NOT NULL,
  model text NOT NULL,
  requests bigint NOT NULL,
  tokens_input bigint NOT NULL,
  tokens_output bigint NOT NULL,
  cost_coins bigint NOT NULL,
  cost_minor bigint NOT NULL,
  leak_coins bigint NOT NULL,
  PRIMARY KEY (account_id, day, model)
);

CREATE TABLE charging_ledger (
  account_id text NOT NULL,
  id text NOT NULL,
  op text NOT NULL CHECK (op IN ('grant', 'topup', 'consume', 'forfeit', 'rollover')),
  debit text NOT NULL,
  credit text NOT NULL,
  unit text NOT NULL,
  currency text,
  amount bigint NOT NULL CHECK (amount > 0),
  request_id text,
  at_ms bigint NOT NULL,
  CHECK (debit <> credit),
  PRIMARY KEY (account_id, id)
);

CREATE TABLE charging_topups (
  account_id text NOT NULL,
  source_ref text NOT NULL,
  bucket_id text NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  at_ms bigint NOT NULL,
  PRIMARY KEY (account_id, source_ref)
);

CREATE TABLE charging_events (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  account_id text NOT NULL,
  type text NOT NULL,
  subject_id text NOT NULL,
  data jsonb NOT NULL,
  at_ms bigint NOT NULL,
  delivery_state text NOT NULL CHECK (delivery_state IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL,
  next_attempt_at_ms bigint,
  delivered_at_ms bigint
);
CREATE INDEX charging_events_account ON charging_events (account_id, seq);
CREATE INDEX charging_events_pending ON charging_events (next_attempt_at_ms) WHERE delivery_state = 'pending';

CREATE TABLE accounts (
  id text PRIMARY KEY, name text NOT NULL, kind text NOT NULL CHECK (kind IN ('individual', 'family', 'team')),
  parent_id text REFERENCES accounts(id), status text NOT NULL, created_at_ms bigint NOT NULL
);
CREATE INDEX accounts_parent ON accounts (parent_id);
CREATE TABLE members (
  id text PRIMARY KEY, account_id text NOT NULL REFERENCES accounts(id), name text NOT NULL, role text NOT NULL,
  created_at_ms bigint NOT NULL
);
CREATE INDEX members_account ON members (account_id);
CREATE TABLE api_keys (
  id text PRIMARY KEY, account_id text NOT NULL REFERENCES accounts(id), member_id text REFERENCES members(id),
  name text NOT NULL, hash text NOT NULL UNIQUE, prefix text NOT NULL, allowed_models jsonb, expires_at_ms bigint,
  revoked_at_ms bigint, limits jsonb NOT NULL, created_at_ms bigint NOT NULL,
  parent_key_id text REFERENCES api_keys(id), minted_by_key_id text REFERENCES api_keys(id)
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- The audit log is append-only: triggers refuse UPDATE and DELETE (the hash chain shows any change anyway).
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY, id text NOT NULL UNIQUE, at_ms bigint NOT NULL, actor text NOT NULL, role text NOT NULL,
  action text NOT NULL, target text, account_id text, outcome integer NOT NULL, before_json jsonb NOT NULL, after_json jsonb NOT NULL,
  request_id text, source text, prev_hash text NOT NULL, hash text NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, seq);
CREATE FUNCTION tg_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION tg_audit_append_only();

CREATE TABLE responses (
  id text PRIMARY KEY, account_id text NOT NULL, created_at_ms bigint NOT NULL, expires_at_ms bigint NOT NULL,
  response jsonb NOT NULL, items jsonb NOT NULL
);
CREATE INDEX responses_expiry ON responses (expires_at_ms);
`;

// Billing (store/postgres/billing-store.ts): the indexed columns its queries need, the record as jsonb; each
// account's billing version is the optimistic precondition of every plan (BillingStore.apply).
const V2_BILLING = `
CREATE TABLE billing_account_versions (account_id text PRIMARY KEY, version bigint NOT NULL);
CREATE TABLE billing_idempotency (
  scope text NOT NULL, key text NOT NULL, request_hash text NOT NULL, response jsonb NOT NULL, created_at_ms bigint NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE TABLE billing_orders (
  id text PRIMARY KEY, account_id text NOT NULL, subscription_id text, status text NOT NULL, effective_at_ms bigint NOT NULL,
  bill_id text, data jsonb NOT NULL
);
CREATE INDEX billing_orders_account ON billing_orders (account_id, effective_at_ms);
CREATE INDEX billing_orders_status ON billing_orders (status);
CREATE INDEX billing_orders_subscription ON billing_orders (subscription_id) WHERE subscription_id IS NOT NULL;
CREATE TABLE billing_subscriptions (id text PRIMARY KEY, account_id text NOT NULL, status text NOT NULL, data jsonb NOT NULL);
CREATE INDEX billing_subscriptions_account ON billing_subscriptions (account_id);
CREATE INDEX billing_subscriptions_status ON billing_subscriptions (status);
CREATE TABLE billing_payments (
  id text PRIMARY KEY, account_id text NOT NULL, order_id text, bill_id text, status text NOT NULL, created_at_ms bigint NOT NULL,
  data jsonb NOT NULL
);
CREATE INDEX billing_payments_account ON billing_payments (account_id);
CREATE INDEX billing_payments_order ON billing_payments (order_id);
CREATE INDEX billing_payments_status ON billing_payments (status);
CREATE TABLE billing_code_batches (id text PRIMARY KEY, data jsonb NOT NULL);
CREATE TABLE billing_codes (hash text PRIMARY KEY, batch_id text NOT NULL, redeemed_by text, data jsonb NOT NULL);
CREATE INDEX billing_codes_batch ON billing_codes (batch_id);
CREATE TABLE billing_points (id text PRIMARY KEY, account_id text NOT NULL, data jsonb NOT NULL);
CREATE INDEX billing_points_account ON billing_points (account_id);
CREATE TABLE billing_bills (
  id text PRIMARY KEY, account_id text NOT NULL, period text NOT NULL, data jsonb NOT NULL, UNIQUE (account_id, period)
);
CREATE TABLE billing_admin_keys (id text PRIMARY KEY, hash text NOT NULL UNIQUE, data jsonb NOT NULL);
`;

// An operator's residency pin on an account (Account.regions, a JSON array; NULL: none, the package decides).
const V3_ACCOUNT_REGIONS = 'ALTER TABLE accounts ADD COLUMN regions jsonb;';

// Inference Idempotency-Keys shared by every node (issue 15; gateway/idempotency.ts): one row per API key (scope) and
// endpoint + header (key); `token` names the claim that runs; a done row keeps the answer to replay (at most 1 MiB,
// NULL: not replayable). Expired rows are deleted periodically (expires_at_ms index).
const V4_IDEMPOTENCY_KEYS = `
CREATE TABLE idempotency_keys (
  scope text NOT NULL,
  key text NOT NULL,
  fingerprint text NOT NULL,
  streamed boolean NOT NULL,
  state text NOT NULL CHECK (state IN ('running', 'done')),
  token text NOT NULL,
  claimed_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  status integer,
  body text CHECK (octet_length(body) <= 1048576),
  content_type text,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at_ms);
`;

// Per account, a counter every committed write of its charging rows bumps (the optimistic hot path checks it).
const V5_ACCOUNT_VERSIONS = 'CREATE TABLE charging_account_versions (account_id text PRIMARY KEY, version bigint NOT NULL);';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Append-only. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'core: charging, accounts, audit, responses', sql: V1_CORE },
  { version: 2, name: 'billing: orders, subscriptions, payments, codes, points, bills, admin keys, account versions', sql: V2_BILLING },
  { version: 3, name: 'accounts: residency pin (regions)', sql: V3_ACCOUNT_REGIONS },
  { version: 4, name: 'gateway: inference Idempotency-Keys shared by every node', sql: V4_IDEMPOTENCY_KEYS },
  { version: 5, name: 'charging: account versions (optimistic hot path)', sql: V5_ACCOUNT_VERSIONS },
];

export const LATEST_VERSION = MIGRATIONS.length;
