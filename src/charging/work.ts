/**
 * A working copy of an AccountView that pure planners mutate step by step; it records every change as the
 * AccountMutation the store applies atomically. Later steps of one operation see earlier steps' effects.
 */
import { assert } from '../core/index.ts';
import type { AccountMutation, AccountView, BucketDelta } from './store.ts';
import type {
  AccountPolicy, AllowanceSchedule, Bucket, ChargingEvent, LedgerEntry, LedgerOp, MemberCap, MemberCapUsage,
  Reservation, UsageRecord,
} from './types.ts';
import { available } from './burn-down.ts';

type Delta = Required<Omit<BucketDelta, 'bucketId'>>;

export class Work {
  readonly nowMs: number;
  readonly accountId: string;
  readonly buckets = new Map<string, Bucket>();
  readonly schedules: AllowanceSchedule[];
  policy: AccountPolicy | null;
  memberCap: MemberCap | null;
  reservation: Reservation | null;
  readonly usageRecord: UsageRecord | null;
  readonly #created = new Set<string>();
  readonly #deltas = new Map<string, Delta>();
  readonly #memberRows = new Map<string, MemberCapUsage>();
  readonly #memberDeltas = new Map<string, { memberId: string; cycleIndex: number; used: number; held: number }>();
  readonly #ledger: LedgerEntry[] = [];
  readonly #events: ChargingEvent[] = [];
  readonly #schedulesUpdate = new Map<string, { scheduleId: string; nextCycleIndex: number; nextCycleStartMs: number }>();
  #reservationChanged = false;
  #newUsageRecord: UsageRecord | null = null;
  #policyChanged = false;
  #capChanged = false;

  constructor(view: AccountView) {
    this.nowMs = view.nowMs;
    this.accountId = view.accountId;
    for (const b of view.buckets) this.buckets.set(b.id, { ...b });
    this.schedules = view.schedules.map((s) => ({ ...s }));
    this.policy = view.policy;
    this.memberCap = view.memberCap;
    this.reservation = view.reservation === null ? null : { ...view.reservation, allocations: view.reservation.allocations.map((a) => ({ ...a })) };
    this.usageRecord = view.usageRecord;
    for (const r of view.memberUsage) this.#memberRows.set(`${r.memberId}#${r.cycleIndex}`, { ...r });
  }

  bucket(id: string): Bucket {
    const b = this.buckets.get(id);
    assert(b !== undefined, `bucket ${id} not in view`);
    return b;
  }

  createBucket(b: Bucket): void {
    assert(!this.buckets.has(b.id), `bucket ${b.id} exists`);
    this.buckets.set(b.id, { ...b });
    this.#created.add(b.id);
  }

  /** Move counters of a bucket; checks the no-overspend invariant on the working state. */
  move(bucketId: string, d: Partial<Delta>): void {
    const b = this.bucket(bucketId);
    b.amount += d.amount ?? 0;
    b.consumed += d.consumed ?? 0;
    b.held += d.held ?? 0;
    b.forfeited += d.forfeited ?? 0;
    b.floor += d.floor ?? 0;
    assert(b.held >= 0 && b.consumed >= 0 && b.forfeited >= 0 && b.floor <= 0, `bucket ${b.id} counters negative`);
    assert(available(b) >= 0, `bucket ${b.id} overspent`);
    if (this.#created.has(bucketId)) return;
    const acc = this.#deltas.get(bucketId) ?? { amount: 0, consumed: 0, held: 0, forfeited: 0, floor: 0 };
    acc.amount += d.amount ?? 0;
    acc.consumed += d.consumed ?? 0;
    acc.held += d.held ?? 0;
    acc.forfeited += d.forfeited ?? 0;
    acc.floor += d.floor ?? 0;
    this.#deltas.set(bucketId, acc);
  }

  memberRow(memberId: string, cycleIndex: number): MemberCapUsage {
    const key = `${memberId}#${cycleIndex}`;
    let row = this.#memberRows.get(key);
    if (row === undefined) {
      row = { accountId: this.accountId, memberId, cycleIndex, used: 0, held: 0 };
      this.#memberRows.set(key, row);
    }
    return row;
  }

  moveMember(memberId: string, cycleIndex: number, d: { used?: number; held?: number }): void {
    const row = this.memberRow(memberId, cycleIndex);
    row.used += d.used ?? 0;
    row.held += d.held ?? 0;
    assert(row.used >= 0 && row.held >= 0, `member ${memberId} usage negative`);
    const key = `${memberId}#${cycleIndex}`;
    const acc = this.#memberDeltas.get(key) ?? { memberId, cycleIndex, used: 0, held: 0 };
    acc.used += d.used ?? 0;
    acc.held += d.held ?? 0;
    this.#memberDeltas.set(key, acc);
  }

  ledger(op: LedgerOp, ref: string, e: { debit: string; credit: string; bucket: Bucket; amount: number; requestId?: string | null }): void {
    if (e.amount === 0) return;
    assert(e.amount > 0 && Number.isSafeInteger(e.amount), 'ledger amount must be a positive integer');
    this.#ledger.push({
      id: `${op}:${ref}:${e.bucket.id}`, accountId: this.accountId, op, debit: e.debit, credit: e.credit,
      unit: e.bucket.unit, currency: e.bucket.currency, amount: e.amount, requestId: e.requestId ?? null, atMs: this.nowMs,
    });
  }

  event(e: ChargingEvent): void {
    this.#events.push(e);
  }

  updateSchedule(s: AllowanceSchedule): void {
    this.#schedulesUpdate.set(s.id, { scheduleId: s.id, nextCycleIndex: s.nextCycleIndex, nextCycleStartMs: s.nextCycleStartMs });
  }

  setReservation(r: Reservation): void {
    this.reservation = r;
    this.#reservationChanged = true;
  }

  setUsageRecord(u: UsageRecord): void {
    this.#newUsageRecord = u;
  }

  setPolicy(p: AccountPolicy): void {
    this.policy = p;
    this.#policyChanged = true;
  }

  setMemberCap(c: MemberCap): void {
    this.memberCap = c;
    this.#capChanged = true;
  }

  get changed(): boolean {
    return this.#created.size + this.#deltas.size + this.#memberDeltas.size + this.#ledger.length + this.#events.length +
      this.#schedulesUpdate.size > 0 || this.#reservationChanged || this.#newUsageRecord !== null || this.#policyChanged || this.#capChanged;
  }

  toMutation(): AccountMutation | null {
    if (!this.changed) return null;
    return {
      bucketsCreate: [...this.#created].map((id) => ({ ...this.bucket(id) })),
      bucketDeltas: [...this.#deltas].map(([bucketId, d]) => ({ bucketId, ...d })),
      schedulesUpdate: [...this.#schedulesUpdate.values()],
      reservationUpsert: this.#reservationChanged ? this.reservation : null,
      memberUsageDeltas: [...this.#memberDeltas.values()],
      usageRecord: this.#newUsageRecord,
      ledger: this.#ledger,
      events: this.#events,
      policyUpsert: this.#policyChanged ? this.policy : null,
      memberCapUpsert: this.#capChanged ? this.memberCap : null,
    };
  }
}
