/**
 * extend (CCR-Update): a running stream asks for another slice of output. The extra cost is linear in the
 * extra output tokens, so it is priced alone and held in burn-down order; when nothing more can be granted
 * the answer is final and the gateway ends the stream at the grant (finish_reason length).
 */
import { assertNonNegInt, err, ok, type Result } from '../core/index.ts';
import type { Decision } from './store.ts';
import type { ExtendErrorCode, ExtendGrant, ExtendInput, Reservation } from './types.ts';
import { rateEstimate } from './rate.ts';
import { available, eligibleSorted, walk, type Take } from './burn-down.ts';
import { qCeil, qIsZero, Q1 } from './rational.ts';
import { Work } from './work.ts';
import { capOf, catchUp, eligibility, isRequestPaid, type Ctx } from './context.ts';
import { largestAffordable } from './reserve.ts';

export type ExtendResult = Result<ExtendGrant, ExtendErrorCode>;

export async function extend(ctx: Ctx, i: ExtendInput): Promise<ExtendResult> {
  assertNonNegInt(i.tokensOutputMore, 'tokensOutputMore');
  const nowMs = ctx.deps.clock.nowMs();
  return ctx.deps.store.runAccountOp({ accountId: null, nowMs, reservationId: i.reservationId, holdsOnly: true }, (view) =>
    decideExtend(ctx, new Work(view), i),
  );
}

function decideExtend(ctx: Ctx, w: Work, i: ExtendInput): Decision<ExtendResult> {
  const prior = w.reservation;
  if (prior === null) return { mutation: null, result: err('reservation_not_found', `Reservation ${i.reservationId} does not exist.`) };
  if (prior.state !== 'open' || w.nowMs > prior.validUntilMs) {
    return {
      mutation: null,
      result: err('reservation_not_open', `Reservation ${prior.id} is ${prior.state === 'open' ? 'past its time limit' : prior.state}.`),
    };
  }
  catchUp(ctx, w);
  const r: Reservation = { ...prior, allocations: prior.allocations.map((a) => ({ ...a })) };
  const more = Math.min(i.tokensOutputMore, ctx.config.sliceTokens, r.tokensOutputMax - r.tokensOutputGranted);
  const granted = more > 0 ? holdMore(ctx, w, r, more) : 0;
  r.tokensOutputGranted += granted;
  r.extensions += 1;
  r.validUntilMs = w.nowMs + ctx.config.reservationTtlMs;
  w.setReservation(r);
  const final = r.tokensOutputGranted >= r.tokensOutputMax || granted < more;
  return { mutation: w.toMutation(), result: ok({ tokensOutputGranted: r.tokensOutputGranted, final, validUntilMs: r.validUntilMs }) };
}

/** Hold the cost of up to `more` extra output tokens; returns how many were granted (0 when none). */
function holdMore(ctx: Ctx, w: Work, r: Reservation, more: number): number {
  const c = eligibility(ctx, w, { memberId: r.memberId, model: r.model, rate: r.rate, currency: r.currency });
  const sorted = eligibleSorted(w.buckets.values(), c);
  const cap = r.memberId === null || r.capCycleIndex === null ? null : capOf(w, r.accountId, r.memberId);
  const row = cap === null || r.capCycleIndex === null ? null : w.memberRow(cap.memberId, r.capCycleIndex);
  const capLeft = cap?.tokensPerCycle == null || row === null ? Number.MAX_SAFE_INTEGER : cap.tokensPerCycle - row.used - row.held;
  const capHeldFor = (extra: number): number => qCeil(rateEstimate(r.rate, r.tokensInputEstimate, r.tokensOutputGranted + extra, r.minorUnitsPerMajor).coins);
  const requestPaid = isRequestPaid(r); // a request-count plan pays per request, whatever its length: only the cap limits
  const plan = (extra: number): Take[] | null => {
    if (requestPaid) return [];
    const res = walk(sorted, rateEstimate(r.rate, 0, extra, r.minorUnitsPerMajor), Q1, available);
    return qIsZero(res.left) ? res.takes : null;
  };
  const fits = (extra: number): boolean => capHeldFor(extra) - r.capHeld <= capLeft && plan(extra) !== null;
  if (!fits(1)) return 0;
  const extra = largestAffordable(1, more, fits);
  for (const t of plan(extra)!) {
    if (t.amount === 0) continue;
    w.move(t.bucket.id, { held: t.amount });
    const a = r.allocations.find((x) => x.bucketId === t.bucket.id);
    if (a === undefined) r.allocations.push({ bucketId: t.bucket.id, unit: t.bucket.unit, amount: t.amount });
    else a.amount += t.amount;
  }
  if (row !== null && r.capCycleIndex !== null) {
    const target = capHeldFor(extra);
    w.moveMember(row.memberId, r.capCycleIndex, { held: target - r.capHeld });
    r.capHeld = target;
  }
  return extra;
}
