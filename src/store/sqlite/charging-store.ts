/**
 * SQLite ChargingStore (default). Each account operation runs in ONE BEGIN IMMEDIATE transaction (shared with
 * the operations group-committed with it, see charging-batch.ts): the view is read, the pure planner
 * decides, the mutation is written, and the promise resolves only after COMMIT, so an answer (a grant, a usage
 * record) is never given for uncommitted state. IMMEDIATE takes the write lock up front, so processes sharing
 * the file serialize instead of deadlocking on a lock upgrade; within one process better-sqlite3 is synchronous,
 * so operations never interleave. The planner runs inside the transaction: no plan is made on a stale read.
 *
 * Durability (the app's openSqlite sets WAL + synchronous=NORMAL; this store never changes pragmas): a committed
 * transaction survives a process crash (kill -9), because the WAL frames are written before COMMIT returns. On
 * power loss or an OS crash, transactions committed since the last WAL sync (which NORMAL does only at
 * checkpoints) can be lost: the database stays consistent, but an acknowledged usage record may vanish.
 * synchronous=FULL syncs every commit and closes that window, at a cost.
 */
import type { Database, Statement } from 'better-sqlite3';
import { assert } from '../../core/index.ts';
import type {
  AccountMutation, AccountScope, AccountView, AllowanceSchedule, Bucket, ChargingStore, Decision, LedgerEntry, MemberCapUsage, Reservation,
  StoredChargingEvent, UsageRecord,
} from '../../charging/index.ts';
import { migrateChargingSchema } from './charging-schema.ts';
import { txGate, type TxGate } from './tx-gate.ts';
import { ChargingCache, type CacheLoaders } from './charging-cache.ts';
import { GroupCommitter, type Outcome } from './charging-batch.ts';

import {
  BUCKET_COLS, LEDGER_COLS, SCHEDULE_COLS, USAGE_COLS, bucketFromArray, bucketValues, ledgerValues, scheduleFromArray, usageValues,
  bucketFromRow, bucketToRow, capFromRow, eventFromRow, ledgerFromRow, memberUsageFromRow, policyFromRow, reservationFromRow,
  onlyClosingChanged, reservationFromParts, scheduleFromRow, scheduleToRow, usageFromRow,
  type BucketRow, type CapRow, type EventRow, type LedgerRow, type MemberUsageRow, type PolicyRow, type ReservationRow, type ScheduleRow,
  type UsageRow,
} from './charging-rows.ts';

/** One account operation waiting for its batch. */
interface Op {
  scope: AccountScope;
  decide: (view: AccountView) => Decision<unknown>;
}

/** Add a bucket the view needs besides the live ones (once, and only the account's own). */
function addBucket(buckets: Bucket[], seen: Set<string>, accountId: string, b: Bucket | undefined): void {
  if (b === undefined || seen.has(b.id) || b.accountId !== accountId) return;
  seen.add(b.id);
  buckets.push(b);
}

const list = (cols: readonly string[]): string => cols.join(', ');
const marks = (cols: readonly string[]): string => cols.map(() => '?').join(', ');

function prepareAll(db: Database) {
  const p = (sql: string): Statement => db.prepare(sql);
  const raw = (sql: string): Statement => db.prepare(sql).raw(true);
  const pluck = (sql: string): Statement => db.prepare(sql).pluck(true);
  return {
    // Hot path: positional parameters, array rows or plucked columns.
    dataVersion: pluck('PRAGMA data_version'),
    reservationPartsById: raw('SELECT data, state, valid_until_ms, closed_at_ms FROM charging_reservations WHERE id = ?'),
    liveBucketsRaw: raw(`SELECT ${list(BUCKET_COLS)} FROM charging_buckets WHERE account_id = ? AND (expires_at_ms IS NULL OR expires_at_ms > ?)`),
    schedulesRaw: raw(`SELECT ${list(SCHEDULE_COLS)} FROM charging_schedules WHERE account_id = ? AND (ends_at_ms IS NULL OR next_cycle_start_ms < ends_at_ms)`),
    memberUsageLatestRaw: raw('SELECT cycle_index, used, held FROM charging_member_usage WHERE account_id = ? AND member_id = ? ORDER BY cycle_index DESC LIMIT 2'),
    reservationById: p('SELECT * FROM charging_reservations WHERE id = ?'),
    policy: p('SELECT * FROM charging_policies WHERE account_id = ?'),
    bucketById: p('SELECT * FROM charging_buckets WHERE id = ?'),
    bucketByRef: p('SELECT * FROM charging_buckets WHERE account_id = ? AND source_ref = ?'),
    bucketOfCycle: p('SELECT * FROM charging_buckets WHERE schedule_id = ? AND cycle_index = ?'),
    expiredLeftoverBuckets: p('SELECT * FROM charging_buckets WHERE account_id = ? AND expires_at_ms <= ? AND (held > 0 OR amount > consumed + held + forfeited)'),
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
    upsertPolicy: p(`INSERT INTO charging_policies (account_id, overage, credit_limit_minor, currency) VALUES (?, ?, ?, ?)
      ON CONFLICT (account_id) DO UPDATE SET overage = excluded.overage, credit_limit_minor = excluded.credit_limit_minor, currency = excluded.currency`),
    upsertCap: p(`INSERT INTO charging_member_caps (account_id, member_id, tokens_per_cycle, cycle, anchor_ms) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (account_id, member_id) DO UPDATE SET tokens_per_cycle = excluded.tokens_per_cycle, cycle = excluded.cycle, anchor_ms = excluded.anchor_ms`),
    topUpSeen: p('SELECT bucket_id FROM charging_topups WHERE account_id = ? AND source_ref = ?'),
    insertTopUp: p('INSERT INTO charging_topups (account_id, source_ref, bucket_id, amount, at_ms) VALUES (?, ?, ?, ?, ?)'),
    insertSchedule: p(`INSERT INTO charging_schedules (${list(SCHEDULE_COLS)}) VALUES (${marks(SCHEDULE_COLS)})`),
    endSchedule: p('UPDATE charging_schedules SET ends_at_ms = MIN(COALESCE(ends_at_ms, @at), @at) WHERE id = @id'),
    usageRange: p('SELECT * FROM charging_usage_records WHERE account_id = ? AND settled_at_ms >= ? AND settled_at_ms < ? ORDER BY settled_at_ms, request_id'),
    openReservations: p("SELECT * FROM charging_reservations WHERE account_id = ? AND state = 'open'"),
    ledger: p('SELECT * FROM charging_ledger WHERE account_id = ? ORDER BY at_ms, id'),
    eventsFirst: p('SELECT * FROM charging_events WHERE account_id = ? ORDER BY seq LIMIT ?'),
    eventsAfter: p('SELECT * FROM charging_events WHERE account_id = ? AND seq > (SELECT seq FROM charging_events WHERE id = ?) ORDER BY seq LIMIT ?'),
    expiredReservations: p("SELECT id, account_id FROM charging_reservations WHERE state = 'open' AND valid_until_ms < ? ORDER BY valid_until_ms LIMIT ?"),
    accountsWithLeftovers: p(`SELECT DISTINCT account_id FROM charging_buckets WHERE expires_at_ms IS NOT NULL AND expires_at_ms > ? AND expires_at_ms <= ?
      AND amount > consumed + held + forfeited LIMIT ?`),
    accountsWithDue: p('SELECT DISTINCT account_id FROM charging_schedules WHERE next_cycle_start_ms <= ? AND (ends_at_ms IS NULL OR next_cycle_start_ms < ends_at_ms) LIMIT ?'),
    pendingEvents: p("SELECT * FROM charging_events WHERE delivery_state = 'pending' AND next_attempt_at_ms <= ? ORDER BY seq LIMIT ?"),
    leaseEvent: p('UPDATE charging_events SET next_attempt_at_ms = ? WHERE id = ?'),
    eventDelivered: p("UPDATE charging_events SET delivery_state = 'delivered', delivered_at_ms = ?, next_attempt_at_ms = NULL WHERE id = ?"),
    eventFailed: p(`UPDATE charging_events SET attempts = ?, next_attempt_at_ms = ?,
      delivery_state = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END WHERE id = ? AND delivery_state = 'pending'`),
  };
}

type Stmts = ReturnType<typeof prepareAll>;

export class SqliteChargingStore implements ChargingStore {
  readonly #db: Database;
  readonly #s: Stmts;
  readonly #cache = new ChargingCache();
  readonly #load: CacheLoaders;
  #dataVersion = -1;
  readonly #ops: GroupCommitter<Op, unknown>;
  /** Shared with the billing store: an order's open transaction is exclusive (see tx-gate.ts). */
  readonly #gate: TxGate;
  readonly #one: (op: Op) => { accountId: string; decision: Decision<unknown> };

  constructor(db: Database) {
    this.#db = db;
    // Journal mode, synchronous and busy_timeout belong to whoever opens the shared file (src/store/sqlite/db.ts:
    // WAL + NORMAL by default, FULL on request); this store must not override the operator's durability choice.
    migrateChargingSchema(db);
    const s = (this.#s = prepareAll(db));
    this.#load = {
      liveBuckets: (accountId, nowMs) => (s.liveBucketsRaw.all(accountId, nowMs) as unknown[][]).map(bucketFromArray),
      schedules: (accountId) => (s.schedulesRaw.all(accountId) as unknown[][]).map(scheduleFromArray),
      policy: (accountId) => {
        const row = s.policy.get(accountId) as PolicyRow | undefined;
        return row === undefined ? null : policyFromRow(row);
      },
      cap: (accountId, memberId) => {
        const row = s.cap.get(accountId, memberId) as CapRow | undefined;
        return row === undefined ? null : capFromRow(row);
      },
      latestMemberUsage: (accountId, memberId) => (s.memberUsageLatestRaw.all(accountId, memberId) as number[][])
        .map(([cycleIndex, used, held]) => ({ accountId, memberId, cycleIndex: cycleIndex!, used: used!, held: held! })),
    };
    // One operation: view, decide, write; `one` wraps it in a SAVEPOINT (it is always called inside a transaction).
    const body = (op: Op) => {
      const view = this.#view(op.scope);
      const decision = op.decide(view);
      if (decision.mutation !== null) this.#apply(view.accountId, decision.mutation, view.reservation);
      return { accountId: view.accountId, decision };
    };
    const one = db.transaction(body);
    // Fast path: the batch's operations run without savepoints (SAVEPOINT + RELEASE per operation cost as much as a
    // bucket update). Operations only throw on bugs or broken I/O; then the whole transaction rolled back, the cache
    // (which followed the undone operations) is dropped, and the batch is re-run with one savepoint per operation so
    // only the failing one fails. Re-running `decide` is allowed by the store port (planners are side-effect free
    // apart from ids).
    let opThrew = false;
    const fast = db.transaction((ops: Op[]): Outcome<unknown>[] => {
      this.#checkDataVersion();
      return ops.map((op) => {
        let out: ReturnType<typeof body>;
        try {
          out = body(op);
        } catch (error) {
          opThrew = true;
          throw error;
        }
        if (out.decision.mutation !== null) this.#cache.applyCommitted(out.accountId, out.decision.mutation);
        return { ok: true, value: out.decision.result };
      });
    });
    const isolated = db.transaction((ops: Op[]): Outcome<unknown>[] => {
      this.#checkDataVersion();
      return ops.map((op) => {
        try {
          const out = one(op);
          // Later operations of the batch read the cache, so it follows each released savepoint at once; if the
          // batch's COMMIT fails, onBatchFailure drops the whole cache.
          if (out.decision.mutation !== null) this.#cache.applyCommitted(out.accountId, out.decision.mutation);
          return { ok: true, value: out.decision.result };
        } catch (error) {
          return { ok: false, error }; // rolled back to its savepoint; the cache was not touched
        }
      });
    });
    const runBatch = (ops: Op[]): Outcome<unknown>[] => {
      opThrew = false;
      try {
        return fast.immediate(ops);
      } catch (error) {
        this.#cache.clear();
        // BEGIN or COMMIT failed (busy, disk): the batch fails as a whole. One operation alone: its failure is the batch's.
        if (!opThrew || ops.length === 1) throw error;
        return isolated.immediate(ops);
      }
    };
    this.#ops = new GroupCommitter<Op, unknown>(runBatch, () => this.#cache.clear());
    this.#one = one;
    this.#gate = txGate(db);
    // Queued operations commit before an order takes the connection; an order that rolls back may have
    // touched cached accounts, so the cache is dropped and rebuilt from the database.
    this.#gate.onBeforeAcquire(() => this.#ops.flushNow());
    this.#gate.onAfterRollback(() => this.#cache.clear());
  }

  /** Another connection committed since we last looked: nothing cached can be trusted. */
  #checkDataVersion(): void {
    const v = this.#s.dataVersion.get() as number;
    if (v !== this.#dataVersion) {
      this.#cache.clear();
      this.#dataVersion = v;
    }
  }

  #reservation(id: string): Reservation | null {
    const cached = this.#cache.openReservation(id);
    if (cached !== undefined) return cached;
    const row = this.#s.reservationPartsById.get(id) as [string, string, number, number | null] | undefined;
    return row === undefined ? null : reservationFromParts(row[0], row[1], row[2], row[3]);
  }

  #view(scope: AccountScope): AccountView {
    const s = this.#s;
    const reservation = scope.reservationId === undefined ? null : this.#reservation(scope.reservationId);
    const accountId = scope.accountId ?? reservation?.accountId ?? '';
    const nowMs = scope.nowMs;
    const entry = this.#cache.account(accountId, nowMs, this.#load);
    const buckets: Bucket[] = [];
    for (const b of entry.buckets.values()) {
      if (b.expiresAtMs === null || b.expiresAtMs > nowMs) buckets.push(b);
      else if (b.held === 0 && b.amount - b.consumed - b.forfeited === 0) entry.buckets.delete(b.id); // spent history
    }
    // No named closures here: this runs twice per request, and tsx wraps every named function it creates (__name).
    const seen = new Set<string>();
    for (const b of buckets) seen.add(b.id);
    for (const a of reservation?.allocations ?? []) {
      if (seen.has(a.bucketId)) continue;
      const cached = entry.buckets.get(a.bucketId);
      const row = cached === undefined ? (s.bucketById.get(a.bucketId) as BucketRow | undefined) : undefined;
      addBucket(buckets, seen, accountId, cached ?? (row === undefined ? undefined : bucketFromRow(row)));
    }
    const schedules = entry.schedules.filter((sc) => sc.endsAtMs === null || sc.nextCycleStartMs < sc.endsAtMs);
    for (const sc of schedules) {
      if (sc.nextCycleStartMs > nowMs) continue;
      const row = s.bucketOfCycle.get(sc.id, sc.nextCycleIndex - 1) as BucketRow | undefined;
      if (row !== undefined) addBucket(buckets, seen, accountId, entry.buckets.get(row.id) ?? bucketFromRow(row));
    }
    if (scope.includeExpiredLeftovers === true) {
      for (const r of s.expiredLeftoverBuckets.all(accountId, nowMs) as BucketRow[]) addBucket(buckets, seen, accountId, entry.buckets.get(r.id) ?? bucketFromRow(r));
    }
    const memberId = scope.memberId ?? reservation?.memberId ?? null;
    let memberCap: AccountView['memberCap'] = null;
    const memberUsage: MemberCapUsage[] = [];
    if (memberId !== null) {
      const m = this.#cache.member(entry, accountId, memberId, this.#load);
      memberCap = m.cap;
      memberUsage.push(...[...m.rows.values()].sort((a, b) => b.cycleIndex - a.cycleIndex).slice(0, 2));
      const capCycle = reservation?.capCycleIndex ?? null;
      if (capCycle !== null && !memberUsage.some((u) => u.cycleIndex === capCycle)) {
        const at = m.rows.get(capCycle) ?? (s.memberUsageAt.get(accountId, memberId, capCycle) as MemberUsageRow | undefined);
        if (at !== undefined) memberUsage.push('member_id' in at ? memberUsageFromRow(at) : at);
      }
    }
    // A usage record is written only by the settle that closes its reservation (rsv_<requestId>, same transaction),
    // so while that reservation is open there is none to look up.
    const noRecord = scope.requestId === undefined || (reservation !== null && reservation.state === 'open' && reservation.requestId === scope.requestId);
    const usageRow = noRecord ? undefined : (s.usageByRequest.get(scope.requestId!) as UsageRow | undefined);
    return {
      accountId, nowMs, policy: entry.policy, buckets, schedules, memberCap, memberUsage, reservation,
      usageRecord: usageRow === undefined ? null : usageFromRow(usageRow),
    };
  }

  /** Write a mutation; `prior` is the reservation the view held (an update, not an insert). */
  #apply(accountId: string, m: AccountMutation, prior: Reservation | null): void {
    const s = this.#s;
    for (const b of m.bucketsCreate) {
      assert(b.accountId === accountId, `bucket ${b.id} belongs to ${b.accountId}, not ${accountId}`);
      s.insertBucket.run(bucketValues(b));
    }
    for (const d of m.bucketDeltas) {
      const changes = s.moveBucket.run(d.amount ?? 0, d.consumed ?? 0, d.held ?? 0, d.forfeited ?? 0, d.floor ?? 0, d.bucketId, accountId).changes;
      assert(changes === 1, `bucket ${d.bucketId} not in account ${accountId}`);
    }
    for (const u of m.schedulesUpdate) {
      assert(s.updateScheduleCycle.run(u.nextCycleIndex, u.nextCycleStartMs, u.scheduleId, accountId).changes === 1, `schedule ${u.scheduleId} missing`);
    }
    if (m.reservationUpsert !== null) {
      const r = m.reservationUpsert;
      assert(r.accountId === accountId, `reservation ${r.id} belongs to another account`);
      if (prior !== null && r.id === prior.id && onlyClosingChanged(prior, r)) {
        assert(s.closeReservation.run(r.state, r.validUntilMs, r.closedAtMs, r.id, r.requestId, r.accountId).changes === 1, `reservation ${r.id}: request changed`);
      } else if (prior !== null && r.id === prior.id) {
        const data = JSON.stringify(r);
        assert(s.updateReservation.run(r.state, r.validUntilMs, data, r.closedAtMs, r.id, r.requestId, r.accountId).changes === 1, `reservation ${r.id}: request changed`);
      } else {
        const changes = s.upsertReservation.run(r.id, r.requestId, r.accountId, r.memberId, r.state, r.validUntilMs, r.createdAtMs, JSON.stringify(r), r.closedAtMs).changes;
        assert(changes === 1, `reservation ${r.id}: belongs to another request or account`);
      }
    }
    for (const d of m.memberUsageDeltas) {
      if (s.moveMemberUsage.run(d.used, d.held, accountId, d.memberId, d.cycleIndex).changes === 0) {
        s.insertMemberUsage.run(accountId, d.memberId, d.cycleIndex, d.used, d.held);
      }
    }
    if (m.usageRecord !== null) s.insertUsage.run(usageValues(m.usageRecord));
    for (const e of m.ledger) s.insertLedger.run(ledgerValues(e));
    for (const e of m.events) s.insertEvent.run(e.id, e.accountId, e.type, e.subjectId, JSON.stringify(e.data), e.atMs, e.atMs);
    if (m.policyUpsert !== null) {
      const p = m.policyUpsert;
      s.upsertPolicy.run(accountId, p.overage, p.creditLimitMinor, p.currency);
    }
    if (m.memberCapUpsert !== null) {
      const c = m.memberCapUpsert;
      s.upsertCap.run(accountId, c.memberId, c.tokensPerCycle, c.cycle, c.anchorMs);
    }
  }

  runAccountOp<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T> {
    if (this.#gate.blockedForCaller()) {
      // A billing order holds the connection: wait, so this write cannot join (and be lost with) its transaction.
      return this.#gate.whenFree().then(() => this.runAccountOp(scope, decide));
    }
    if (this.#gate.heldByCaller()) {
      // Inside the order: run now, as a savepoint of the order's transaction, so it commits with the order.
      return new Promise<T>((resolve) => {
        const out = this.#one({ scope, decide });
        if (out.decision.mutation !== null) this.#cache.invalidate(out.accountId);
        resolve(out.decision.result as T);
      });
    }
    return this.#ops.submit({ scope, decide }) as Promise<T>;
  }

  /** Management writes are rare: they run their own transaction and drop the account's cache entry. */
  async #manage<T>(accountId: string, fn: () => T): Promise<T> {
    if (this.#gate.blockedForCaller()) await this.#gate.whenFree();
    this.#ops.flushNow(); // operations submitted before this write commit before it
    try {
      return this.#db.transaction(() => {
        this.#checkDataVersion();
        return fn();
      }).immediate();
    } finally {
      this.#cache.invalidate(accountId);
    }
  }

  async createBucket(bucket: Bucket, ledger: LedgerEntry[]): Promise<{ bucket: Bucket; created: boolean }> {
    return this.#manage(bucket.accountId, () => {
      const existing = this.#s.bucketByRef.get(bucket.accountId, bucket.sourceRef) as BucketRow | undefined;
      if (existing !== undefined) return { bucket: bucketFromRow(existing), created: false };
      this.#s.insertBucket.run(bucketValues(bucket));
      for (const e of ledger) this.#s.insertLedger.run(ledgerValues(e));
      return { bucket, created: true };
    });
  }

  async topUpWallet(i: { accountId: string; currency: string; amountMinor: number; sourceRef: string; atMs: number; walletIfNew: Bucket }): Promise<{ bucket: Bucket; applied: boolean }> {
    const s = this.#s;
    return this.#manage(i.accountId, () => {
      const seen = s.topUpSeen.get(i.accountId, i.sourceRef) as { bucket_id: string } | undefined;
      if (seen !== undefined) return { bucket: bucketFromRow(s.bucketById.get(seen.bucket_id) as BucketRow), applied: false };
      let wallet = s.bucketByRef.get(i.accountId, i.walletIfNew.sourceRef) as BucketRow | undefined;
      if (wallet === undefined) {
        s.insertBucket.run(bucketValues(i.walletIfNew));
        wallet = bucketToRow(i.walletIfNew);
      }
      s.moveBucket.run(i.amountMinor, 0, 0, 0, 0, wallet.id, i.accountId);
      s.insertLedger.run(ledgerValues({ id: `topup:${i.sourceRef}:${wallet.id}`, accountId: i.accountId, op: 'topup', debit: 'house:issuance:wallet',
        credit: `bucket:${wallet.id}`, unit: 'money', currency: i.currency, amount: i.amountMinor, requestId: null, atMs: i.atMs }));
      s.insertTopUp.run(i.accountId, i.sourceRef, wallet.id, i.amountMinor, i.atMs);
      return { bucket: bucketFromRow(s.bucketById.get(wallet.id) as BucketRow), applied: true };
    });
  }

  async createSchedule(sc: AllowanceSchedule): Promise<{ schedule: AllowanceSchedule; created: boolean }> {
    return this.#manage(sc.accountId, () => {
      const existing = this.#s.scheduleByRef.get(sc.accountId, sc.sourceRef) as ScheduleRow | undefined;
      if (existing !== undefined) return { schedule: scheduleFromRow(existing), created: false };
      this.#s.insertSchedule.run(SCHEDULE_COLS.map((c) => (scheduleToRow(sc) as unknown as Record<string, unknown>)[c]));
      return { schedule: sc, created: true };
    });
  }

  async endSchedule(scheduleId: string, endsAtMs: number): Promise<AllowanceSchedule | null> {
    const found = this.#s.scheduleById.get(scheduleId) as ScheduleRow | undefined;
    if (found === undefined) return null;
    return this.#manage(found.account_id, () => {
      this.#s.endSchedule.run({ id: scheduleId, at: endsAtMs });
      return scheduleFromRow(this.#s.scheduleById.get(scheduleId) as ScheduleRow);
    });
  }

  async listBuckets(accountId: string): Promise<Bucket[]> {
    return (this.#s.accountBuckets.all(accountId) as BucketRow[]).map(bucketFromRow);
  }

  async listUsage(accountId: string, fromMs: number, toMs: number): Promise<UsageRecord[]> {
    return (this.#s.usageRange.all(accountId, fromMs, toMs) as UsageRow[]).map(usageFromRow);
  }

  async getUsageRecord(requestId: string): Promise<UsageRecord | null> {
    const row = this.#s.usageByRequest.get(requestId) as UsageRow | undefined;
    return row === undefined ? null : usageFromRow(row);
  }

  async getReservation(reservationId: string): Promise<Reservation | null> {
    const row = this.#s.reservationById.get(reservationId) as ReservationRow | undefined;
    return row === undefined ? null : reservationFromRow(row);
  }

  async listOpenReservations(accountId: string): Promise<Reservation[]> {
    return (this.#s.openReservations.all(accountId) as ReservationRow[]).map(reservationFromRow);
  }

  async listLedger(accountId: string): Promise<LedgerEntry[]> {
    return (this.#s.ledger.all(accountId) as LedgerRow[]).map(ledgerFromRow);
  }

  async listEvents(accountId: string, afterId: string | null, limit: number): Promise<StoredChargingEvent[]> {
    const rows = afterId === null ? this.#s.eventsFirst.all(accountId, limit) : this.#s.eventsAfter.all(accountId, afterId, limit);
    return (rows as EventRow[]).map(eventFromRow);
  }

  async findExpiredReservations(beforeMs: number, limit: number): Promise<{ reservationId: string; accountId: string }[]> {
    return (this.#s.expiredReservations.all(beforeMs, limit) as { id: string; account_id: string }[]).map((r) => ({ reservationId: r.id, accountId: r.account_id }));
  }

  async findAccountsWithExpiredLeftovers(fromMs: number, toMs: number, limit: number): Promise<string[]> {
    return (this.#s.accountsWithLeftovers.all(fromMs, toMs, limit) as { account_id: string }[]).map((r) => r.account_id);
  }

  async findAccountsWithDueSchedules(nowMs: number, limit: number): Promise<string[]> {
    return (this.#s.accountsWithDue.all(nowMs, limit) as { account_id: string }[]).map((r) => r.account_id);
  }

  async claimPendingEvents(nowMs: number, limit: number, leaseMs: number): Promise<StoredChargingEvent[]> {
    return this.#db.transaction(() => {
      const rows = this.#s.pendingEvents.all(nowMs, limit) as EventRow[];
      for (const r of rows) this.#s.leaseEvent.run(nowMs + leaseMs, r.id);
      return rows.map(eventFromRow);
    }).immediate();
  }

  async markEventDelivered(eventId: string, atMs: number): Promise<void> {
    this.#s.eventDelivered.run(atMs, eventId);
  }

  async markEventAttemptFailed(eventId: string, attempts: number, nextAttemptAtMs: number | null): Promise<void> {
    this.#s.eventFailed.run(attempts, nextAttemptAtMs, nextAttemptAtMs, eventId);
  }
}

export function openSqliteChargingStore(db: Database): SqliteChargingStore {
  return new SqliteChargingStore(db);
}
