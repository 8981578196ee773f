/**
 * Writing one AccountMutation: the durable part to SQLite, the holds to the HoldBook (see hold-book.ts).
 *
 * Which holds live in memory: those of a reservation created since this process started (a new open
 * reservation, and every later extend, settle, void or expiry of it). A reservation found as an open row
 * (written by an older version, which persisted holds) keeps its holds in its row until it closes.
 *
 * The no-overspend backstop runs here on the effective values (rows + memory holds) before anything is written,
 * because SQLite's CHECK constraints see only the durable part; the constraints stay as a second backstop.
 */
import { AssertionError, assert } from '../../core/index.ts';
import type { AccountMutation, Bucket, LedgerEntry, Reservation, UsageRecord } from '../../charging/index.ts';
import type { HoldBook } from './hold-book.ts';
import type { Stmts } from './charging-statements.ts';
import { bucketValues, ledgerValues, onlyClosingChanged, usageValues } from './charging-rows.ts';

export interface ApplyContext {
  s: Stmts;
  holds: HoldBook;
  /** Called with the request id of every reservation and usage record about to be written or held. */
  noteRequestId(requestId: string): void;
  /** The bucket as planners see it (its row plus memory holds), or undefined when there is none. */
  effectiveBucket(accountId: string, bucketId: string): Bucket | undefined;
  /**
   * Inside a group commit's fast path: the batch's bucket moves, held back and summed per bucket until the store
   * flushes them (before any read of bucket rows, and before COMMIT). Null elsewhere: every move is written at once.
   */
  moves: BucketMoves | null;
}

/**
 * The bucket UPDATEs of one batch, one per bucket instead of one per operation (the bench's 30 settles per batch
 * move one row 30 times). Only moves that raise consumed, held or forfeited and leave amount and floor alone are
 * held back: along such a sequence every counter and consumed + held + forfeited only grow, so if the summed row
 * passes the table's CHECK constraints, so did every row in between (written one move at a time). Any other move
 * first writes what is held back for its bucket, then itself, so rows change in the same order as before. A
 * failing flush (a CHECK, a missing row: bugs, since checkBounds ran first on the effective values) fails the
 * batch's fast path, which the store then re-runs one operation at a time, without holding anything back.
 */
export class BucketMoves {
  /** bucket id -> [account id, consumed, held, forfeited] still to write. */
  readonly #pending = new Map<string, [string, number, number, number]>();

  get size(): number {
    return this.#pending.size;
  }

  /** Hold back a growing move (true), or write what is held back for this bucket and return false. */
  add(s: Stmts, bucketId: string, accountId: string, amount: number, consumed: number, held: number, forfeited: number, floor: number): boolean {
    const p = this.#pending.get(bucketId);
    if (amount === 0 && floor === 0 && consumed >= 0 && held >= 0 && forfeited >= 0 && (p === undefined || p[0] === accountId)) {
      if (p === undefined) this.#pending.set(bucketId, [accountId, consumed, held, forfeited]);
      else {
        p[1] += consumed;
        p[2] += held;
        p[3] += forfeited;
      }
      return true;
    }
    if (p !== undefined) {
      this.#pending.delete(bucketId);
      write(s, bucketId, p[0], 0, p[1], p[2], p[3], 0);
    }
    return false;
  }

  /** Write everything held back (the map is empty afterwards, also when a write throws). */
  flush(s: Stmts): void {
    if (this.#pending.size === 0) return;
    const all = [...this.#pending];
    this.#pending.clear();
    for (const [bucketId, [accountId, consumed, held, forfeited]] of all) write(s, bucketId, accountId, 0, consumed, held, forfeited, 0);
  }

  /** Forget what is held back (the transaction rolled back). */
  clear(): void {
    this.#pending.clear();
  }
}

function write(s: Stmts, bucketId: string, accountId: string, amount: number, consumed: number, held: number, forfeited: number, floor: number): void {
  const changes = s.moveBucket.run(amount, consumed, held, forfeited, floor, bucketId, accountId).changes;
  if (changes !== 1) throw new AssertionError(`bucket ${bucketId} not in account ${accountId}`);
}

/** Whether this mutation's holds live in memory (see the module comment). */
export function holdsInMemory(m: AccountMutation, prior: Reservation | null, holds: HoldBook): boolean {
  const r = m.reservationUpsert;
  if (r === null) return false;
  if (holds.isHeldHere(r.id)) return true;
  if (prior !== null && prior.id === r.id) return false; // an open row written by an older version keeps its holds in rows
  return r.state === 'open';
}

/** True when the mutation writes nothing to the database: it only moves memory holds (or nothing). */
export function onlyHolds(m: AccountMutation, inMemory: boolean): boolean {
  if (
    m.bucketsCreate.length > 0 ||
    m.schedulesUpdate.length > 0 ||
    m.usageRecord !== null ||
    m.ledger.length > 0 ||
    m.events.length > 0 ||
    m.policyUpsert !== null ||
    m.memberCapUpsert !== null
  )
    return false;
  if (!inMemory) return m.reservationUpsert === null && m.bucketDeltas.length === 0 && m.memberUsageDeltas.length === 0;
  if (m.reservationUpsert !== null && m.reservationUpsert.state !== 'open') return false;
  for (const d of m.bucketDeltas) if ((d.amount ?? 0) !== 0 || (d.consumed ?? 0) !== 0 || (d.forfeited ?? 0) !== 0 || (d.floor ?? 0) !== 0) return false;
  for (const d of m.memberUsageDeltas) if (d.used !== 0) return false;
  return true;
}

/** The bucket a mutation creates with this id (the last one, as a Map built from the list would give), if any. */
function createdBucket(m: AccountMutation, id: string): Bucket | undefined {
  const created = m.bucketsCreate;
  for (let i = created.length - 1; i >= 0; i--) if (created[i]!.id === id) return created[i];
  return undefined;
}

/** Throw unless bucket `id`, moved by the summed deltas, stays within its bounds. */
function checkBucket(c: ApplyContext, accountId: string, m: AccountMutation, id: string, da: number, dc: number, dh: number, df: number, dfl: number): void {
  const b = createdBucket(m, id) ?? c.effectiveBucket(accountId, id);
  if (b === undefined || b.accountId !== accountId) throw new AssertionError(`bucket ${id} not in account ${accountId}`);
  const amount = b.amount + da;
  const consumed = b.consumed + dc;
  const held = b.held + dh;
  const forfeited = b.forfeited + df;
  const floor = b.floor + dfl;
  if (!(amount >= 0 && consumed >= 0 && held >= 0 && forfeited >= 0 && floor <= 0)) throw new AssertionError(`bucket ${id}: a counter would go out of range`);
  if (!(consumed + held + forfeited <= amount - floor)) throw new AssertionError(`bucket ${id}: consumed + held + forfeited would exceed what it holds`);
}

/** Throw (before anything is written) when a bucket or a member's held amount would leave its bounds. */
function checkBounds(c: ApplyContext, accountId: string, m: AccountMutation, inMemory: boolean): void {
  const deltas = m.bucketDeltas;
  if (deltas.length === 1) {
    // One bucket moved (a reserve or settle on one bucket): no sums to gather.
    const d = deltas[0]!;
    checkBucket(c, accountId, m, d.bucketId, d.amount ?? 0, d.consumed ?? 0, d.held ?? 0, d.forfeited ?? 0, d.floor ?? 0);
  } else if (deltas.length > 1) {
    const sums = new Map<string, [number, number, number, number, number]>();
    for (const d of deltas) {
      let t = sums.get(d.bucketId);
      if (t === undefined) sums.set(d.bucketId, (t = [0, 0, 0, 0, 0]));
      t[0] += d.amount ?? 0;
      t[1] += d.consumed ?? 0;
      t[2] += d.held ?? 0;
      t[3] += d.forfeited ?? 0;
      t[4] += d.floor ?? 0;
    }
    for (const [id, [da, dc, dh, df, dfl]] of sums) checkBucket(c, accountId, m, id, da, dc, dh, df, dfl);
  }
  if (!inMemory || m.memberUsageDeltas.length === 0) return;
  const memberHeld = new Map<string, number>();
  for (const d of m.memberUsageDeltas) {
    const k = `${d.memberId}\u0000${d.cycleIndex}`;
    const next = (memberHeld.get(k) ?? c.holds.memberHeld(accountId, d.memberId, d.cycleIndex)) + d.held;
    if (!(next >= 0)) throw new AssertionError(`member ${d.memberId}: held would go negative in cycle ${d.cycleIndex}`);
    memberHeld.set(k, next);
  }
}

/**
 * Write a mutation; `prior` is the reservation the view held. Throws (and writes nothing to the holds) on a
 * bound violation or a failed row write; the caller's transaction or savepoint then rolls back the rows.
 */
export function applyMutation(c: ApplyContext, accountId: string, m: AccountMutation, prior: Reservation | null, inMemory: boolean): void {
  const s = c.s;
  checkBounds(c, accountId, m, inMemory);
  for (const b of m.bucketsCreate) {
    assert(b.accountId === accountId, `bucket ${b.id} belongs to ${b.accountId}, not ${accountId}`);
    // A bucket created by this step (a renewal) comes with what the step moved on it, holds included.
    s.insertBucket.run(bucketValues(inMemory && b.held !== 0 ? { ...b, held: 0 } : b));
  }
  for (const d of m.bucketDeltas) {
    const held = inMemory ? 0 : (d.held ?? 0);
    const amount = d.amount ?? 0,
      consumed = d.consumed ?? 0,
      forfeited = d.forfeited ?? 0,
      floor = d.floor ?? 0;
    if (held === 0 && amount === 0 && consumed === 0 && forfeited === 0 && floor === 0) continue;
    if (c.moves === null || !c.moves.add(s, d.bucketId, accountId, amount, consumed, held, forfeited, floor)) {
      write(s, d.bucketId, accountId, amount, consumed, held, forfeited, floor);
    }
  }
  for (const u of m.schedulesUpdate) {
    assert(s.updateScheduleCycle.run(u.nextCycleIndex, u.nextCycleStartMs, u.scheduleId, accountId).changes === 1, `schedule ${u.scheduleId} missing`);
  }
  const r = m.reservationUpsert;
  if (r !== null) {
    c.noteRequestId(r.requestId);
    if (r.accountId !== accountId) throw new AssertionError(`reservation ${r.id} belongs to another account`);
    // r.id === `rsv_${r.requestId}`, compared without building the string
    if (!(r.id.length === r.requestId.length + 4 && r.id.startsWith('rsv_') && r.id.endsWith(r.requestId))) {
      throw new AssertionError(`reservation ${r.id}: id must be rsv_<requestId>`);
    }
    if (inMemory) {
      // An open hold is not written; a settled one leaves its usage record; a voided or expired one leaves its row
      // (the request id stays used, and the row says what was held and why it ended).
      if (r.state === 'voided' || r.state === 'expired') upsertReservation(s, r);
    } else if (prior !== null && r.id === prior.id && onlyClosingChanged(prior, r)) {
      assert(
        s.closeReservation.run(r.state, r.validUntilMs, r.closedAtMs, r.id, r.requestId, r.accountId).changes === 1,
        `reservation ${r.id}: request changed`,
      );
    } else if (prior !== null && r.id === prior.id) {
      const data = JSON.stringify(r);
      assert(
        s.updateReservation.run(r.state, r.validUntilMs, data, r.closedAtMs, r.id, r.requestId, r.accountId).changes === 1,
        `reservation ${r.id}: request changed`,
      );
    } else {
      upsertReservation(s, r);
    }
  }
  for (const d of m.memberUsageDeltas) {
    const held = inMemory ? 0 : d.held;
    if (d.used === 0 && held === 0) continue;
    if (s.moveMemberUsage.run(d.used, held, accountId, d.memberId, d.cycleIndex).changes === 0) {
      s.insertMemberUsage.run(accountId, d.memberId, d.cycleIndex, d.used, held);
    }
  }
  const u = m.usageRecord;
  if (u !== null) {
    c.noteRequestId(u.requestId);
    s.insertUsage.run(usageValues(u));
  }
  // A settle's consume entries are exactly its usage record's charges (consumeEntriesOf): stored once, there.
  for (const e of m.ledger) if (u === null || !isConsumeOf(e, u)) s.insertLedger.run(ledgerValues(e));
  for (const e of m.events) s.insertEvent.run(e.id, e.accountId, e.type, e.subjectId, JSON.stringify(e.data), e.atMs, e.atMs);
  if (m.policyUpsert !== null) {
    const p = m.policyUpsert;
    s.upsertPolicy.run(accountId, p.overage, p.creditLimitMinor, p.currency, p.coinsPerMajor ?? null);
  }
  if (m.memberCapUpsert !== null) {
    const cap = m.memberCapUpsert;
    s.upsertCap.run(accountId, cap.memberId, cap.tokensPerCycle, cap.cycle, cap.anchorMs);
  }
  if (!inMemory) return;
  // Every row is written: now the holds move (nothing below throws, so a failed write never leaves a hold behind).
  for (const b of m.bucketsCreate) c.holds.addBucketHeld(b.id, b.held);
  for (const d of m.bucketDeltas) c.holds.addBucketHeld(d.bucketId, d.held ?? 0);
  for (const d of m.memberUsageDeltas) c.holds.addMemberHeld(accountId, d.memberId, d.cycleIndex, d.held);
  if (r !== null) c.holds.putReservation(r);
}

/**
 * The ledger entries a settle writes for the buckets that paid (`consume`, bucket -> house:revenue), rebuilt
 * from its usage record: the record's `charges` carry bucket, unit, currency and amount.
 */
export function consumeEntriesOf(u: UsageRecord): LedgerEntry[] {
  return u.charges.map((c) => ({
    id: `consume:${u.requestId}:${c.bucketId}`,
    accountId: u.accountId,
    op: 'consume' as const,
    debit: `bucket:${c.bucketId}`,
    credit: 'house:revenue',
    unit: c.unit,
    currency: c.currency,
    amount: c.amount,
    requestId: u.requestId,
    atMs: u.settledAtMs,
  }));
}

/** True when `e` is one of the entries consumeEntriesOf(u) rebuilds, field for field. */
function isConsumeOf(e: LedgerEntry, u: UsageRecord): boolean {
  if (e.op !== 'consume' || e.requestId !== u.requestId || e.atMs !== u.settledAtMs || e.accountId !== u.accountId || e.credit !== 'house:revenue')
    return false;
  for (const c of u.charges) {
    if (e.id === `consume:${u.requestId}:${c.bucketId}`) {
      return e.debit === `bucket:${c.bucketId}` && e.unit === c.unit && e.currency === c.currency && e.amount === c.amount;
    }
  }
  return false;
}

function upsertReservation(s: Stmts, r: Reservation): void {
  const changes = s.upsertReservation.run(
    r.id,
    r.requestId,
    r.accountId,
    r.memberId,
    r.state,
    r.validUntilMs,
    r.createdAtMs,
    JSON.stringify(r),
    r.closedAtMs,
  ).changes;
  assert(changes === 1, `reservation ${r.id}: belongs to another request or account`);
}
