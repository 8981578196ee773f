/**
 * SQLite ChargingStore (default). Holds (open reservations and the amounts they hold) live in memory, see
 * hold-book.ts; a reserve or extension that moves only holds is decided without a transaction. Every operation
 * that writes rows runs in ONE BEGIN IMMEDIATE transaction (shared with
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
import type {
  AccountScope,
  AccountView,
  AllowanceSchedule,
  Bucket,
  ChargingStore,
  ChargingTx,
  ChargingTxHost,
  Decision,
  LedgerEntry,
  MemberCapUsage,
  Reservation,
  StoredChargingEvent,
  UsageRecord,
} from '../../charging/index.ts';
import { migrateChargingSchema } from './charging-schema.ts';
import { ChargingCache, type AccountEntry, type CacheLoaders } from './charging-cache.ts';
import { GroupCommitter, type Outcome } from './charging-batch.ts';
import { prepareAll, type Stmts } from './charging-statements.ts';
import { HoldBook } from './hold-book.ts';
import { BucketMoves, applyMutation, consumeEntriesOf, holdsInMemory, onlyHolds, type ApplyContext } from './charging-apply.ts';
import {
  SCHEDULE_COLS,
  bucketFromArray,
  bucketValues,
  ledgerValues,
  scheduleFromArray,
  bucketFromRow,
  bucketToRow,
  capFromRow,
  eventFromRow,
  ledgerFromRow,
  memberUsageFromRow,
  policyFromRow,
  reservationFromRow,
  reservationFromParts,
  scheduleFromRow,
  scheduleToRow,
  usageFromRow,
  type BucketRow,
  type CapRow,
  type EventRow,
  type LedgerRow,
  type MemberUsageRow,
  type PolicyRow,
  type ReservationRow,
  type ScheduleRow,
  type UsageRow,
} from './charging-rows.ts';

export interface SqliteChargingStoreOptions {
  /** Called after each group commit (the app kicks its WalFlusher here, see wal-flusher.ts). */
  afterCommit?: () => void;
}

/** One account operation waiting for its batch. */
interface Op {
  scope: AccountScope;
  decide: (view: AccountView) => Decision<unknown>;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** A view's bucket list while it is built: the live buckets of the cache entry, then the extra ones. */
interface Extra {
  buckets: Bucket[];
  entry: AccountEntry;
  accountId: string;
  nowMs: number;
  /** Ids of the extra buckets added (null until the first). */
  ids: Set<string> | null;
}

/** Whether the view already lists this bucket: a live bucket of the entry (all are listed) or an extra one. */
function listed(x: Extra, id: string): boolean {
  const cached = x.entry.buckets.get(id);
  if (cached !== undefined && (cached.expiresAtMs === null || cached.expiresAtMs > x.nowMs)) return true;
  return x.ids !== null && x.ids.has(id);
}

/** Add a bucket the view needs besides the live ones (once, and only the account's own). */
function addBucket(x: Extra, b: Bucket | undefined): void {
  if (b === undefined || listed(x, b.id) || b.accountId !== x.accountId) return;
  (x.ids ??= new Set()).add(b.id);
  x.buckets.push(b);
}

/** reservationId === `rsv_${requestId}`, compared without building the string (twice per request). */
function isReservationIdOf(reservationId: string | undefined, requestId: string): boolean {
  return reservationId !== undefined && reservationId.length === requestId.length + 4 && reservationId.startsWith('rsv_') && reservationId.endsWith(requestId);
}

export class SqliteChargingStore implements ChargingStore, ChargingTxHost {
  readonly #db: Database;
  readonly #s: Stmts;
  readonly #cache = new ChargingCache();
  readonly #holds = new HoldBook();
  readonly #applyCtx: ApplyContext;
  readonly #load: CacheLoaders;
  #dataVersion = -1;
  /** Exclusive locking mode: no other connection can write, so there is nothing for data_version to catch. */
  readonly #soleWriter: boolean;
  readonly #ops: GroupCommitter<Op, unknown>;
  readonly #one: (op: Op) => { accountId: string; decision: Decision<unknown> };
  /**
   * A request id at or above every request id a reservation or usage record carries, or undefined until first
   * needed (then read from the two tables' primary keys). A reserve whose request id sorts above it can have no
   * reservation row and no usage record, so its view skips both lookups: request ids the gateway makes are
   * time-sortable and increasing, so that is nearly every reserve. Only ever raised while this process writes;
   * dropped with the cache when another connection commits.
   */
  #highWater: string | undefined;
  readonly #maxIds: { usage: Statement; reservation: Statement };

  constructor(db: Database, o: SqliteChargingStoreOptions = {}) {
    this.#db = db;
    // Journal mode, synchronous and busy_timeout belong to whoever opens the shared file (src/store/sqlite/db.ts:
    // WAL + NORMAL by default, FULL on request); this store must not override the operator's durability choice.
    migrateChargingSchema(db);
    this.#soleWriter = String(db.pragma('locking_mode', { simple: true })).toLowerCase() === 'exclusive';
    const s = (this.#s = prepareAll(db));
    this.#maxIds = {
      usage: db.prepare('SELECT max(request_id) FROM charging_usage_records').pluck(true),
      reservation: db.prepare('SELECT max(id) FROM charging_reservations').pluck(true),
    };
    this.#load = {
      liveBuckets: (accountId, nowMs) =>
        (this.#writeMoves(), s.liveBucketsRaw.all(accountId, nowMs) as unknown[][]).map((a) => this.#holds.overlay(bucketFromArray(a))),
      schedules: (accountId) => (s.schedulesRaw.all(accountId) as unknown[][]).map(scheduleFromArray),
      policy: (accountId) => {
        const row = s.policy.get(accountId) as PolicyRow | undefined;
        return row === undefined ? null : policyFromRow(row);
      },
      cap: (accountId, memberId) => {
        const row = s.cap.get(accountId, memberId) as CapRow | undefined;
        return row === undefined ? null : capFromRow(row);
      },
      latestMemberUsage: (accountId, memberId) =>
        this.#holds.overlayMember(
          accountId,
          memberId,
          (s.memberUsageLatestRaw.all(accountId, memberId) as number[][]).map(([cycleIndex, used, held]) => ({
            accountId,
            memberId,
            cycleIndex: cycleIndex!,
            used: used!,
            held: held!,
          })),
        ),
    };
    this.#applyCtx = {
      s,
      holds: this.#holds,
      noteRequestId: (requestId) => {
        if (this.#highWater !== undefined && requestId > this.#highWater) this.#highWater = requestId;
      },
      moves: null,
      effectiveBucket: (accountId, bucketId) => {
        const cached = this.#cache.peekBucket(accountId, bucketId);
        if (cached !== undefined) return cached;
        this.#writeMoves();
        const row = s.bucketById.get(bucketId) as BucketRow | undefined;
        return row === undefined ? undefined : this.#holds.overlay(bucketFromRow(row));
      },
    };
    // One operation: view, decide, write; `one` wraps it in a SAVEPOINT (it is always called inside a transaction).
    const body = (op: Op) => {
      const view = this.#view(op.scope);
      const decision = op.decide(view);
      const m = decision.mutation;
      if (m !== null) applyMutation(this.#applyCtx, view.accountId, m, view.reservation, holdsInMemory(m, view.reservation, this.#holds));
      return { accountId: view.accountId, decision };
    };
    const one = db.transaction(body);
    // Fast path: the batch's operations run without savepoints (SAVEPOINT + RELEASE per operation cost as much as a
    // bucket update). Operations only throw on bugs or broken I/O; then the whole transaction rolled back, the cache
    // (which followed the undone operations) is dropped, and the batch is re-run with one savepoint per operation so
    // only the failing one fails. Re-running `decide` is allowed by the store port (planners are side-effect free
    // apart from ids).
    let opThrew = false;
    const moves = new BucketMoves();
    const ctx = this.#applyCtx;
    const fast = db.transaction((ops: Op[]): Outcome<unknown>[] => {
      this.#checkDataVersion();
      // The batch's bucket moves are summed per bucket and written before any read of bucket rows and before
      // COMMIT (see BucketMoves); a failing write is handled like a failing operation.
      ctx.moves = moves;
      try {
        const out = ops.map((op): Outcome<unknown> => {
          const o = body(op);
          if (o.decision.mutation !== null) this.#cache.applyCommitted(o.accountId, o.decision.mutation);
          return { ok: true, value: o.decision.result };
        });
        moves.flush(s);
        return out;
      } catch (error) {
        opThrew = true;
        throw error;
      } finally {
        ctx.moves = null;
        moves.clear();
      }
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
    // The memory holds follow the transaction: begin with it, undone if it rolls back.
    const holds = this.#holds;
    const inTx = (run: (ops: Op[]) => Outcome<unknown>[], ops: Op[]): Outcome<unknown>[] => {
      holds.begin();
      try {
        const out = run(ops);
        holds.commit();
        return out;
      } catch (error) {
        holds.rollback();
        throw error;
      }
    };
    const afterCommit = o.afterCommit ?? (() => undefined);
    const runBatch = (ops: Op[]): Outcome<unknown>[] => {
      opThrew = false;
      let out: Outcome<unknown>[];
      try {
        out = inTx((o) => fast.immediate(o), ops);
      } catch (error) {
        this.#cache.clear();
        // BEGIN or COMMIT failed (busy, disk): the batch fails as a whole. One operation alone: its failure is the batch's.
        if (!opThrew || ops.length === 1) throw error;
        out = inTx((o) => isolated.immediate(o), ops);
      }
      afterCommit();
      return out;
    };
    this.#ops = new GroupCommitter<Op, unknown>(runBatch, () => this.#cache.clear());
    this.#one = one;
  }

  /** Another connection committed since we last looked: nothing cached can be trusted. */
  #checkDataVersion(): void {
    if (this.#soleWriter) return;
    const v = this.#s.dataVersion.get() as number;
    if (v !== this.#dataVersion) {
      this.#cache.clear();
      this.#highWater = undefined;
      this.#dataVersion = v;
    }
  }

  /** Write the bucket moves a batch holds back, before bucket rows are read (see BucketMoves). */
  #writeMoves(): void {
    const m = this.#applyCtx.moves;
    if (m !== null && m.size > 0) m.flush(this.#s);
  }

  #reservation(id: string): Reservation | null {
    const cached = this.#cache.openReservation(id) ?? this.#holds.reservation(id);
    if (cached !== undefined) return cached;
    const row = this.#s.reservationPartsById.get(id) as [string, string, number, number | null] | undefined;
    return row === undefined ? null : reservationFromParts(row[0], row[1], row[2], row[3]);
  }

  /** True when no reservation or usage record can carry this request id (see #highWater). */
  #unusedRequestId(requestId: string): boolean {
    if (this.#highWater === undefined) {
      const usage = (this.#maxIds.usage.get() as string | null) ?? '';
      const reservation = ((this.#maxIds.reservation.get() as string | null) ?? 'rsv_').slice(4); // ids are rsv_<requestId>
      const held = this.#holds.maxRequestId(); // holds have no row
      this.#highWater = [usage, reservation, held].reduce((a, b) => (b > a ? b : a));
    }
    // Only an ASCII id counts: there JavaScript's string order is SQLite's (BINARY: UTF-8 bytes, i.e. code points).
    // Tested last, so a settle (its id is at or below the mark) never runs the regex.
    return requestId > this.#highWater && PRINTABLE_ASCII.test(requestId);
  }

  #view(scope: AccountScope): AccountView {
    const s = this.#s;
    // A reserve with a request id nothing carries yet: no reservation or record to look up.
    const rid = scope.requestId;
    const unused = rid !== undefined && isReservationIdOf(scope.reservationId, rid) && this.#unusedRequestId(rid);
    const reservation = scope.reservationId === undefined || unused ? null : this.#reservation(scope.reservationId);
    const accountId = scope.accountId ?? reservation?.accountId ?? '';
    const nowMs = scope.nowMs;
    const entry = this.#cache.account(accountId, nowMs, this.#load);
    const buckets: Bucket[] = [];
    for (const b of entry.buckets.values()) {
      if (b.expiresAtMs === null || b.expiresAtMs > nowMs) buckets.push(b);
      else if (b.held === 0 && b.amount - b.consumed - b.forfeited === 0) entry.buckets.delete(b.id); // spent history
    }
    // Buckets the view needs besides the live ones (a hold's expired buckets, the previous cycle of a due schedule,
    // expired leftovers). `extra` holds their ids once there is one. No named closures here: this runs twice per
    // request, and tsx wraps every named function it creates (__name).
    const extra: Extra = { buckets, entry, accountId, nowMs, ids: null };
    if (reservation !== null) {
      for (const a of reservation.allocations) {
        if (listed(extra, a.bucketId)) continue;
        const cached = entry.buckets.get(a.bucketId);
        if (cached === undefined) this.#writeMoves();
        const row = cached === undefined ? (s.bucketById.get(a.bucketId) as BucketRow | undefined) : undefined;
        addBucket(extra, cached ?? (row === undefined ? undefined : this.#holds.overlay(bucketFromRow(row))));
      }
    }
    const schedules = entry.activeSchedules;
    for (const sc of schedules) {
      if (sc.nextCycleStartMs > nowMs) continue;
      this.#writeMoves();
      const row = s.bucketOfCycle.get(sc.id, sc.nextCycleIndex - 1) as BucketRow | undefined;
      if (row !== undefined) addBucket(extra, entry.buckets.get(row.id) ?? this.#holds.overlay(bucketFromRow(row)));
    }
    if (scope.includeExpiredLeftovers === true) {
      this.#writeMoves();
      for (const r of s.expiredLeftoverBuckets.all(accountId, nowMs) as BucketRow[])
        addBucket(extra, entry.buckets.get(r.id) ?? this.#holds.overlay(bucketFromRow(r)));
    }
    const memberId = scope.memberId ?? reservation?.memberId ?? null;
    let memberCap: AccountView['memberCap'] = null;
    const memberUsage: MemberCapUsage[] = [];
    if (memberId !== null) {
      const m = this.#cache.member(entry, accountId, memberId, this.#load);
      memberCap = m.cap;
      // The two newest rows, newest first (cycle indexes are unique keys).
      let first: MemberCapUsage | undefined;
      let second: MemberCapUsage | undefined;
      for (const u of m.rows.values()) {
        if (first === undefined || u.cycleIndex > first.cycleIndex) {
          second = first;
          first = u;
        } else if (second === undefined || u.cycleIndex > second.cycleIndex) second = u;
      }
      if (first !== undefined) memberUsage.push(first);
      if (second !== undefined) memberUsage.push(second);
      const capCycle = reservation?.capCycleIndex ?? null;
      if (capCycle !== null && first?.cycleIndex !== capCycle && second?.cycleIndex !== capCycle) {
        const cachedRow = m.rows.get(capCycle); // the cache's rows already carry the memory holds
        if (cachedRow !== undefined) memberUsage.push(cachedRow);
        else {
          const row = s.memberUsageAt.get(accountId, memberId, capCycle) as MemberUsageRow | undefined;
          const at = this.#holds.overlayMember(accountId, memberId, row === undefined ? [] : [memberUsageFromRow(row)]).find((u) => u.cycleIndex === capCycle);
          if (at !== undefined) memberUsage.push(at);
        }
      }
    }
    // A usage record is written only by the settle that closes its reservation (rsv_<requestId>, same transaction),
    // so while that reservation is open there is none to look up.
    const noRecord = unused || rid === undefined || (reservation !== null && reservation.state === 'open' && reservation.requestId === rid);
    const usageRow = noRecord ? undefined : (s.usageByRequest.get(rid) as UsageRow | undefined);
    return {
      accountId,
      nowMs,
      policy: entry.policy,
      buckets,
      schedules,
      memberCap,
      memberUsage,
      reservation,
      usageRecord: usageRow === undefined ? null : usageFromRow(usageRow),
    };
  }

  runAccountOp<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T> {
    // A reserve or an extension usually moves only memory holds: decide it now, without a transaction, when no
    // earlier operation is waiting for its batch (so operations still take effect in the order they came).
    if (scope.holdsOnly === true && this.#ops.pending === 0) {
      const now = this.#decideInMemory(scope, decide);
      if (now !== undefined) return now;
    }
    return this.#ops.submit({ scope, decide }) as Promise<T>;
  }

  /** Undefined when the decision must write rows: the caller then queues it (decide runs again, on a fresh view). */
  #decideInMemory<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T> | undefined {
    this.#checkDataVersion();
    const view = this.#view(scope);
    const decision = decide(view);
    const m = decision.mutation;
    if (m !== null) {
      const inMemory = holdsInMemory(m, view.reservation, this.#holds);
      if (!onlyHolds(m, inMemory)) return undefined;
      try {
        applyMutation(this.#applyCtx, view.accountId, m, view.reservation, inMemory);
      } catch (error) {
        return Promise.reject(error);
      }
      this.#cache.applyCommitted(view.accountId, m);
    }
    return Promise.resolve(decision.result);
  }

  /** Billing's entry (charging/billing-ops.ts): queued operations commit before the billing transaction opens. */
  flushPending(): void {
    this.#ops.flushNow();
  }

  /** After the billing transaction: what it wrote (or rolled back) is read again from the database. */
  forget(accountId: string): void {
    this.#cache.invalidate(accountId);
  }

  /** Synchronous operations on this connection, inside the billing store's open transaction (savepoints). */
  tx(): ChargingTx {
    const s = this.#s;
    return {
      runAccountOp: <T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): T => {
        this.#checkDataVersion();
        return this.#one({ scope, decide }).decision.result as T;
      },
      createSchedule: (sc: AllowanceSchedule): void => {
        if (s.scheduleByRef.get(sc.accountId, sc.sourceRef) !== undefined) return;
        s.insertSchedule.run(SCHEDULE_COLS.map((c) => (scheduleToRow(sc) as unknown as Record<string, unknown>)[c]));
      },
      endSchedule: (scheduleId: string, endsAtMs: number): void => {
        s.endSchedule.run({ id: scheduleId, at: endsAtMs });
      },
    };
  }

  /** Management writes are rare: they run their own transaction and drop the account's cache entry. */
  async #manage<T>(accountId: string, fn: () => T): Promise<T> {
    this.#ops.flushNow(); // operations submitted before this write commit before it
    try {
      return this.#db
        .transaction(() => {
          this.#checkDataVersion();
          return fn();
        })
        .immediate();
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

  async topUpWallet(i: {
    accountId: string;
    currency: string;
    amountMinor: number;
    sourceRef: string;
    atMs: number;
    walletIfNew: Bucket;
  }): Promise<{ bucket: Bucket; applied: boolean }> {
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
      s.insertLedger.run(
        ledgerValues({
          id: `topup:${i.sourceRef}:${wallet.id}`,
          accountId: i.accountId,
          op: 'topup',
          debit: 'house:issuance:wallet',
          credit: `bucket:${wallet.id}`,
          unit: 'money',
          currency: i.currency,
          amount: i.amountMinor,
          requestId: null,
          atMs: i.atMs,
        }),
      );
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
    return (this.#s.accountBuckets.all(accountId) as BucketRow[]).map((r) => this.#holds.overlay(bucketFromRow(r)));
  }

  async listUsage(accountId: string, fromMs: number, toMs: number): Promise<UsageRecord[]> {
    return (this.#s.usageRange.all(accountId, fromMs, toMs) as UsageRow[]).map(usageFromRow);
  }

  async getUsageRecord(requestId: string): Promise<UsageRecord | null> {
    const row = this.#s.usageByRequest.get(requestId) as UsageRow | undefined;
    return row === undefined ? null : usageFromRow(row);
  }

  async getReservation(reservationId: string): Promise<Reservation | null> {
    const held = this.#holds.reservation(reservationId);
    if (held !== undefined) return held;
    const row = this.#s.reservationById.get(reservationId) as ReservationRow | undefined;
    return row === undefined ? null : reservationFromRow(row);
  }

  async listOpenReservations(accountId: string): Promise<Reservation[]> {
    return [...(this.#s.openReservations.all(accountId) as ReservationRow[]).map(reservationFromRow), ...this.#holds.openReservations(accountId)];
  }

  /** The ledger rows plus the consume entries kept in usage records (see charging-apply.ts), by time then id. */
  async listLedger(accountId: string): Promise<LedgerEntry[]> {
    const rows = (this.#s.ledger.all(accountId) as LedgerRow[]).map(ledgerFromRow);
    const ids = new Set(rows.map((e) => e.id)); // rows written before consume entries moved into usage records
    for (const u of this.#s.usageOfAccount.all(accountId) as UsageRow[]) {
      for (const e of consumeEntriesOf(usageFromRow(u))) if (!ids.has(e.id)) rows.push(e);
    }
    return rows.sort((a, b) => a.atMs - b.atMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async listEvents(accountId: string, afterId: string | null, limit: number): Promise<StoredChargingEvent[]> {
    const rows = afterId === null ? this.#s.eventsFirst.all(accountId, limit) : this.#s.eventsAfter.all(accountId, afterId, limit);
    return (rows as EventRow[]).map(eventFromRow);
  }

  async findExpiredReservations(beforeMs: number, limit: number): Promise<{ reservationId: string; accountId: string }[]> {
    const rows = this.#s.expiredReservations.all(beforeMs, limit) as { id: string; account_id: string; valid_until_ms: number }[];
    const due = [
      ...rows.map((r) => ({ reservationId: r.id, accountId: r.account_id, validUntilMs: r.valid_until_ms })),
      ...this.#holds.expired(beforeMs, limit),
    ];
    due.sort((a, b) => a.validUntilMs - b.validUntilMs);
    return due.slice(0, limit).map((d) => ({ reservationId: d.reservationId, accountId: d.accountId }));
  }

  async findAccountsWithExpiredLeftovers(fromMs: number, toMs: number, limit: number): Promise<string[]> {
    return (this.#s.accountsWithLeftovers.all(fromMs, toMs, limit) as { account_id: string }[]).map((r) => r.account_id);
  }

  async findAccountsWithDueSchedules(nowMs: number, limit: number): Promise<string[]> {
    return (this.#s.accountsWithDue.all(nowMs, limit) as { account_id: string }[]).map((r) => r.account_id);
  }

  async claimPendingEvents(nowMs: number, limit: number, leaseMs: number): Promise<StoredChargingEvent[]> {
    return this.#db
      .transaction(() => {
        const rows = this.#s.pendingEvents.all(nowMs, limit) as EventRow[];
        for (const r of rows) this.#s.leaseEvent.run(nowMs + leaseMs, r.id);
        return rows.map(eventFromRow);
      })
      .immediate();
  }

  async markEventDelivered(eventId: string, atMs: number): Promise<void> {
    this.#s.eventDelivered.run(atMs, eventId);
  }

  async markEventAttemptFailed(eventId: string, attempts: number, nextAttemptAtMs: number | null): Promise<void> {
    this.#s.eventFailed.run(attempts, nextAttemptAtMs, nextAttemptAtMs, eventId);
  }
}

export function openSqliteChargingStore(db: Database, o: SqliteChargingStoreOptions = {}): SqliteChargingStore {
  return new SqliteChargingStore(db, o);
}
