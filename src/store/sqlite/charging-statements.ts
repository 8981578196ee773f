/** Prepared statements of the SQLite charging store (hot path first: positional parameters, array rows). */
import type { Database, Statement } from 'better-sqlite3';
import { BUCKET_COLS, LEDGER_COLS, SCHEDULE_COLS, USAGE_COLS } from './charging-rows.ts';

const list = (cols: readonly string[]): string => cols.join(', ');
const marks = (cols: readonly string[]): string => cols.map(() => '?').join(', ');

export function prepareAll(db: Database) {
  const p = (sql: string): Statement => db.prepare(sql);
  const raw = (sql: string): Statement => db.prepare(sql).raw(true);
  const pluck = (sql: string): Statement => db.prepare(sql).pluck(true);
  return {
    // Hot path: positional parameters, array rows or plucked columns.
    dataVersion: pluck('PRAGMA data_version'),
    reservationPartsById: raw('SELECT data, state, valid_until_ms, closed_at_ms FROM charging_reservations WHERE id = ?'),
    liveBucketsRaw: raw(`SELECT ${list(BUCKET_COLS)} FROM charging_buckets WHERE account_id = ? AND (expires_at_ms IS NULL OR expires_at_ms > ?)`),
    schedulesRaw: raw(
      `SELECT ${list(SCHEDULE_COLS)} FROM charging_schedules WHERE account_id = ? AND (ends_at_ms IS NULL OR next_cycle_start_ms < ends_at_ms)`,
    ),
    memberUsageLatestRaw: raw(
      'SELECT cycle_index, used, held FROM charging_member_usage WHERE account_id = ? AND member_id = ? ORDER BY cycle_index DESC LIMIT 2',
    ),
    reservationById: p('SELECT * FROM charging_reservations WHERE id = ?'),
    policy: p('SELECT * FROM charging_policies WHERE account_id = ?'),
    bucketById: p('SELECT * FROM charging_buckets WHERE id = ?'),
    bucketByRef: p('SELECT * FROM charging_buckets WHERE account_id = ? AND source_ref = ?'),
    bucketOfCycle: p('SELECT * FROM charging_buckets WHERE schedule_id = ? AND cycle_index = ?'),
    expiredLeftoverBuckets: p(
      'SELECT * FROM charging_buckets WHERE account_id = ? AND expires_at_ms <= ? AND (held > 0 OR amount > consumed + held + forfeited)',
    ),
    accountBuckets: p('SELECT * FROM charging_buckets WHERE account_id = ?'),
    schedules: p('SELECT * FROM charging_schedules WHERE account_id = ? AND (ends_at_ms IS NULL OR next_cycle_start_ms < ends_at_ms)'),
    scheduleById: p('SELECT * FROM charging_schedules WHERE id = ?'),
    scheduleByRef: p('SELECT * FROM charging_schedules WHERE account_id = ? AND source_ref = ?'),
    cap: p('SELECT * FROM charging_member_caps WHERE account_id = ? AND member_id = ?'),
    memberUsageLatest: p('SELECT * FROM charging_member_usage WHERE account_id = ? AND member_id = ? ORDER BY cycle_index DESC LIMIT 2'),
    memberUsageAt: p('SELECT * FROM charging_member_usage WHERE account_id = ? AND member_id = ? AND cycle_index = ?'),
    usageByRequest: p('SELECT * FROM charging_usage_records WHERE request_id = ?'),
    insertBucket: p(`INSERT INTO charging_buckets (${list(BUCKET_COLS)}) VALUES (${marks(BUCKET_COLS)})`),
    moveBucket: p(`UPDATE charging_buckets SET amount = amount + ?, consumed = consumed + ?, held = held + ?, forfeited = forfeited + ?,
      floor = floor + ? WHERE id = ? AND account_id = ?`),
    updateScheduleCycle: p('UPDATE charging_schedules SET next_cycle_index = ?, next_cycle_start_ms = ? WHERE id = ? AND account_id = ?'),
    upsertReservation: p(`INSERT INTO charging_reservations (id, request_id, account_id, member_id, state, valid_until_ms, created_at_ms, data, closed_at_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, valid_until_ms = excluded.valid_until_ms,
      data = excluded.data, closed_at_ms = excluded.closed_at_ms WHERE request_id = excluded.request_id AND account_id = excluded.account_id`),
    updateReservation: p(`UPDATE charging_reservations SET state = ?, valid_until_ms = ?, data = ?, closed_at_ms = ?
      WHERE id = ? AND request_id = ? AND account_id = ?`),
    // A close (settle, void, expiry) changes only these: the JSON document keeps its open-time copies, the columns win on read.
    closeReservation: p('UPDATE charging_reservations SET state = ?, valid_until_ms = ?, closed_at_ms = ? WHERE id = ? AND request_id = ? AND account_id = ?'),
    // UPDATE first, INSERT when missing: an upsert would CHECK the would-be-inserted row (a negative delta) and fail.
    moveMemberUsage: p('UPDATE charging_member_usage SET used = used + ?, held = held + ? WHERE account_id = ? AND member_id = ? AND cycle_index = ?'),
    insertMemberUsage: p('INSERT INTO charging_member_usage (account_id, member_id, cycle_index, used, held) VALUES (?, ?, ?, ?, ?)'),
    insertUsage: p(`INSERT INTO charging_usage_records (${list(USAGE_COLS)}) VALUES (${marks(USAGE_COLS)})`),
    insertLedger: p(`INSERT INTO charging_ledger (${list(LEDGER_COLS)}) VALUES (${marks(LEDGER_COLS)})`),
    insertEvent: p(`INSERT INTO charging_events (id, account_id, type, subject_id, data, at_ms, delivery_state, attempts, next_attempt_at_ms)
      VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)`),
    upsertPolicy: p(`INSERT INTO charging_policies (account_id, overage, credit_limit_minor, currency, coins_per_major) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (account_id) DO UPDATE SET overage = excluded.overage, credit_limit_minor = excluded.credit_limit_minor, currency = excluded.currency,
      coins_per_major = excluded.coins_per_major`),
    upsertCap: p(`INSERT INTO charging_member_caps (account_id, member_id, tokens_per_cycle, cycle, anchor_ms) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (account_id, member_id) DO UPDATE SET tokens_per_cycle = excluded.tokens_per_cycle, cycle = excluded.cycle, anchor_ms = excluded.anchor_ms`),
    topUpSeen: p('SELECT bucket_id FROM charging_topups WHERE account_id = ? AND source_ref = ?'),
    insertTopUp: p('INSERT INTO charging_topups (account_id, source_ref, bucket_id, amount, at_ms) VALUES (?, ?, ?, ?, ?)'),
    insertSchedule: p(`INSERT INTO charging_schedules (${list(SCHEDULE_COLS)}) VALUES (${marks(SCHEDULE_COLS)})`),
    endSchedule: p('UPDATE charging_schedules SET ends_at_ms = MIN(COALESCE(ends_at_ms, @at), @at) WHERE id = @id'),
    usageOfAccount: p('SELECT * FROM charging_usage_records WHERE account_id = ?'),
    usageRange: p('SELECT * FROM charging_usage_records WHERE account_id = ? AND settled_at_ms >= ? AND settled_at_ms < ? ORDER BY settled_at_ms, request_id'),
    openReservations: p("SELECT * FROM charging_reservations WHERE account_id = ? AND state = 'open'"),
    ledger: p('SELECT * FROM charging_ledger WHERE account_id = ? ORDER BY at_ms, id'),
    eventsFirst: p('SELECT * FROM charging_events WHERE account_id = ? ORDER BY seq LIMIT ?'),
    eventsAfter: p('SELECT * FROM charging_events WHERE account_id = ? AND seq > (SELECT seq FROM charging_events WHERE id = ?) ORDER BY seq LIMIT ?'),
    expiredReservations: p(
      "SELECT id, account_id, valid_until_ms FROM charging_reservations WHERE state = 'open' AND valid_until_ms < ? ORDER BY valid_until_ms LIMIT ?",
    ),
    accountsWithLeftovers: p(`SELECT DISTINCT account_id FROM charging_buckets WHERE expires_at_ms IS NOT NULL AND expires_at_ms > ? AND expires_at_ms <= ?
      AND amount > consumed + held + forfeited LIMIT ?`),
    accountsWithDue: p(
      'SELECT DISTINCT account_id FROM charging_schedules WHERE next_cycle_start_ms <= ? AND (ends_at_ms IS NULL OR next_cycle_start_ms < ends_at_ms) LIMIT ?',
    ),
    pendingEvents: p("SELECT * FROM charging_events WHERE delivery_state = 'pending' AND next_attempt_at_ms <= ? ORDER BY seq LIMIT ?"),
    leaseEvent: p('UPDATE charging_events SET next_attempt_at_ms = ? WHERE id = ?'),
    eventDelivered: p("UPDATE charging_events SET delivery_state = 'delivered', delivered_at_ms = ?, next_attempt_at_ms = NULL WHERE id = ?"),
    eventFailed: p(`UPDATE charging_events SET attempts = ?, next_attempt_at_ms = ?,
      delivery_state = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END WHERE id = ? AND delivery_state = 'pending'`),
  };
}

export type Stmts = ReturnType<typeof prepareAll>;
