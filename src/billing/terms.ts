/**
 * Subscription terms and their charging side: the helpers subscribe, change, cancel and renewals share
 * (terms, allowance schedules, one-off grants, the account's overage policy). No use case lives here, so
 * renew.ts and subscriptions.ts both import this file and not each other.
 */
import type { PlanCtx } from './plan.ts';
import { ok } from '../core/index.ts';
import { cycleStartMs } from '../charging/index.ts';
import { fail, type Basics, type BR } from './context.ts';
import { cycleAt, reAnchorable } from './periods.ts';
import { BUCKET_KIND, type LineKind, type Offer, type Order, type Subscription, type Term } from './types.ts';

export const isLive = (s: Subscription): boolean => s.status === 'active' || s.status === 'past_due';

export function currentIndex(s: Subscription, nowMs: number): number {
  return s.cycle === null ? 0 : cycleAt(s.anchorMs, s.cycle, nowMs).index;
}

export function termAt(s: Subscription, index: number): Term | undefined {
  let found: Term | undefined;
  for (const t of s.terms) if (t.fromIndex <= index) found = t;
  return found;
}

export function lineKindFor(o: Offer): LineKind {
  return o.type === 'addon' ? 'addon' : o.type === 'plan' || o.type === 'payg' ? 'subscription' : 'pack';
}

export function validateQuantity(o: Offer, q: number | undefined): BR<number> {
  if (o.seats !== null) {
    const n = q ?? o.seats.min;
    if (!Number.isSafeInteger(n) || n < o.seats.min || n > o.seats.max)
      return fail('unprocessable', `${o.id} is sold for ${o.seats.min} to ${o.seats.max} seats, not ${q}.`);
    return ok(n);
  }
  if (o.type === 'addon') {
    const n = q ?? 1;
    if (!Number.isSafeInteger(n) || n < 1 || n > 1000) return fail('invalid', 'quantity must be a whole number from 1 to 1000');
    return ok(n);
  }
  if (q !== undefined && q !== 1) return fail('invalid', `quantity applies to seat plans and add-ons; ${o.id} is sold one at a time`);
  return ok(1);
}

export function times(a: number, q: number, what: string): BR<number> {
  const n = a * q;
  return Number.isSafeInteger(n) ? ok(n) : fail('unprocessable', `${what} is too large`);
}

export function newOrder(
  ctx: Basics,
  o: Pick<Order, 'accountId' | 'type' | 'offerId' | 'subscriptionId' | 'lines' | 'actor' | 'idempotencyKey'> & Partial<Order>,
): Order {
  const now = ctx.now();
  return {
    id: o.id ?? ctx.id('ord'),
    status: 'completed',
    currency: ctx.catalog().currency,
    paidBy: 'none',
    effectiveAtMs: now,
    createdAtMs: now,
    billId: null,
    details: {},
    ...o,
    amountMinor: o.lines.reduce((s, l) => s + l.amountMinor, 0),
  };
}

/** Create the term's allowance schedule now, or leave it for the catch-up when its start is a clamped date. */
export function scheduleTerm(ctx: PlanCtx, sub: Subscription, term: Term): void {
  const a = term.offer.allowance;
  if (a === null || sub.cycle === null) {
    term.scheduled = true;
    return;
  }
  const k = currentIndex(sub, ctx.now());
  const from = term.scheduleFromIndex ?? term.fromIndex;
  if (from > k && !reAnchorable(sub.anchorMs, sub.cycle, from)) {
    term.scheduled = false;
    return;
  }
  // Anchored at the subscription's anchor when the term has started (the engine mints the running cycle),
  // else at the term's first cycle start (in the future: nothing is minted before it).
  const anchorMs = from <= k ? sub.anchorMs : cycleStartMs(sub.anchorMs, sub.cycle, from);
  const r = ctx.deps.charging.createAllowanceSchedule({
    accountId: sub.accountId,
    unit: a.unit,
    currency: a.unit === 'money' ? term.offer.currency : null,
    kind: BUCKET_KIND[term.offer.type],
    amountPerCycle: a.amount * term.quantity,
    anchorMs,
    cycle: sub.cycle,
    models: term.offer.models,
    rollover: term.offer.rollover,
    sourceRef: term.ref,
    endsAtMs: sub.endIndex === null ? null : cycleStartMs(sub.anchorMs, sub.cycle, sub.endIndex),
  });
  if (!r.ok) throw new Error(`allowance schedule for ${term.ref}: ${r.message}`);
  term.scheduleId = r.value.id;
  term.scheduled = true;
}

/** No cycle from `index` on: end every schedule there and drop the terms that would have started later. */
export function endSchedulesAt(ctx: PlanCtx, sub: Subscription, index: number): void {
  if (sub.cycle === null) return;
  const atMs = cycleStartMs(sub.anchorMs, sub.cycle, index);
  for (const t of sub.terms) if (t.scheduleId !== null) ctx.deps.charging.endSchedule(t.scheduleId, atMs);
  sub.terms = sub.terms.filter((t) => t.fromIndex < index);
  // A kept term whose schedule was deferred to a cycle at or after `index` (an upgrade's term starts now, its
  // schedule at the next, clamped, cycle start) has no cycle left to grant: never create it. Without this, an
  // upgrade then a downgrade in one cycle on a 29th-31st anchor granted both plans' allowances the next cycle.
  for (const t of sub.terms) if (!t.scheduled && (t.scheduleFromIndex ?? t.fromIndex) >= index) t.scheduled = true;
}

/** One-off allowance (packs, trials, prorated upgrades and add-ons). */
export function grantOnce(ctx: PlanCtx, sub: Subscription, offer: Offer, amount: number, expiresAtMs: number, ref: string): void {
  if (offer.allowance === null || amount <= 0) return;
  const unit = offer.allowance.unit;
  const r = ctx.deps.charging.grantBucket({
    accountId: sub.accountId,
    unit,
    currency: unit === 'money' ? offer.currency : null,
    amount,
    effectiveAtMs: ctx.now(),
    expiresAtMs,
    kind: BUCKET_KIND[offer.type],
    models: offer.models,
    sourceRef: ref,
  });
  if (!r.ok) throw new Error(`grant ${ref}: ${r.message}`);
}

/** The account's overage policy follows its live plan and pay-as-you-go subscriptions (the most permissive wins). */
export function syncPolicy(ctx: PlanCtx, accountId: string): void {
  const subs = ctx.deps.store.listSubscriptions({ accountId, live: true }).filter((s) => s.type === 'plan' || s.type === 'payg');
  const offers = subs
    .map((s) => termAt(s, currentIndex(s, ctx.now()))?.offer ?? ctx.catalog().offers.get(s.offerId))
    .filter((o): o is Offer => o !== undefined);
  const postpaid = offers.filter((o) => o.overage === 'postpaid');
  const currency = ctx.catalog().currency;
  const policy =
    postpaid.length > 0
      ? { overage: 'postpaid' as const, creditLimitMinor: Math.max(...postpaid.map((o) => o.creditLimitMinor)), currency }
      : { overage: offers.length === 0 || offers.some((o) => o.overage === 'wallet') ? ('wallet' as const) : ('block' as const) };
  // Prices per offer: money pays usage at the pay-as-you-go offer's own price (tokens per yuan); with two, the
  // dearer one (fewer tokens per yuan). Without one, the engine's wallet price (charging.walletCoinsPerYuan).
  const paygPrices = offers.map((o) => o.paygTokensPerUnit).filter((p): p is number => p !== null);
  const coinsPerMajor = paygPrices.length > 0 ? Math.min(...paygPrices) : null;
  const r = ctx.deps.charging.setAccountPolicy(accountId, { ...policy, coinsPerMajor });
  if (!r.ok) throw new Error(`policy for ${accountId}: ${r.message}`);
}

/** The subscription has no cycle from `index` on (its fees stop, its schedules end there). */
export function endAt(ctx: PlanCtx, sub: Subscription, index: number, reason: NonNullable<Subscription['endReason']>): void {
  endSchedulesAt(ctx, sub, index);
  sub.endIndex = index;
  sub.endReason = reason;
}

/** End a subscription at cycle `index` together with its renewing add-ons (which are saved here). */
export function endFamily(ctx: PlanCtx, sub: Subscription, index: number, reason: NonNullable<Subscription['endReason']>): void {
  endAt(ctx, sub, index, reason);
  for (const child of ctx.deps.store.listSubscriptions({ accountId: sub.accountId, live: true })) {
    if (child.parentId === sub.id && child.cycle !== null && (child.endIndex === null || child.endIndex > index)) {
      endAt(ctx, child, index, 'parent_ended');
      child.updatedAtMs = ctx.now();
      ctx.deps.store.updateSubscription(child);
    }
  }
}
