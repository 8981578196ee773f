/**
 * settle (CCR-Terminate): rate the actual usage with the reservation's own rate, consume it from the held
 * allocations in burn-down order, release the rest, and write the usage record and ledger in ONE atomic step.
 * Idempotent by request id: a replay returns the stored record and moves nothing.
 * If the actual cost exceeds the holds (upstream ignored max_tokens, the input estimate was low, or the hold
 * expired), the excess is charged to buckets eligible now; what no bucket can pay is recorded as leakCoins,
 * never taken past a bucket's floor.
 */
import { AssertionError, assertNonNegInt } from '../core/index.ts';
import type { Decision } from './store.ts';
import type { BucketCharge, RatedCost, SettleInput, UsageRecord } from './types.ts';
import { rateUsage } from './rate.ts';
import { available, compareBuckets, costIn, eligibleSorted, walk } from './burn-down.ts';
import { q, qCeil, qCmp, qDiv, qIsZero, qMul, qSub, Q0, Q1, type Q } from './rational.ts';
import { Work } from './work.ts';
import { capOf, catchUp, eligibility, type Ctx } from './context.ts';
import { endHold } from './release.ts';
import { emitBucketThresholds, emitMemberCapThresholds } from './thresholds.ts';

export async function settle(ctx: Ctx, i: SettleInput): Promise<UsageRecord> {
  const u = i.usage as unknown as Record<string, number>;
  for (const k of Object.keys(u)) {
    const v = u[k]!;
    if (!(Number.isSafeInteger(v) && v >= 0)) assertNonNegInt(v, `usage.${k}`);
  }
  const nowMs = ctx.deps.clock.nowMs();
  const run = (renew: boolean): Promise<UsageRecord> =>
    ctx.deps.store.runAccountOp({ accountId: null, nowMs, reservationId: i.reservationId, requestId: i.requestId }, (view) =>
      decideSettle(ctx, new Work(view), i, renew),
    );
  try {
    return await run(true);
  } catch {
    // A due cycle that cannot be written (a renewal failure) must never leave a delivered request unrecorded or
    // its hold stuck: settle again without renewing (the renewal run reports the account, the auditor too).
    return run(false);
  }
}

/** The share of `left` one allocation pays, in its unit: ceil(left x cost), capped by what it holds. */
function shareOf(left: Q, unitCost: Q | null, held: number, isRequests: boolean): { take: number; left: Q } {
  if (qIsZero(left) || unitCost === null) return { take: 0, left };
  if (isRequests) {
    const need = Number(unitCost.num / unitCost.den);
    return qCmp(left, Q1) === 0 && held >= need ? { take: need, left: Q0 } : { take: 0, left };
  }
  if (qIsZero(unitCost)) return { take: 0, left: Q0 };
  const want = qCeil(left === Q1 ? unitCost : qMul(left, unitCost)); // the first allocation pays all of it: no product
  const take = Math.min(held, want);
  return { take, left: take === want ? Q0 : qSub(left, qDiv(q(take), unitCost)) };
}

/** What one bucket pays, and its consumed count before this settle (for the threshold events). */
interface Paid {
  bucketId: string;
  amount: number;
  before: number;
}

/** Add to what a bucket pays; `paid` keeps the order of first charges (a settle charges one bucket or a few). */
function charge(w: Work, paid: Paid[], bucketId: string, amount: number): void {
  for (const p of paid) {
    if (p.bucketId === bucketId) {
      p.amount += amount;
      return;
    }
  }
  paid.push({ bucketId, amount, before: w.bucket(bucketId).consumed });
}

function decideSettle(ctx: Ctx, w: Work, i: SettleInput, renew = true): Decision<UsageRecord> {
  if (w.usageRecord !== null) return { mutation: null, result: w.usageRecord };
  const r = w.reservation;
  if (r === null) throw new AssertionError(`settle: reservation ${i.reservationId} not found`);
  if (r.requestId !== i.requestId) throw new AssertionError(`settle: reservation ${r.id} belongs to request ${r.requestId}, not ${i.requestId}`);
  if (renew) catchUp(ctx, w);
  const cost: RatedCost = scaled(rateUsage(r.rate, i.usage, r.minorUnitsPerMajor), i.chargeRatio);
  const paid: Paid[] = [];
  let left = Q1;
  if (r.state === 'open') {
    // Nearly every hold sits on one bucket: nothing to order then.
    const allocations =
      r.allocations.length < 2 ? r.allocations : [...r.allocations].sort((a, b) => compareBuckets(w.bucket(a.bucketId), w.bucket(b.bucketId)));
    for (const a of allocations) {
      const b = w.bucket(a.bucketId);
      const share = shareOf(left, costIn(b, cost), a.amount, b.unit === 'requests');
      left = share.left;
      if (share.take > 0) charge(w, paid, b.id, share.take);
      endHold(w, b, a.amount, share.take, r.id);
    }
    if (r.memberId !== null && r.capCycleIndex !== null && r.capHeld > 0) w.moveMember(r.memberId, r.capCycleIndex, { held: -r.capHeld });
  }
  if (!qIsZero(left)) {
    // Excess over the holds (or a late settle after expiry/void): whatever is eligible now, in order.
    const sorted = eligibleSorted(w.buckets.values(), eligibility(ctx, w, r));
    const res = walk(sorted, cost, left, available);
    for (const t of res.takes) {
      if (t.amount === 0) continue;
      charge(w, paid, t.bucket.id, t.amount);
      w.move(t.bucket.id, { consumed: t.amount });
    }
    left = res.left;
  }
  const costCoins = qCeil(cost.coins);
  meterMember(ctx, w, r.accountId, r.memberId, r.capCycleIndex, costCoins);
  const charges: BucketCharge[] = [];
  for (const { bucketId, amount, before } of paid) {
    const b = w.bucket(bucketId);
    charges.push({ bucketId, kind: b.kind, unit: b.unit, currency: b.currency, amount });
    w.ledger('consume', i.requestId, { debit: `bucket:${b.id}`, credit: 'house:revenue', bucket: b, amount, requestId: i.requestId });
    emitBucketThresholds(w, b, before, () => ctx.newId('evt'));
  }
  const record: UsageRecord = {
    requestId: i.requestId,
    reservationId: r.id,
    accountId: r.accountId,
    memberId: r.memberId,
    keyId: r.keyId,
    model: r.model,
    upstreamModel: i.upstreamModel,
    provider: i.provider,
    deploymentId: i.deploymentId,
    region: i.region,
    usage: { ...i.usage },
    usageEstimated: i.usageEstimated,
    status: i.status,
    rateVersion: r.rateVersion,
    costCoins,
    costMinor: cost.moneyMinor === null ? null : qCeil(cost.moneyMinor),
    costRequests: cost.requests,
    charges,
    leakCoins: qCeil(qMul(left, cost.coins)),
    vendorCostMicros: i.vendorCostMicros ?? null,
    latencyMs: i.latencyMs,
    ttftMs: i.ttftMs,
    startedAtMs: r.createdAtMs,
    settledAtMs: w.nowMs,
  };
  if (i.clientRequestId !== undefined) record.clientRequestId = i.clientRequestId;
  if (i.serving !== undefined) record.serving = i.serving;
  w.setReservation({ ...r, state: 'settled', closedAtMs: w.nowMs });
  w.setUsageRecord(record);
  return { mutation: w.toMutation(), result: record };
}

/** The rated cost times a charge ratio (a cache hit's rate); exact, rounded later as every cost is. */
function scaled(cost: RatedCost, ratio: SettleInput['chargeRatio']): RatedCost {
  if (ratio === undefined) return cost;
  assertNonNegInt(ratio.num, 'chargeRatio.num');
  if (!(Number.isSafeInteger(ratio.den) && ratio.den > 0 && ratio.num <= ratio.den)) throw new AssertionError('chargeRatio must be a fraction in [0, 1]');
  const r = q(ratio.num, ratio.den);
  return { coins: qMul(cost.coins, r), moneyMinor: cost.moneyMinor === null ? null : qMul(cost.moneyMinor, r), requests: cost.requests };
}

/** Member usage is a limit record: the actual coins count even past the cap (bounded by the grant). */
function meterMember(ctx: Ctx, w: Work, accountId: string, memberId: string | null, cycleIndex: number | null, coins: number): void {
  if (memberId === null || cycleIndex === null || coins === 0) return;
  const row = w.memberRow(memberId, cycleIndex);
  const usedBefore = row.used;
  w.moveMember(memberId, cycleIndex, { used: coins });
  emitMemberCapThresholds(w, capOf(w, accountId, memberId), cycleIndex, usedBefore, row.used, () => ctx.newId('evt'));
}
