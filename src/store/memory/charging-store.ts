/**
 * In-memory ChargingStore: the reference implementation of the port for unit tests. Each runAccountOp is
 * synchronous inside (so atomic in Node's single thread); the mutation is validated completely before any of
 * it is applied, so a rejected mutation leaves no trace, like a rolled-back transaction.
 */
import { assert } from '../../core/index.ts';
import { emptyMutation } from '../../charging/index.ts';
import type {
  AccountMutation,
  AccountPolicy,
  AccountScope,
  AccountView,
  AllowanceSchedule,
  Bucket,
  ChargingStore,
  ChargingTx,
  ChargingTxHost,
  Decision,
  LedgerEntry,
  MemberCap,
  MemberCapUsage,
  Reservation,
  StoredChargingEvent,
  UsageRecord,
} from '../../charging/index.ts';

const k = (...parts: (string | number)[]): string => parts.join('\u0000');
const clone = <T>(v: T): T => structuredClone(v);

export function checkBucket(b: Bucket): void {
  assert(b.held >= 0 && b.consumed >= 0 && b.forfeited >= 0 && b.amount >= 0 && b.floor <= 0, `bucket ${b.id}: negative counter`);
  assert(b.consumed + b.held + b.forfeited <= b.amount - b.floor, `bucket ${b.id}: consumed + held + forfeited exceeds amount - floor`);
  for (const n of [b.amount, b.consumed, b.held, b.forfeited, b.floor]) assert(Number.isSafeInteger(n), `bucket ${b.id}: non-integer counter`);
}

export class MemoryChargingStore implements ChargingStore, ChargingTxHost {
  readonly #buckets = new Map<string, Bucket>();
  readonly #bucketRefs = new Map<string, string>();
  readonly #schedules = new Map<string, AllowanceSchedule>();
  readonly #scheduleRefs = new Map<string, string>();
  readonly #policies = new Map<string, AccountPolicy>();
  readonly #caps = new Map<string, MemberCap>();
  readonly #memberUsage = new Map<string, MemberCapUsage>();
  readonly #reservations = new Map<string, Reservation>();
  readonly #usage = new Map<string, UsageRecord>();
  readonly #ledger: LedgerEntry[] = [];
  readonly #ledgerIds = new Set<string>();
  readonly #events: StoredChargingEvent[] = [];
  readonly #topUps = new Set<string>();

  #accountBuckets(accountId: string): Bucket[] {
    return [...this.#buckets.values()].filter((b) => b.accountId === accountId);
  }

  #view(scope: AccountScope): AccountView {
    const reservation = (scope.reservationId === undefined ? undefined : this.#reservations.get(scope.reservationId)) ?? null;
    const accountId = scope.accountId ?? reservation?.accountId ?? '';
    const nowMs = scope.nowMs;
    const schedules = [...this.#schedules.values()].filter((s) => s.accountId === accountId && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs));
    const wanted = new Set(reservation?.allocations.map((a) => a.bucketId) ?? []);
    const prevOfDue = new Set(schedules.filter((s) => s.nextCycleStartMs <= nowMs).map((s) => k(s.id, s.nextCycleIndex - 1)));
    const buckets = this.#accountBuckets(accountId).filter(
      (b) =>
        b.expiresAtMs === null ||
        b.expiresAtMs > nowMs ||
        wanted.has(b.id) ||
        (b.scheduleId !== null && prevOfDue.has(k(b.scheduleId, b.cycleIndex ?? -1))) ||
        (scope.includeExpiredLeftovers === true && (b.held > 0 || b.amount - b.consumed - b.held - b.forfeited > 0)),
    );
    const memberId = scope.memberId ?? reservation?.memberId ?? null;
    const memberCap = memberId === null ? null : (this.#caps.get(k(accountId, memberId)) ?? null);
    const rows =
      memberId === null
        ? []
        : [...this.#memberUsage.values()].filter((r) => r.accountId === accountId && r.memberId === memberId).sort((a, b) => b.cycleIndex - a.cycleIndex);
    const memberUsage = rows.filter((r, i) => i < 2 || r.cycleIndex === reservation?.capCycleIndex);
    const usageRecord = scope.requestId === undefined ? null : (this.#usage.get(scope.requestId) ?? null);
    return clone({
      accountId,
      nowMs,
      policy: this.#policies.get(accountId) ?? null,
      buckets,
      schedules,
      memberCap,
      memberUsage,
      reservation,
      usageRecord,
    });
  }

  /** Billing's in-transaction entry (charging/billing-ops.ts): everything here is synchronous already. */
  flushPending(): void {}
  forget(_accountId: string): void {}
  tx(): ChargingTx {
    return {
      runAccountOp: <T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): T => {
        const view = this.#view(scope);
        const d = decide(view);
        if (d.mutation !== null) this.#apply(view.accountId, d.mutation);
        return d.result;
      },
      createSchedule: (s: AllowanceSchedule): void => {
        if (this.#scheduleRefs.has(k(s.accountId, s.sourceRef))) return;
        this.#schedules.set(s.id, clone(s));
        this.#scheduleRefs.set(k(s.accountId, s.sourceRef), s.id);
      },
      endSchedule: (scheduleId: string, endsAtMs: number): void => {
        const s = this.#schedules.get(scheduleId);
        if (s !== undefined) this.#schedules.set(s.id, { ...s, endsAtMs: s.endsAtMs === null ? endsAtMs : Math.min(s.endsAtMs, endsAtMs) });
      },
    };
  }

  async runAccountOp<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T> {
    const view = this.#view(scope);
    const d = decide(view);
    if (d.mutation !== null) this.#apply(view.accountId, d.mutation);
    return d.result;
  }

  #apply(accountId: string, m: AccountMutation): void {
    // Validate everything on copies first: nothing is written unless all of it is valid.
    const next = new Map<string, Bucket>();
    for (const b of m.bucketsCreate) {
      assert(b.accountId === accountId && !this.#buckets.has(b.id) && !this.#bucketRefs.has(k(accountId, b.sourceRef)), `bucket ${b.id}: duplicate`);
      checkBucket(b);
      next.set(b.id, clone(b));
    }
    for (const d of m.bucketDeltas) {
      const cur = next.get(d.bucketId) ?? this.#buckets.get(d.bucketId);
      assert(cur !== undefined && cur.accountId === accountId, `bucket ${d.bucketId}: not in account ${accountId}`);
      const b = {
        ...cur,
        amount: cur.amount + (d.amount ?? 0),
        consumed: cur.consumed + (d.consumed ?? 0),
        held: cur.held + (d.held ?? 0),
        forfeited: cur.forfeited + (d.forfeited ?? 0),
        floor: cur.floor + (d.floor ?? 0),
      };
      checkBucket(b);
      next.set(b.id, b);
    }
    for (const e of m.ledger) assert(!this.#ledgerIds.has(e.id) && e.amount > 0, `ledger ${e.id}: duplicate or non-positive`);
    if (m.usageRecord !== null) assert(!this.#usage.has(m.usageRecord.requestId), `usage record ${m.usageRecord.requestId}: duplicate`);
    const r = m.reservationUpsert;
    if (r !== null) {
      assert(r.id === `rsv_${r.requestId}`, `reservation ${r.id}: id must be rsv_<requestId>`);
      assert(r.accountId === accountId, `reservation ${r.id} belongs to another account`);
    }
    const rows = m.memberUsageDeltas.map((d) => {
      const cur = this.#memberUsage.get(k(accountId, d.memberId, d.cycleIndex)) ?? {
        accountId,
        memberId: d.memberId,
        cycleIndex: d.cycleIndex,
        used: 0,
        held: 0,
      };
      const row = { ...cur, used: cur.used + d.used, held: cur.held + d.held };
      assert(row.used >= 0 && row.held >= 0, `member usage ${d.memberId}: negative`);
      return row;
    });
    // Apply.
    for (const b of next.values()) {
      this.#buckets.set(b.id, b);
      this.#bucketRefs.set(k(accountId, b.sourceRef), b.id);
    }
    for (const u of m.schedulesUpdate) {
      const s = this.#schedules.get(u.scheduleId);
      assert(s !== undefined, `schedule ${u.scheduleId} missing`);
      this.#schedules.set(s.id, { ...s, nextCycleIndex: u.nextCycleIndex, nextCycleStartMs: u.nextCycleStartMs });
    }
    if (r !== null) {
      this.#reservations.set(r.id, clone(r));
    }
    for (const row of rows) this.#memberUsage.set(k(accountId, row.memberId, row.cycleIndex), row);
    if (m.usageRecord !== null) this.#usage.set(m.usageRecord.requestId, clone(m.usageRecord));
    for (const e of m.ledger) {
      this.#ledger.push(clone(e));
      this.#ledgerIds.add(e.id);
    }
    for (const e of m.events) this.#events.push({ ...clone(e), deliveryState: 'pending', attempts: 0, nextAttemptAtMs: e.atMs, deliveredAtMs: null });
    if (m.policyUpsert !== null) this.#policies.set(accountId, clone(m.policyUpsert));
    if (m.memberCapUpsert !== null) this.#caps.set(k(accountId, m.memberCapUpsert.memberId), clone(m.memberCapUpsert));
  }

  async createBucket(bucket: Bucket, ledger: LedgerEntry[]): Promise<{ bucket: Bucket; created: boolean }> {
    const existing = this.#bucketRefs.get(k(bucket.accountId, bucket.sourceRef));
    if (existing !== undefined) return { bucket: clone(this.#buckets.get(existing)!), created: false };
    this.#apply(bucket.accountId, { ...emptyMutation(), bucketsCreate: [bucket], ledger });
    return { bucket: clone(bucket), created: true };
  }

  async topUpWallet(i: {
    accountId: string;
    currency: string;
    amountMinor: number;
    sourceRef: string;
    atMs: number;
    walletIfNew: Bucket;
  }): Promise<{ bucket: Bucket; applied: boolean }> {
    const walletId = this.#bucketRefs.get(k(i.accountId, i.walletIfNew.sourceRef));
    if (this.#topUps.has(k(i.accountId, i.sourceRef))) return { bucket: clone(this.#buckets.get(walletId!)!), applied: false };
    const wallet = walletId === undefined ? i.walletIfNew : this.#buckets.get(walletId)!;
    const entry: LedgerEntry = {
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
    };
    this.#apply(i.accountId, {
      ...emptyMutation(),
      bucketsCreate: walletId === undefined ? [i.walletIfNew] : [],
      bucketDeltas: [{ bucketId: wallet.id, amount: i.amountMinor }],
      ledger: [entry],
    });
    this.#topUps.add(k(i.accountId, i.sourceRef));
    return { bucket: clone(this.#buckets.get(wallet.id)!), applied: true };
  }

  async createSchedule(s: AllowanceSchedule): Promise<{ schedule: AllowanceSchedule; created: boolean }> {
    const existing = this.#scheduleRefs.get(k(s.accountId, s.sourceRef));
    if (existing !== undefined) return { schedule: clone(this.#schedules.get(existing)!), created: false };
    this.#schedules.set(s.id, clone(s));
    this.#scheduleRefs.set(k(s.accountId, s.sourceRef), s.id);
    return { schedule: clone(s), created: true };
  }

  async endSchedule(scheduleId: string, endsAtMs: number): Promise<AllowanceSchedule | null> {
    const s = this.#schedules.get(scheduleId);
    if (s === undefined) return null;
    const ended = { ...s, endsAtMs: s.endsAtMs === null ? endsAtMs : Math.min(s.endsAtMs, endsAtMs) };
    this.#schedules.set(s.id, ended);
    return clone(ended);
  }

  async listBuckets(accountId: string): Promise<Bucket[]> {
    return clone(this.#accountBuckets(accountId));
  }

  async listUsage(accountId: string, fromMs: number, toMs: number): Promise<UsageRecord[]> {
    return clone(
      [...this.#usage.values()]
        .filter((u) => u.accountId === accountId && u.settledAtMs >= fromMs && u.settledAtMs < toMs)
        .sort((a, b) => a.settledAtMs - b.settledAtMs || (a.requestId < b.requestId ? -1 : 1)),
    );
  }

  async getUsageRecord(requestId: string): Promise<UsageRecord | null> {
    return clone(this.#usage.get(requestId) ?? null);
  }

  async getReservation(reservationId: string): Promise<Reservation | null> {
    return clone(this.#reservations.get(reservationId) ?? null);
  }

  async listOpenReservations(accountId: string): Promise<Reservation[]> {
    return clone([...this.#reservations.values()].filter((r) => r.accountId === accountId && r.state === 'open'));
  }

  async listLedger(accountId: string): Promise<LedgerEntry[]> {
    return clone(this.#ledger.filter((e) => e.accountId === accountId));
  }

  async listEvents(accountId: string, afterId: string | null, limit: number): Promise<StoredChargingEvent[]> {
    const mine = this.#events.filter((e) => e.accountId === accountId);
    const start = afterId === null ? 0 : mine.findIndex((e) => e.id === afterId) + 1;
    return clone(start === 0 && afterId !== null ? [] : mine.slice(start, start + limit));
  }

  async findExpiredReservations(beforeMs: number, limit: number): Promise<{ reservationId: string; accountId: string }[]> {
    return [...this.#reservations.values()]
      .filter((r) => r.state === 'open' && r.validUntilMs < beforeMs)
      .slice(0, limit)
      .map((r) => ({ reservationId: r.id, accountId: r.accountId }));
  }

  async findAccountsWithExpiredLeftovers(fromMs: number, toMs: number, limit: number): Promise<string[]> {
    const ids = new Set<string>();
    for (const b of this.#buckets.values()) {
      const inWindow = b.expiresAtMs !== null && b.expiresAtMs > fromMs && b.expiresAtMs <= toMs;
      if (inWindow && b.amount - b.consumed - b.held - b.forfeited > 0) ids.add(b.accountId);
    }
    return [...ids].slice(0, limit);
  }

  async findAccountsWithDueSchedules(nowMs: number, limit: number): Promise<string[]> {
    const ids = new Set<string>();
    for (const s of this.#schedules.values()) {
      if (s.nextCycleStartMs <= nowMs && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs)) ids.add(s.accountId);
    }
    return [...ids].slice(0, limit);
  }

  async claimPendingEvents(nowMs: number, limit: number, leaseMs: number): Promise<StoredChargingEvent[]> {
    const due = this.#events.filter((e) => e.deliveryState === 'pending' && (e.nextAttemptAtMs ?? 0) <= nowMs).slice(0, limit);
    for (const e of due) e.nextAttemptAtMs = nowMs + leaseMs; // a lease: a second deliverer skips it meanwhile
    return clone(due);
  }

  async markEventDelivered(eventId: string, atMs: number): Promise<void> {
    const e = this.#events.find((x) => x.id === eventId);
    if (e === undefined) return;
    e.deliveryState = 'delivered';
    e.deliveredAtMs = atMs;
    e.nextAttemptAtMs = null;
  }

  async markEventAttemptFailed(eventId: string, attempts: number, nextAttemptAtMs: number | null): Promise<void> {
    const e = this.#events.find((x) => x.id === eventId);
    if (e === undefined || e.deliveryState !== 'pending') return;
    e.attempts = attempts;
    e.nextAttemptAtMs = nextAttemptAtMs;
    if (nextAttemptAtMs === null) e.deliveryState = 'failed';
  }
}

export function openMemoryChargingStore(): MemoryChargingStore {
  return new MemoryChargingStore();
}
