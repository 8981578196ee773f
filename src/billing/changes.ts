/**
 * Plan changes and add-ons. An upgrade takes effect now: the new plan's price for the rest of the cycle is
 * charged, the unused part of the old one credited (two proration lines), and the allowance difference for the
 * rest of the cycle granted. A downgrade takes effect at the next cycle, and is refused while this cycle's use
 * or the account's members already exceed what the smaller plan allows. Renewing add-ons are prorated for the
 * rest of the plan's cycle and then renew with it; one-time add-ons last until the plan's cycle ends.
 */
import type { PlanCtx } from './plan.ts';
import { ok } from '../core/index.ts';
import { activeAccount, fail, fmtMoney, offerOnSale, type BR, type Ctx } from './context.ts';
import { runOrder, type Outcome } from './plan.ts';
import { collect, earnPoints, requireFunds } from './payments.ts';
import { cycleWindow, DAY_MS, isoDay, prorate } from './periods.ts';
import { catchUpAccount, orderableOffer } from './renew.ts';
import type { SubscribeInput, SubscriptionResult } from './subscriptions.ts';
import { currentIndex, endSchedulesAt, grantOnce, isLive, newOrder, scheduleTerm, syncPolicy, termAt, times, validateQuantity } from './terms.ts';
import { requirePhoneBill } from './subscriptions.ts';
import type { Offer, OrderLine, Subscription, Term } from './types.ts';

export interface ChangeInput {
  subscriptionId: string;
  offerId: string;
  quantity?: number;
  actor: string;
  idempotencyKey: string | null;
}

export interface ChangeResult extends SubscriptionResult {
  kind: 'upgrade' | 'downgrade';
  effectiveAt: string;
}

const allowanceOf = (o: Offer, q: number): number => (o.allowance === null ? 0 : o.allowance.amount * q);

function cycleUse(ctx: PlanCtx, sub: Subscription, startMs: number): number {
  const buckets = ctx.deps.charging.listBuckets(sub.accountId);
  return buckets
    .filter((b) => b.sourceRef.startsWith(`sub:${sub.id}:`) && b.effectiveAtMs >= startMs && !b.expired)
    .reduce((s, b) => s + b.used + b.reserved, 0);
}

/** What is left in the subscription's own running buckets of one unit (not its add-ons'). */
function runningLeft(ctx: PlanCtx, sub: Subscription, now: number, unit: string): number {
  return ctx.deps.charging
    .listBuckets(sub.accountId)
    .filter((b) => b.sourceRef.startsWith(`sub:${sub.id}:`) && !b.expired && b.effectiveAtMs <= now && b.unit === unit)
    .reduce((s, b) => s + Math.max(0, b.remaining), 0);
}

/** Forfeit what is left of the subscription's own running buckets (not its add-ons'); returns the amount. */
function forfeitCycleAllowance(ctx: PlanCtx, sub: Subscription, now: number, ref: string): number {
  let forfeited = 0;
  for (const b of ctx.deps.charging.listBuckets(sub.accountId)) {
    if (!b.sourceRef.startsWith(`sub:${sub.id}:`) || b.expired || b.effectiveAtMs > now) continue;
    const r = ctx.deps.charging.forfeitBucket(sub.accountId, b.id, ref);
    if (!r.ok) throw new Error(`${ref}: ${r.message}`);
    forfeited += r.value.forfeited;
  }
  return forfeited;
}

export async function changePlan(ctx: Ctx, i: ChangeInput): Promise<BR<Outcome<ChangeResult>>> {
  const found = await ctx.deps.store.getSubscription(i.subscriptionId);
  if (found === undefined) return fail('not_found', `Subscription ${i.subscriptionId} does not exist.`);
  const request = { op: 'change', subscriptionId: i.subscriptionId, offerId: i.offerId, quantity: i.quantity };
  return runOrder<ChangeResult>(
    ctx,
    { scope: `account:${found.accountId}`, idempotencyKey: i.idempotencyKey, request, needs: { mintCycles: true, members: true } },
    (p) => decideChange(p, i, found.accountId),
  );
}

/** The changePlan planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideChange(ctx: PlanCtx, i: ChangeInput, accountId: string): BR<ChangeResult> {
  // Like every other order: a suspended or closed account changes nothing (atk-billing F6).
  const account = activeAccount(ctx, accountId);
  if (!account.ok) return account;
  catchUpAccount(ctx, accountId);
  const sub = ctx.deps.store.getSubscription(i.subscriptionId)!;
  if (!isLive(sub)) return fail('conflict', `Subscription ${sub.id} is ${sub.status}; subscribe again instead.`);
  if (sub.type !== 'plan') return fail('unprocessable', `Only plans change; ${sub.offerId} is a ${sub.type}.`);
  if (sub.status === 'past_due') return fail('payment_required', `Subscription ${sub.id} has an unpaid renewal; top up the wallet first.`);
  if (sub.endIndex !== null) return fail('conflict', `Subscription ${sub.id} is canceled at the end of this cycle; subscribe again after it ends.`);
  const o = offerOnSale(ctx, i.offerId);
  if (!o.ok) return o;
  const offer = o.value;
  if (offer.type !== 'plan')
    return fail(
      'unprocessable',
      `${offer.id} is a ${offer.type}, not a plan: ${offer.type === 'addon' ? 'buy add-ons with POST /admin/accounts/:id/addons' : 'subscribe to it separately'}.`,
    );
  if (offer.cycle !== sub.cycle)
    return fail('unprocessable', `${offer.id} renews every ${offer.cycle}, the current plan every ${sub.cycle}: cancel and subscribe instead.`);
  const now = ctx.now();
  const k = currentIndex(sub, now);
  const w = cycleWindow(sub.anchorMs, sub.cycle!, k);
  const cur = termAt(sub, k)!;
  const keepQ = offer.seats !== null && cur.quantity >= offer.seats.min && cur.quantity <= offer.seats.max ? cur.quantity : undefined;
  const q = validateQuantity(offer, i.quantity ?? keepQ);
  if (!q.ok) return q;
  const newPrice = times(offer.priceMinor, q.value, 'price');
  if (!newPrice.ok) return newPrice;
  const curPrice = cur.offer.priceMinor * cur.quantity;
  const pending = sub.terms.some((t) => t.fromIndex > k);
  if (offer.id === cur.offer.id && q.value === cur.quantity && !pending) return fail('conflict', `Subscription ${sub.id} is already on ${offer.id}.`);
  const sameUnit = offer.allowance?.unit === cur.offer.allowance?.unit;
  const upgrade = newPrice.value > curPrice || (newPrice.value === curPrice && sameUnit && allowanceOf(offer, q.value) > allowanceOf(cur.offer, cur.quantity));
  const orderId = ctx.id('ord');
  const ref = `sub:${sub.id}:${offer.id}:${orderId}`;

  if (!upgrade) {
    const newAllowance = allowanceOf(offer, q.value);
    if (sameUnit && offer.allowance !== null) {
      const used = cycleUse(ctx, sub, w.startMs);
      // Checked again when the plan applies: requests settled meanwhile count (atk-billing F5).
      ctx.deps.charging.requireUse(sub.accountId, { sourcePrefix: `sub:${sub.id}:`, fromMs: w.startMs, atMost: newAllowance, ref: `downgrade:${orderId}` });
      if (used > newAllowance) {
        return fail(
          'unprocessable',
          `Cannot downgrade to ${offer.id}: this cycle already used ${used} ${offer.allowance.unit}, more than the ${newAllowance} it allows per cycle. ` +
            `Downgrade after the cycle renews on ${isoDay(w.endMs)}. Nothing was changed.`,
        );
      }
    }
    const limit = offer.members ?? (offer.seats !== null ? q.value : null);
    const members = ctx.view.memberCount;
    if (limit !== null && members > limit) {
      return fail('unprocessable', `Cannot downgrade to ${offer.id}: the account has ${members} members and ${offer.id} allows ${limit}. Nothing was changed.`);
    }
    endSchedulesAt(ctx, sub, k + 1);
    const term: Term = { fromIndex: k + 1, offer, quantity: q.value, ref, scheduleId: null, scheduled: false };
    sub.terms.push(term);
    scheduleTerm(ctx, sub, term);
    sub.updatedAtMs = now;
    ctx.deps.store.updateSubscription(sub);
    const effectiveAt = new Date(w.endMs).toISOString();
    const order = newOrder(ctx, {
      id: orderId,
      accountId: sub.accountId,
      type: 'downgrade',
      offerId: offer.id,
      subscriptionId: sub.id,
      lines: [],
      actor: i.actor,
      idempotencyKey: i.idempotencyKey,
      details: { effectiveAt, from: cur.offer.id },
    });
    ctx.deps.store.insertOrder(order);
    return ok({ subscription: sub, order, kind: 'downgrade', effectiveAt });
  }

  const charge = prorate(newPrice.value, w, now, ctx.rules.upgradeChargeRounding);
  let credit = prorate(curPrice, w, now, 'floor');
  if (!sameUnit && cur.offer.allowance !== null) {
    // Across units the old plan's allowance ends now: credit no more than the share of its price that is unused
    // (an allowance used up in days is not credited for the rest of the cycle).
    const full = allowanceOf(cur.offer, cur.quantity);
    const left = Math.min(full, runningLeft(ctx, sub, now, cur.offer.allowance.unit));
    if (full > 0) credit = Math.min(credit, Number((BigInt(curPrice) * BigInt(left)) / BigInt(full)));
  }
  const funds = requireFunds(ctx, sub.accountId, offer.currency, charge - credit, sub.channel);
  if (!funds.ok) return funds;
  if (sub.channel === 'phone_bill') {
    const line = requirePhoneBill(ctx, sub.accountId, offer.currency, charge - credit, i.actor);
    if (!line.ok) return line;
  }
  const extra = sameUnit ? allowanceOf(offer, q.value) - allowanceOf(cur.offer, cur.quantity) : allowanceOf(offer, q.value);
  // Across units the new plan replaces the old one now: the old plan's running-cycle allowance ends (forfeited,
  // with a ledger entry) so one price never buys both allowances (issue 12, attacker finding F3).
  // The credit above was worked out on what was left while planning: the forfeit refuses the plan (it is planned
  // again) if requests used some of it before the plan applied (attack finding atk-billing F2).
  if (!sameUnit) {
    ctx.deps.charging.strictForfeits = true;
    forfeitCycleAllowance(ctx, sub, now, `change:${orderId}`);
    ctx.deps.charging.strictForfeits = false;
  }
  grantOnce(ctx, sub, offer, prorate(Math.max(0, extra), w, now, 'floor'), w.endMs, `${ref}:prorated`);
  endSchedulesAt(ctx, sub, k + 1);
  const term: Term = { fromIndex: k, scheduleFromIndex: k + 1, offer, quantity: q.value, ref, scheduleId: null, scheduled: false };
  sub.terms.push(term);
  scheduleTerm(ctx, sub, term);
  sub.offerId = offer.id;
  sub.quantity = q.value;
  sub.updatedAtMs = now;
  ctx.deps.store.updateSubscription(sub);
  const lines: OrderLine[] = [
    {
      kind: 'proration',
      description: `${offer.name}: rest of the cycle, ${isoDay(now)} to ${isoDay(w.endMs)}`,
      quantity: q.value,
      amountMinor: charge,
      offerId: offer.id,
    },
    {
      kind: 'proration',
      description: `Unused ${cur.offer.name}, ${isoDay(now)} to ${isoDay(w.endMs)}`,
      quantity: cur.quantity,
      amountMinor: -credit,
      offerId: cur.offer.id,
    },
  ];
  const order = newOrder(ctx, {
    id: orderId,
    accountId: sub.accountId,
    type: 'upgrade',
    offerId: offer.id,
    subscriptionId: sub.id,
    lines,
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    details: { from: cur.offer.id },
  });
  if (collect(ctx, order, sub.channel) === 'unpaid')
    return fail('payment_required', `The wallet could not pay ${fmtMoney(order.amountMinor)}; nothing was changed.`);
  order.paidBy = order.amountMinor === 0 ? 'none' : sub.channel;
  ctx.deps.store.insertOrder(order);
  earnPoints(ctx, order);
  syncPolicy(ctx, sub.accountId);
  return ok({ subscription: sub, order, kind: 'upgrade', effectiveAt: new Date(now).toISOString() });
}

/** Buying an add-on takes what subscribing takes. */
export type AddonInput = SubscribeInput;

export function buyAddon(ctx: Ctx, i: AddonInput): Promise<BR<Outcome<SubscriptionResult>>> {
  const request = { op: 'addon', accountId: i.accountId, offerId: i.offerId, quantity: i.quantity, channel: i.channel };
  return runOrder(ctx, { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request, needs: { mintCycles: true } }, (p) => decideAddon(p, i));
}

/** The buyAddon planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideAddon(ctx: PlanCtx, i: AddonInput): BR<SubscriptionResult> {
  const o = orderableOffer(ctx, i.accountId, i.offerId);
  if (!o.ok) return o;
  const offer = o.value;
  if (offer.type !== 'addon') return fail('unprocessable', `${offer.id} is a ${offer.type}, not an add-on: subscribe with POST /admin/subscriptions.`);
  const q = validateQuantity(offer, i.quantity);
  if (!q.ok) return q;
  const plan = ctx.deps.store.listSubscriptions({ accountId: i.accountId, live: true }).find((s) => s.type === 'plan');
  if (offer.appliesTo !== null && (plan === undefined || !offer.appliesTo.includes(plan.offerId))) {
    return fail(
      'unprocessable',
      `${offer.id} can be added to ${offer.appliesTo.join(', ')}; account ${i.accountId} has ${plan === undefined ? 'no plan' : plan.offerId}.`,
    );
  }
  if (offer.renews && plan === undefined) return fail('unprocessable', `${offer.id} renews with a plan and account ${i.accountId} has no live plan.`);
  const channel = i.channel ?? plan?.channel ?? offer.channel;
  if (offer.renews && channel === 'external') return fail('invalid', 'renewing add-ons are paid from the wallet or the phone bill');
  const now = ctx.now();
  const k = plan === undefined ? 0 : currentIndex(plan, now);
  const w = plan === undefined ? null : cycleWindow(plan.anchorMs, plan.cycle!, k);
  const full = times(offer.priceMinor, q.value, 'price');
  if (!full.ok) return full;
  const fullAllowance = times(offer.allowance?.amount ?? 0, q.value, 'allowance');
  if (!fullAllowance.ok) return fullAllowance;
  const price = offer.renews && w !== null ? prorate(full.value, w, now, 'ceil') : full.value;
  const allowanceNow = offer.renews && w !== null ? prorate(fullAllowance.value, w, now, 'floor') : fullAllowance.value;
  const expiresAtMs = w !== null ? w.endMs : now + (offer.validityDays ?? 30) * DAY_MS;
  const funds = requireFunds(ctx, i.accountId, offer.currency, price, channel);
  if (!funds.ok) return funds;
  if (channel === 'phone_bill') {
    const credit = requirePhoneBill(ctx, i.accountId, offer.currency, price, i.actor);
    if (!credit.ok) return credit;
  }

  const subId = ctx.id('sub');
  const orderId = ctx.id('ord');
  const ref = `sub:${subId}:${offer.id}:${orderId}`;
  const renewing = offer.renews && plan !== undefined;
  const sub: Subscription = {
    id: subId,
    accountId: i.accountId,
    offerId: offer.id,
    type: 'addon',
    parentId: plan?.id ?? null,
    status: 'active',
    anchorMs: plan?.anchorMs ?? now,
    cycle: renewing ? plan.cycle : null,
    quantity: q.value,
    terms: [],
    renewedThroughIndex: renewing ? k : 0,
    endIndex: renewing ? plan.endIndex : null,
    endReason: renewing && plan.endIndex !== null ? 'parent_ended' : null,
    expiresAtMs: renewing ? null : expiresAtMs,
    endedAtMs: null,
    channel,
    createdAtMs: now,
    updatedAtMs: now,
  };
  const term: Term = {
    fromIndex: renewing ? k : 0,
    scheduleFromIndex: renewing ? k + 1 : undefined,
    offer,
    quantity: q.value,
    ref,
    scheduleId: null,
    scheduled: !renewing,
  };
  sub.terms = [term];
  if (renewing) scheduleTerm(ctx, sub, term);
  grantOnce(ctx, sub, offer, allowanceNow, expiresAtMs, `${ref}:now`);
  ctx.deps.store.insertSubscription(sub);
  const qty = q.value > 1 ? ` x ${q.value}` : '';
  const description = renewing
    ? `${offer.name}${qty}, ${isoDay(now)} to ${isoDay(expiresAtMs)}${price === full.value ? '' : ' (prorated)'}`
    : `${offer.name}${qty}, until ${isoDay(expiresAtMs)}`;
  const order = newOrder(ctx, {
    id: orderId,
    accountId: i.accountId,
    type: 'addon',
    offerId: offer.id,
    subscriptionId: subId,
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    lines: [{ kind: 'addon', description, quantity: q.value, amountMinor: price, offerId: offer.id }],
  });
  if (collect(ctx, order, channel) === 'unpaid') return fail('payment_required', `The wallet could not pay ${fmtMoney(price)}; nothing was changed.`);
  order.paidBy = price === 0 ? 'none' : channel;
  ctx.deps.store.insertOrder(order);
  earnPoints(ctx, order);
  return ok({ subscription: sub, order });
}
