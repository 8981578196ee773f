/**
 * A working copy of an AccountView that pure planners mutate step by step; it records every change as the
 * AccountMutation the store applies atomically. Later steps of one operation see earlier steps' effects.
 *
 * Buckets, schedules and member rows are copied: planners move their counters in place (buckets and rows are
 * copied field by field, see copyBucket). The reservation is not: planners never change it in place, they build
 * the next one and hand it to setReservation. This runs twice per request, so the collections a typical reserve
 * or settle does not touch (created buckets, schedule updates, member rows) are made on first use.
 */
import { AssertionError } from '../core/index.ts';
import type { AccountMutation, AccountView, BucketDelta, MemberUsageDelta } from './store.ts';
import type {
  AccountPolicy,
  AllowanceSchedule,
  Bucket,
  ChargingEvent,
  LedgerEntry,
  LedgerOp,
  MemberCap,
  MemberCapUsage,
  Reservation,
  UsageRecord,
} from './types.ts';
import { copyBucket } from './burn-down.ts';

type Delta = Required<Omit<BucketDelta, 'bucketId'>>;
type ScheduleUpdate = AccountMutation['schedulesUpdate'][number];

const memberKey = (memberId: string, cycleIndex: number): string => `${memberId}#${cycleIndex}`;

export class Work {
  readonly nowMs: number;
  readonly accountId: string;
  readonly buckets = new Map<string, Bucket>();
  readonly schedules: AllowanceSchedule[];
  policy: AccountPolicy | null;
  memberCap: MemberCap | null;
  reservation: Reservation | null;
  readonly usageRecord: UsageRecord | null;
  #created: Set<string> | null = null;
  readonly #deltas = new Map<string, Delta>();
  #memberRows: Map<string, MemberCapUsage> | null = null;
  #memberDeltas: Map<string, MemberUsageDelta> | null = null;
  readonly #ledger: LedgerEntry[] = [];
  readonly #events: ChargingEvent[] = [];
  #schedulesUpdate: Map<string, ScheduleUpdate> | null = null;
  #reservationChanged = false;
  #newUsageRecord: UsageRecord | null = null;
  #policyChanged = false;
  #capChanged = false;

  constructor(view: AccountView) {
    this.nowMs = view.nowMs;
    this.accountId = view.accountId;
    for (const b of view.buckets) this.buckets.set(b.id, copyBucket(b));
    const schedules: AllowanceSchedule[] = [];
    for (const s of view.schedules) schedules.push({ ...s });
    this.schedules = schedules;
    this.policy = view.policy;
    this.memberCap = view.memberCap;
    this.reservation = view.reservation;
    this.usageRecord = view.usageRecord;
    if (view.memberUsage.length > 0) {
      const rows = (this.#memberRows = new Map());
      for (const r of view.memberUsage) {
        rows.set(memberKey(r.memberId, r.cycleIndex), { accountId: r.accountId, memberId: r.memberId, cycleIndex: r.cycleIndex, used: r.used, held: r.held });
      }
    }
  }

  bucket(id: string): Bucket {
    const b = this.buckets.get(id);
    if (b === undefined) throw new AssertionError(`bucket ${id} not in view`);
    return b;
  }

  createBucket(b: Bucket): void {
    if (this.buckets.has(b.id)) throw new AssertionError(`bucket ${b.id} exists`);
    this.buckets.set(b.id, { ...b });
    (this.#created ??= new Set()).add(b.id);
  }

  /** Move counters of a bucket; checks the no-overspend invariant on the working state. */
  move(bucketId: string, d: Partial<Delta>): void {
    const b = this.bucket(bucketId);
    const amount = d.amount ?? 0;
    const consumed = d.consumed ?? 0;
    const held = d.held ?? 0;
    const forfeited = d.forfeited ?? 0;
    const floor = d.floor ?? 0;
    b.amount += amount;
    b.consumed += consumed;
    b.held += held;
    b.forfeited += forfeited;
    b.floor += floor;
    if (!(b.held >= 0 && b.consumed >= 0 && b.forfeited >= 0 && b.floor <= 0)) throw new AssertionError(`bucket ${b.id} counters negative`);
    // available(b) >= 0 (burn-down.ts), written out: this runs for every move
    if (!(b.amount - b.floor - b.consumed - b.held - b.forfeited >= 0)) throw new AssertionError(`bucket ${b.id} overspent`);
    if (this.#created !== null && this.#created.has(bucketId)) return;
    const acc = this.#deltas.get(bucketId);
    if (acc === undefined) {
      this.#deltas.set(bucketId, { amount, consumed, held, forfeited, floor });
      return;
    }
    acc.amount += amount;
    acc.consumed += consumed;
    acc.held += held;
    acc.forfeited += forfeited;
    acc.floor += floor;
  }

  memberRow(memberId: string, cycleIndex: number): MemberCapUsage {
    const key = memberKey(memberId, cycleIndex);
    const rows = (this.#memberRows ??= new Map());
    let row = rows.get(key);
    if (row === undefined) {
      row = { accountId: this.accountId, memberId, cycleIndex, used: 0, held: 0 };
      rows.set(key, row);
    }
    return row;
  }

  moveMember(memberId: string, cycleIndex: number, d: { used?: number; held?: number }): void {
    const row = this.memberRow(memberId, cycleIndex);
    const used = d.used ?? 0;
    const held = d.held ?? 0;
    row.used += used;
    row.held += held;
    if (!(row.used >= 0 && row.held >= 0)) throw new AssertionError(`member ${memberId} usage negative`);
    const key = memberKey(memberId, cycleIndex);
    const deltas = (this.#memberDeltas ??= new Map());
    const acc = deltas.get(key);
    if (acc === undefined) deltas.set(key, { memberId, cycleIndex, used, held });
    else {
      acc.used += used;
      acc.held += held;
    }
  }

  ledger(op: LedgerOp, ref: string, e: { debit: string; credit: string; bucket: Bucket; amount: number; requestId?: string | null }): void {
    if (e.amount === 0) return;
    if (!(e.amount > 0 && Number.isSafeInteger(e.amount))) throw new AssertionError('ledger amount must be a positive integer');
    this.#ledger.push({
      id: `${op}:${ref}:${e.bucket.id}`,
      accountId: this.accountId,
      op,
      debit: e.debit,
      credit: e.credit,
      unit: e.bucket.unit,
      currency: e.bucket.currency,
      amount: e.amount,
      requestId: e.requestId ?? null,
      atMs: this.nowMs,
    });
  }

  event(e: ChargingEvent): void {
    this.#events.push(e);
  }

  updateSchedule(s: AllowanceSchedule): void {
    (this.#schedulesUpdate ??= new Map()).set(s.id, { scheduleId: s.id, nextCycleIndex: s.nextCycleIndex, nextCycleStartMs: s.nextCycleStartMs });
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
    return (
      (this.#created?.size ?? 0) +
        this.#deltas.size +
        (this.#memberDeltas?.size ?? 0) +
        this.#ledger.length +
        this.#events.length +
        (this.#schedulesUpdate?.size ?? 0) >
        0 ||
      this.#reservationChanged ||
      this.#newUsageRecord !== null ||
      this.#policyChanged ||
      this.#capChanged
    );
  }

  toMutation(): AccountMutation | null {
    if (!this.changed) return null;
    const bucketsCreate: Bucket[] = [];
    if (this.#created !== null) for (const id of this.#created) bucketsCreate.push({ ...this.bucket(id) });
    const bucketDeltas: BucketDelta[] = [];
    for (const [bucketId, d] of this.#deltas) {
      bucketDeltas.push({ bucketId, amount: d.amount, consumed: d.consumed, held: d.held, forfeited: d.forfeited, floor: d.floor });
    }
    const memberUsageDeltas: MemberUsageDelta[] = [];
    if (this.#memberDeltas !== null) for (const d of this.#memberDeltas.values()) memberUsageDeltas.push(d);
    const schedulesUpdate: ScheduleUpdate[] = [];
    if (this.#schedulesUpdate !== null) for (const u of this.#schedulesUpdate.values()) schedulesUpdate.push(u);
    return {
      bucketsCreate,
      bucketDeltas,
      schedulesUpdate,
      reservationUpsert: this.#reservationChanged ? this.reservation : null,
      memberUsageDeltas,
      usageRecord: this.#newUsageRecord,
      ledger: this.#ledger,
      events: this.#events,
      policyUpsert: this.#policyChanged ? this.policy : null,
      memberCapUpsert: this.#capChanged ? this.memberCap : null,
    };
  }
}
