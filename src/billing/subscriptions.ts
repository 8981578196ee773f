/**
 * Subscriptions: subscribe and cancel (the term and schedule helpers they share with plan changes and renewals are in terms.ts).
 * A recurring subscription's allowance comes from charging allowance schedules (lazy, idempotent renewal);
 * its fees come from renewal orders (renew.ts). Each term of the subscription is one schedule whose sourceRef
 * `sub:<subId>:<offerId>:<orderId>` ties every cycle bucket (`...#<n>`) to the subscription and the order.
 */
import { ok } from '../core/index.ts';
import { cycleStartMs } from '../charging/index.ts';
import { fail, fmtMoney, type BR, type Ctx } from './context.ts';
import { runOrder, type Outcome, type PlanCtx } from './plan.ts';
import { collect, earnPoints, requireFunds } from './payments.ts';
import { cycleWindow, DAY_MS, isoDay } from './periods.ts';
import type { Offer, Order, OrderLine, PaymentChannel, Subscription, Term } from './types.ts';
import { catchUpAccount, orderableOffer } from './renew.ts';
import { currentIndex, endFamily, grantOnce, isLive, lineKindFor, newOrder, scheduleTerm, syncPolicy, termAt, times, validateQuantity } from './terms.ts';

/** Orders placed with an API key (self-service, the console) rather than through the admin API. */
export const isSelfService = (actor: string): boolean => actor.startsWith('key:');

/** What a self-service phone-bill order may add this month when the account has no plan with a credit limit. */
export const DEFAULT_PHONE_BILL_MONTHLY_MINOR = 20_000;

/**
 * A self-service order deferred to the phone bill needs a phone-bill channel (a linked phone, or an arrangement
 * the operator set up: an order the operator placed on the account's phone bill) and stays within the account's phone-bill credit: what it already deferred to the phone
 * bill this calendar month (UTC) plus this order, at most the account's limit (the largest creditLimit of its live
 * plan or pay-as-you-go offers, else the catalog's limits.phoneBillMonthly, 200.00 by default). Orders an
 * operator records on /admin are its own authority (order.pay.phone_bill is operator-only) and are not limited here.
 */
export function requirePhoneBill(ctx: PlanCtx, accountId: string, currency: string, amountMinor: number, actor: string): BR<true> {
  if (!isSelfService(actor) || amountMinor <= 0) return ok(true);
  const arranged =
    ctx.view.phoneBillChannel ||
    ctx.deps.store.listOrders({ accountId }).some((o) => o.paidBy === 'phone_bill' && o.amountMinor > 0 && !isSelfService(o.actor));
  if (!arranged) {
    return fail(
      'payment_required',
      `Account ${accountId} has no phone-bill channel: link a phone number (PUT /self/phone) or ask the operator to set up carrier billing, ` +
        'or pay from the wallet (channel "wallet"); nothing was changed.',
    );
  }
  const subs = ctx.deps.store.listSubscriptions({ accountId, live: true }).filter((s) => s.type === 'plan' || s.type === 'payg');
  const lines = subs.map((s) => (termAt(s, currentIndex(s, ctx.now()))?.offer ?? ctx.catalog().offers.get(s.offerId))?.creditLimitMinor ?? 0);
  const limit = Math.max(ctx.catalog().limits.phoneBillMonthlyMinor ?? DEFAULT_PHONE_BILL_MONTHLY_MINOR, ...lines);
  const d = new Date(ctx.now());
  const monthStartMs = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const deferred = ctx.deps.store
    .listPayments({ accountId, fromMs: monthStartMs })
    .filter((p) => p.channel === 'phone_bill' && p.status === 'deferred' && p.currency === currency)
    .reduce((s, p) => s + p.amountMinor, 0);
  if (deferred + amountMinor > limit) {
    return fail(
      'payment_required',
      `The phone bill of account ${accountId} already carries ${fmtMoney(Math.max(0, deferred), currency)} this month; ` +
        `${fmtMoney(amountMinor, currency)} more would pass its ${fmtMoney(limit, currency)} monthly phone-bill limit. Pay from the wallet (channel "wallet") or ask the operator; nothing was changed.`,
    );
  }
  return ok(true);
}

export interface SubscribeInput {
  accountId: string;
  offerId: string;
  quantity?: number;
  channel?: PaymentChannel;
  actor: string;
  idempotencyKey: string | null;
}

export interface SubscriptionResult {
  subscription: Subscription;
  order: Order;
}

function describe(offer: Offer, quantity: number, fromMs: number, toMs: number | null): string {
  const q = offer.seats !== null ? ` x ${quantity} seats` : quantity > 1 ? ` x ${quantity}` : '';
  return `${offer.name}${q}${toMs === null ? '' : `, ${isoDay(fromMs)} to ${isoDay(toMs)}`}`;
}

export function subscribe(ctx: Ctx, i: SubscribeInput): Promise<BR<Outcome<SubscriptionResult>>> {
  const request = { op: 'subscribe', accountId: i.accountId, offerId: i.offerId, quantity: i.quantity, channel: i.channel };
  return runOrder(
    ctx,
    { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request, needs: { tree: ctx.catalog().offers.get(i.offerId)?.trialOnce === true } },
    (p) => decideSubscribe(p, i),
  );
}

/** The subscribe planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideSubscribe(ctx: PlanCtx, i: SubscribeInput): BR<SubscriptionResult> {
  const o = orderableOffer(ctx, i.accountId, i.offerId);
  if (!o.ok) return o;
  const offer = o.value;
  if (offer.type === 'addon') return fail('unprocessable', `${offer.id} is an add-on: buy it with POST /admin/accounts/${i.accountId}/addons.`);
  const subs = ctx.deps.store.listSubscriptions({ accountId: i.accountId });
  if (offer.trialOnce) {
    // Once per enterprise tree (the top account and all its sub-accounts), not per account: new sub-accounts do
    // not mint new trials (issue 12, attacker finding F4).
    for (const accountId of ctx.view.tree) {
      const held = accountId === i.accountId ? subs : ctx.deps.store.listSubscriptions({ accountId });
      const prior = held.find((s) => s.offerId === offer.id || s.terms.some((t) => t.offer.id === offer.id));
      if (prior === undefined) continue;
      const where = accountId === i.accountId ? `Account ${i.accountId}` : `Account ${accountId} (in the same enterprise as ${i.accountId})`;
      return fail(
        'unprocessable',
        `${where} already took the trial ${offer.id} on ${isoDay(prior.createdAtMs)}; a trial is offered once per account and its sub-accounts. Nothing was changed.`,
      );
    }
  }
  const same = subs.find((s) => isLive(s) && s.type === offer.type && (offer.type === 'plan' || offer.type === 'payg'));
  if (same !== undefined) {
    return fail(
      'conflict',
      `Account ${i.accountId} already has ${same.type === 'plan' ? 'plan' : 'pay-as-you-go'} ${same.offerId} (${same.id}): ` +
        `change it with POST /admin/subscriptions/${same.id}/change, or cancel it first.`,
    );
  }
  const q = validateQuantity(offer, i.quantity);
  if (!q.ok) return q;
  const channel = i.channel ?? offer.channel;
  if (offer.type === 'plan' && channel === 'external')
    return fail('invalid', 'recurring plans are paid from the wallet or the phone bill (channel wallet or phone_bill)');
  const price = times(offer.priceMinor, q.value, 'price');
  if (!price.ok) return price;
  if (offer.allowance !== null) {
    const amount = times(offer.allowance.amount, q.value, 'allowance');
    if (!amount.ok) return amount;
  }
  const funds = requireFunds(ctx, i.accountId, offer.currency, price.value, channel);
  if (!funds.ok) return funds;
  if (channel === 'phone_bill') {
    const credit = requirePhoneBill(ctx, i.accountId, offer.currency, price.value, i.actor);
    if (!credit.ok) return credit;
  }

  // Validated: from here on, writes.
  const now = ctx.now();
  const subId = ctx.id('sub');
  const orderId = ctx.id('ord');
  const oneTime = offer.type === 'pack' || offer.type === 'trial';
  const sub: Subscription = {
    id: subId,
    accountId: i.accountId,
    offerId: offer.id,
    type: offer.type,
    parentId: null,
    status: 'active',
    anchorMs: now,
    cycle: offer.type === 'plan' ? offer.cycle : null,
    quantity: q.value,
    terms: [],
    renewedThroughIndex: 0,
    endIndex: null,
    endReason: null,
    expiresAtMs: oneTime ? now + (offer.validityDays ?? 30) * DAY_MS : null,
    endedAtMs: null,
    channel,
    createdAtMs: now,
    updatedAtMs: now,
  };
  const ref = `sub:${subId}:${offer.id}:${orderId}`;
  let toMs: number | null = sub.expiresAtMs;
  if (offer.type === 'plan') {
    const term: Term = { fromIndex: 0, offer, quantity: q.value, ref, scheduleId: null, scheduled: false };
    sub.terms = [term];
    scheduleTerm(ctx, sub, term);
    toMs = cycleWindow(sub.anchorMs, sub.cycle!, 0).endMs;
  } else {
    sub.terms = [{ fromIndex: 0, offer, quantity: q.value, ref, scheduleId: null, scheduled: true }];
    if (oneTime && offer.allowance !== null) grantOnce(ctx, sub, offer, offer.allowance.amount * q.value, sub.expiresAtMs!, ref);
  }
  ctx.deps.store.insertSubscription(sub);
  const lines: OrderLine[] = [
    { kind: lineKindFor(offer), description: describe(offer, q.value, now, toMs), quantity: q.value, amountMinor: price.value, offerId: offer.id },
  ];
  const order = newOrder(ctx, {
    id: orderId,
    accountId: i.accountId,
    type: 'subscribe',
    offerId: offer.id,
    subscriptionId: subId,
    lines,
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
  });
  const paid = collect(ctx, order, channel);
  if (paid === 'unpaid') return fail('payment_required', `The wallet could not pay ${fmtMoney(price.value, offer.currency)}; nothing was changed.`);
  order.paidBy = price.value === 0 ? 'none' : channel;
  ctx.deps.store.insertOrder(order);
  earnPoints(ctx, order);
  if (offer.type === 'plan' || offer.type === 'payg') syncPolicy(ctx, i.accountId);
  return ok({ subscription: sub, order });
}

export interface CancelInput {
  subscriptionId: string;
  actor: string;
  idempotencyKey: string | null;
}

export async function cancel(ctx: Ctx, i: CancelInput): Promise<BR<Outcome<SubscriptionResult>>> {
  const found = await ctx.deps.store.getSubscription(i.subscriptionId);
  if (found === undefined) return fail('not_found', `Subscription ${i.subscriptionId} does not exist.`);
  const request = { op: 'cancel', subscriptionId: i.subscriptionId };
  return runOrder(ctx, { scope: `account:${found.accountId}`, idempotencyKey: i.idempotencyKey, request }, (p) => decideCancel(p, i));
}

/** The cancel planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideCancel(ctx: PlanCtx, i: CancelInput): BR<SubscriptionResult> {
  catchUpAccount(ctx, ctx.view.accountId!);
  const sub = ctx.deps.store.getSubscription(i.subscriptionId)!;
  if (!isLive(sub)) return fail('conflict', `Subscription ${sub.id} is already ${sub.status}.`);
  if (sub.type === 'pack' || sub.type === 'trial' || (sub.type === 'addon' && sub.cycle === null)) {
    return fail('unprocessable', `${sub.offerId} is a one-time purchase; it ends by itself on ${isoDay(sub.expiresAtMs ?? ctx.now())}.`);
  }
  const now = ctx.now();
  const details: Order['details'] = {};
  if (sub.cycle === null) {
    sub.status = 'canceled';
    sub.endReason = 'canceled';
    sub.endedAtMs = now;
    details.endsAt = new Date(now).toISOString();
  } else {
    if (sub.endIndex !== null)
      return fail('conflict', `Subscription ${sub.id} already ends on ${isoDay(cycleStartMs(sub.anchorMs, sub.cycle, sub.endIndex))}.`);
    const end = currentIndex(sub, now) + 1;
    endFamily(ctx, sub, end, 'canceled');
    details.endsAt = new Date(cycleStartMs(sub.anchorMs, sub.cycle, end)).toISOString();
  }
  sub.updatedAtMs = now;
  ctx.deps.store.updateSubscription(sub);
  const order = newOrder(ctx, {
    accountId: sub.accountId,
    type: 'cancel',
    offerId: sub.offerId,
    subscriptionId: sub.id,
    lines: [],
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    details,
  });
  ctx.deps.store.insertOrder(order);
  if (sub.type === 'payg') syncPolicy(ctx, sub.accountId);
  return ok({ subscription: sub, order });
}
