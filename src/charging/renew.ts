/**
 * Cycle renewal and expiry (pure, on a Work). Cycle buckets are NEW rows per (schedule, cycle index), never
 * counters reset in place. Every account operation renews due cycles first, so correctness does not depend on
 * the timer: cycles skipped while the server was down are each created exactly once, already expired, and
 * their unused amount is forfeited (never usable).
 */
import type { AllowanceSchedule, Bucket } from './types.ts';
import type { Work } from './work.ts';
import { cycleStartMs } from './cycle.ts';
import { isExpired } from './burn-down.ts';

const ROLLOVER_SUFFIX = ':rollover';

export function cycleBucketRef(s: AllowanceSchedule, cycleIndex: number): string {
  return `${s.sourceRef}#${cycleIndex}`;
}

function isDue(s: AllowanceSchedule, nowMs: number): boolean {
  return s.nextCycleStartMs <= nowMs && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs);
}

/** Leftover that was neither used nor held nor already forfeited (credit lines excluded). */
export function leftover(b: Bucket): number {
  return Math.max(0, b.amount - b.consumed - b.held - b.forfeited);
}

function previousMain(w: Work, s: AllowanceSchedule, cycleIndex: number): Bucket | undefined {
  for (const b of w.buckets.values()) {
    if (b.scheduleId === s.id && b.cycleIndex === cycleIndex && !b.sourceRef.endsWith(ROLLOVER_SUFFIX)) return b;
  }
  return undefined;
}

/**
 * The cycle's reference, unless another bucket of the account already has it (data written before client
 * references were namespaced, see management.ts): then the bucket id makes it unique, so a renewal never fails
 * on the (account, sourceRef) constraint and never bricks the account.
 */
function freeRef(w: Work, ref: string, id: string, suffix = ''): string {
  for (const b of w.buckets.values()) if (b.sourceRef === ref + suffix) return `${ref}~${id}${suffix}`;
  return ref + suffix;
}

function createCycle(w: Work, s: AllowanceSchedule, newId: () => string): number {
  const k = s.nextCycleIndex;
  const startMs = cycleStartMs(s.anchorMs, s.cycle, k);
  const nextStartMs = cycleStartMs(s.anchorMs, s.cycle, k + 1);
  const expiresAtMs = s.endsAtMs === null ? nextStartMs : Math.min(nextStartMs, s.endsAtMs);
  const base = {
    accountId: s.accountId,
    memberId: s.memberId,
    unit: s.unit,
    currency: s.currency,
    kind: s.kind,
    consumed: 0,
    held: 0,
    forfeited: 0,
    floor: 0,
    effectiveAtMs: startMs,
    expiresAtMs,
    priority: s.priority,
    models: s.models,
    scheduleId: s.id,
    cycleIndex: k,
    createdAtMs: w.nowMs,
  };
  const id = newId();
  const main: Bucket = { ...base, id, amount: 0, rollover: s.rollover, sourceRef: freeRef(w, cycleBucketRef(s, k), id) };
  w.createBucket(main);
  w.move(main.id, { amount: s.amountPerCycle });
  w.ledger('grant', main.sourceRef, { debit: `house:issuance:${s.kind}`, credit: `bucket:${main.id}`, bucket: main, amount: s.amountPerCycle });
  let created = 1;
  const prev = s.rollover ? previousMain(w, s, k - 1) : undefined;
  if (prev !== undefined && leftover(prev) > 0) {
    // Carrier rollover: last cycle's unused part moves (once) into a bucket that lasts this cycle only.
    const amount = leftover(prev);
    const carryId = newId();
    const carry: Bucket = { ...base, id: carryId, amount: 0, rollover: false, sourceRef: freeRef(w, cycleBucketRef(s, k), carryId, ROLLOVER_SUFFIX) };
    w.createBucket(carry);
    w.move(prev.id, { forfeited: amount });
    w.move(carry.id, { amount });
    w.ledger('rollover', carry.sourceRef, { debit: `bucket:${prev.id}`, credit: `bucket:${carry.id}`, bucket: carry, amount });
    created++;
  }
  s.nextCycleIndex = k + 1;
  s.nextCycleStartMs = nextStartMs;
  w.updateSchedule(s);
  return created;
}

/** Create every due cycle bucket of every schedule in the view. Returns the number of buckets created. */
export function renewDueCycles(w: Work, newId: () => string): number {
  let created = 0;
  for (const s of w.schedules) {
    while (isDue(s, w.nowMs)) created += createCycle(w, s, newId);
  }
  return created;
}

/** Book the unused part of expired buckets as breakage (once: forfeited grows to the leftover). */
export function forfeitExpired(w: Work): number {
  let n = 0;
  for (const b of w.buckets.values()) {
    if (!isExpired(b, w.nowMs)) continue;
    const amount = leftover(b);
    if (amount === 0) continue;
    w.move(b.id, { forfeited: amount });
    w.ledger('forfeit', `expiry:${b.forfeited}`, { debit: `bucket:${b.id}`, credit: 'house:breakage', bucket: b, amount });
    n++;
  }
  return n;
}
