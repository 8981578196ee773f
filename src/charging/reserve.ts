/**
 * reserve (CCR-Initial): price the request (fast input estimate + output ask), pick buckets in burn-down order
 * and hold the amounts, all inside the store's atomic step. Streams ask for one slice; when the whole ask is
 * not affordable, the largest affordable output (>= tokensOutputMinGrant) is granted and the gateway clamps
 * upstream max_tokens to it.
 */
import { assertNonNegInt, err, ok, type Result } from '../core/index.ts';
import { reservationIdFor, type Decision } from './store.ts';
import type { Bucket, MemberCap, ModelRate, RatedCost, Reservation, ReserveErrorCode, ReserveGrant, ReserveInput } from './types.ts';
import { DEFAULT_CURRENCY, DEFAULT_MINOR_UNITS_PER_MAJOR, estimateRate, pricedRate, rateEstimate } from './rate.ts';
import { available, eligibleSorted, walk, type Take } from './burn-down.ts';
import { qCeil, qIsZero, Q1 } from './rational.ts';
import { Work } from './work.ts';
import { capCycleIndex, capOf, catchUp, eligibility, type Ctx } from './context.ts';
import { insufficientQuota } from './messages.ts';

export type ReserveResult = Result<ReserveGrant, ReserveErrorCode>;

/** Largest n in [lo, hi] with ok(n), given ok(lo) and monotone ok; bisection keeps it exact and bounded. */
export function largestAffordable(lo: number, hi: number, fits: (n: number) => boolean): number {
  if (fits(hi)) return hi;
  let good = lo;
  let bad = hi;
  while (bad - good > 1) {
    const mid = good + Math.floor((bad - good) / 2);
    if (fits(mid)) good = mid;
    else bad = mid;
  }
  return good;
}

export function grantOf(r: Reservation, final: boolean): ReserveGrant {
  return { reservationId: r.id, tokensOutputGranted: r.tokensOutputGranted, validUntilMs: r.validUntilMs, rateVersion: r.rateVersion, final };
}

export async function reserve(ctx: Ctx, i: ReserveInput): Promise<ReserveResult> {
  assertNonNegInt(i.tokensInputEstimate, 'tokensInputEstimate');
  assertNonNegInt(i.tokensOutputMax, 'tokensOutputMax');
  const table = ctx.deps.rates();
  const rate = table.models[i.model];
  if (rate === undefined) return err('model_not_priced', `Model ${i.model} has no rate in rate table ${table.version}; refusing to serve it unpriced.`);
  const nowMs = ctx.deps.clock.nowMs();
  const meta = { version: table.version, currency: table.currency ?? DEFAULT_CURRENCY, minor: table.minorUnitsPerMajor ?? DEFAULT_MINOR_UNITS_PER_MAJOR };
  return ctx.deps.store.runAccountOp(
    { accountId: i.accountId, nowMs, memberId: i.memberId, reservationId: reservationIdFor(i.requestId), requestId: i.requestId, holdsOnly: true },
    (view) => decideReserve(ctx, new Work(view), i, rate, meta),
  );
}

function decideReserve(
  ctx: Ctx,
  w: Work,
  i: ReserveInput,
  rate: ModelRate,
  meta: { version: string; currency: string; minor: number },
): Decision<ReserveResult> {
  const prior = w.reservation;
  if (prior === null && w.usageRecord !== null) {
    // A store may drop a settled reservation's row (its usage record is the durable trace): still never twice.
    return { mutation: null, result: err('duplicate_request', `Request id ${i.requestId} was already settled.`, { state: 'settled' }) };
  }
  if (prior !== null) {
    // Same request id again: an open hold for the same request is returned as is (a retry of the same call);
    // a closed one, or one for a different request, is refused: a request id never charges twice.
    const same = prior.accountId === i.accountId && prior.keyId === i.keyId && prior.model === i.model && prior.memberId === i.memberId;
    if (prior.state === 'open' && same) return { mutation: null, result: ok(grantOf(prior, prior.tokensOutputGranted >= prior.tokensOutputMax)) };
    const why = same ? `was already ${prior.state}` : 'was already used for a different request';
    return { mutation: null, result: err('duplicate_request', `Request id ${i.requestId} ${why}.`, { state: prior.state }) };
  }
  catchUp(ctx, w);
  rate = pricedRate(rate, w.policy?.coinsPerMajor); // the account's own money price (per-offer pay-as-you-go), kept by the reservation
  const c = eligibility(ctx, w, { memberId: i.memberId, model: i.model, rate, currency: meta.currency });
  const sorted = eligibleSorted(w.buckets.values(), c);
  const cap = i.memberId === null ? null : capOf(w, i.accountId, i.memberId);
  const capCycle = cap === null ? null : capCycleIndex(cap, w.nowMs);
  const capRow = cap === null || capCycle === null ? null : w.memberRow(cap.memberId, capCycle);
  const capLeft = cap?.tokensPerCycle == null || capRow === null ? Number.MAX_SAFE_INTEGER : cap.tokensPerCycle - capRow.used - capRow.held;

  const ask = askOf(ctx, i);
  const minOut = Math.min(ctx.config.tokensOutputMinGrant, ask);
  const fit = new Fit(estimateRate(rate), i.tokensInputEstimate, meta.minor, capLeft, sorted);
  const share = i.tokensOutputAsk === undefined ? 1 : Math.max(1, ctx.config.shareDivisor ?? 1);
  // The common case first: the whole ask fits (one burn-down walk instead of three; a soft ask checks that
  // `share` times it would fit, so one request never holds more than its share of a small balance).
  const roomy = share === 1 ? fit.capFits(ask) : fit.capFits(ask) && fit.plan(Math.min(ask * share, Number.MAX_SAFE_INTEGER)) !== null;
  const whole = roomy ? fit.plan(ask) : null;
  if (whole !== null) return hold(ctx, w, i, rate, meta, ask, whole, cap, capCycle, qCeil(fit.costOf(ask).coins));
  const needCoins = qCeil(fit.costOf(minOut).coins);
  if (!fit.capFits(minOut)) {
    const capText = cap?.tokensPerCycle ?? 0;
    return {
      mutation: w.toMutation(),
      result: err('member_cap_reached', `Member ${i.memberId} reached the cap of ${capText} token coins for this cycle (needs about ${needCoins} more).`, {
        memberId: i.memberId,
        cap: capText,
        used: capRow?.used ?? 0,
        held: capRow?.held ?? 0,
      }),
    };
  }
  if (fit.plan(minOut) === null) {
    const q = insufficientQuota(w, c, needCoins);
    return { mutation: w.toMutation(), result: err('insufficient_quota', q.message, q.details) };
  }
  let out = largestAffordable(minOut, ask, (n) => fit.capFits(n) && fit.plan(n) !== null);
  if (share > 1) {
    // A small balance: hold a share of what could be paid (at least the minimum grant); the stream extends
    // as its output flows, and what the others do not use returns to the balance when they settle.
    const all = largestAffordable(out, Math.min(ask * share, Number.MAX_SAFE_INTEGER), (n) => fit.capFits(n) && fit.plan(n) !== null);
    out = Math.max(minOut, Math.min(out, Math.floor(all / share)));
  }
  return hold(ctx, w, i, rate, meta, out, fit.plan(out)!, cap, capCycle, qCeil(fit.costOf(out).coins));
}

/**
 * What an output grant of `out` tokens costs and whether the cap and the buckets cover it. A class rather than
 * closures: tsx wraps every named local function in a __name() call, once per reserve.
 */
class Fit {
  /** The bisection asks for the same outputs more than once. */
  readonly #costs = new Map<number, RatedCost>();
  constructor(
    readonly est: ModelRate,
    readonly tokensInput: number,
    readonly minor: number,
    readonly capLeft: number,
    readonly sorted: Bucket[],
  ) {}

  costOf(out: number): RatedCost {
    let c = this.#costs.get(out);
    if (c === undefined) this.#costs.set(out, (c = rateEstimate(this.est, this.tokensInput, out, this.minor, true)));
    return c;
  }

  capFits(out: number): boolean {
    return qCeil(this.costOf(out).coins) <= this.capLeft;
  }

  plan(out: number): Take[] | null {
    const r = walk(this.sorted, this.costOf(out), Q1, available);
    return qIsZero(r.left) ? r.takes : null;
  }
}

/** The output asked for first: a soft ask, else a stream's slice, else all of tokensOutputMax. */
function askOf(ctx: Ctx, i: ReserveInput): number {
  if (i.tokensOutputAsk !== undefined) return Math.min(i.tokensOutputMax, Math.max(1, i.tokensOutputAsk));
  return i.stream ? Math.min(i.tokensOutputMax, ctx.config.sliceTokens) : i.tokensOutputMax;
}

/** Hold `takes` for an output grant of `out` tokens and record the reservation. */
function hold(
  ctx: Ctx,
  w: Work,
  i: ReserveInput,
  rate: ModelRate,
  meta: { version: string; currency: string; minor: number },
  out: number,
  takes: Take[],
  cap: MemberCap | null,
  capCycle: number | null,
  capHeld: number,
): Decision<ReserveResult> {
  const ask = askOf(ctx, i);
  for (const t of takes) w.move(t.bucket.id, { held: t.amount });
  if (cap !== null && capCycle !== null) w.moveMember(cap.memberId, capCycle, { held: capHeld });
  const reservation: Reservation = {
    id: reservationIdFor(i.requestId),
    requestId: i.requestId,
    accountId: i.accountId,
    memberId: i.memberId,
    keyId: i.keyId,
    model: i.model,
    stream: i.stream,
    state: 'open',
    rateVersion: meta.version,
    rate,
    currency: meta.currency,
    minorUnitsPerMajor: meta.minor,
    tokensInputEstimate: i.tokensInputEstimate,
    tokensOutputMax: i.tokensOutputMax,
    tokensOutputGranted: out,
    allocations: takes.filter((t) => t.amount > 0).map((t) => ({ bucketId: t.bucket.id, unit: t.bucket.unit, amount: t.amount })),
    capHeld: cap === null ? 0 : capHeld,
    capCycleIndex: capCycle,
    extensions: 0,
    createdAtMs: w.nowMs,
    validUntilMs: w.nowMs + ctx.config.reservationTtlMs,
    closedAtMs: null,
  };
  w.setReservation(reservation);
  // A soft ask cut to its share is not final: an extension may grant more once the others settle.
  const final = out === i.tokensOutputMax || (out < ask && i.tokensOutputAsk === undefined);
  return { mutation: w.toMutation(), result: ok(grantOf(reservation, final)) };
}
