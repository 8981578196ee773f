/**
 * Subscriptions: subscribe and cancel, plus the term/schedule helpers plan changes and renewals share.
 * A recurring subscription's allowance comes from charging allowance schedules (lazy, idempotent renewal);
 * its fees come from renewal orders (renew.ts). Each term of the subscription is one schedule whose sourceRef
 * `sub:<subId>:<offerId>:<orderId>` ties every cycle bucket (`...#<n>`) to the subscription and the order.
 */
import { ok } from '../core/index.ts';
import { cycleStartMs } from '../charging/index.ts';
import { fail, fmtMoney, runOrder, type BR, type Ctx, type Outcome } from './context.ts';
import { collect, earnPoints, requireFunds } from './payments.ts';
import { cycleAt, cycleWindow, DAY_MS, isoDay, reAnchorable } from './periods.ts';
import { BUCKET_KIND, type LineKind, type Offer, type Order, type OrderLine, type PaymentChannel, type Subscription, type Term } from './types.ts';
import { catchUpAccount, orderableOffer } from './renew.ts';

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
    if (!Number.isSafeInteger(n) || n < o.seats.min || n > o.seats.max) return fail('unprocessable', `${o.id} is sold for ${o.seats.min} to ${o.seats.max} seats, not ${q}.`);
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

export function newOrder(ctx: Ctx, o: Pick<Order, 'accountId' | 'type' | 'offerId' | 'subscriptionId' | 'lines' | 'actor' | 'idempotencyKey'> & Partial<Order>): Order {
  const now = ctx.now();
  return {
    id: o.id ?? ctx.id('ord'), status: 'completed', currency: ctx.catalog().currency, paidBy: 'none', effectiveAtMs: now, createdAtMs: now,
    billId: null, details: {}, ...o, amountMinor: o.lines.reduce((s, l) => s + l.amountMinor, 0),
  };
}

/** Create the term's allowance schedule now, or leave it for the catch-up when its start is a clamped date. */
export async function scheduleTerm(ctx: Ctx, sub: Subscription, term: Term): Promise<void> {
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
  const r = await ctx.deps.charging.createAllowanceSchedule({
    accountId: sub.accountId, unit: a.unit, currency: a.unit === 'money' ? term.offer.currency : null, kind: BUCKET_KIND[term.offer.type],
    amountPerCycle: a.amount * term.quantity, anchorMs, cycle: sub.cycle, models: term.offer.models, rollover: term.offer.rollover,
    sourceRef: term.ref, endsAtMs: sub.endIndex === null ? null : cycleStartMs(sub.anchorMs, sub.cycle, sub.endIndex),
  });
  if (!r.ok) throw new Error(`allowance schedule for ${term.ref}: ${r.message}`);
  term.scheduleId = r.value.id;
  term.scheduled = true;
}

/** No cycle from `index` on: end every schedule there and drop the terms that would have started later. */
export async function endSchedulesAt(ctx: Ctx, sub: Subscription, index: number): Promise<void> {
  if (sub.cycle === null) return;
  const atMs = cycleStartMs(sub.anchorMs, sub.cycle, index);
  for (const t of sub.terms) if (t.scheduleId !== null) await ctx.deps.charging.endSchedule(t.scheduleId, atMs);
  sub.terms = sub.terms.filter((t) => t.fromIndex < index);
}

/** One-off allowance (packs, trials, prorated upgrades and add-ons). */
export async function grantOnce(ctx: Ctx, sub: Subscription, offer: Offer, amount: number, expiresAtMs: number, ref: string): Promise<void> {
  if (offer.allowance === null || amount <= 0) return;
  const unit = offer.allowance.unit;
  const r = await ctx.deps.charging.grantBucket({
    accountId: sub.accountId, unit, currency: unit === 'money' ? offer.currency : null, amount, effectiveAtMs: ctx.now(), expiresAtMs,
    kind: BUCKET_KIND[offer.type], models: offer.models, sourceRef: ref,
  });
  if (!r.ok) throw new Error(`grant ${ref}: ${r.message}`);
}

/** The account's overage policy follows its live plan and pay-as-you-go subscriptions (the most permissive wins). */
export async function syncPolicy(ctx: Ctx, accountId: string): Promise<void> {
  const subs = (await ctx.deps.store.listSubscriptions({ accountId, live: true })).filter((s) => s.type === 'plan' || s.type === 'payg');
  const offers = subs.map((s) => termAt(s, currentIndex(s, ctx.now()))?.offer ?? ctx.catalog().offers.get(s.offerId)).filter((o): o is Offer => o !== undefined);
  const postpaid = offers.filter((o) => o.overage === 'postpaid');
  const currency = ctx.catalog().currency;
  const policy = postpaid.length > 0
    ? { overage: 'postpaid' as const, creditLimitMinor: Math.max(...postpaid.map((o) => o.creditLimitMinor)), currency }
    : { overage: offers.length === 0 || offers.some((o) => o.overage === 'wallet') ? 'wallet' as const : 'block' as const };
  // Prices per offer: money pays usage at the pay-as-you-go offer's own price (tokens per yuan); with two, the
  // dearer one (fewer tokens per yuan). Without one, the engine's wallet price (charging.walletCoinsPerYuan).
  const paygPrices = offers.map((o) => o.paygTokensPerUnit).filter((p): p is number => p !== null);
  const coinsPerMajor = paygPrices.length > 0 ? Math.min(...paygPrices) : null;
  const r = await ctx.deps.charging.setAccountPolicy(accountId, { ...policy, coinsPerMajor });
  if (!r.ok) throw new Error(`policy for ${accountId}: ${r.message}`);
}

/** The account's whole enterprise tree: its top account (following parentId up) and every sub-account below it. */
export async function accountTree(ctx: Ctx, accountId: string): Promise<string[]> {
  let top = accountId;
  const seen = new Set<string>([top]);
  for (let a = await ctx.deps.accounts.getAccount(top); a?.parentId != null && !seen.has(a.parentId); a = await ctx.deps.accounts.getAccount(top)) {
    top = a.parentId;
    seen.add(top);
  }
  const tree: string[] = [];
  const queue = [top];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (tree.includes(id)) continue;
    tree.push(id);
    for (const child of await ctx.deps.accounts.listAccounts({ parentId: id })) queue.push(child.id);
  }
  return tree;
}

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
export async function requirePhoneBill(ctx: Ctx, accountId: string, currency: string, amountMinor: number, actor: string): Promise<BR<true>> {
  if (!isSelfService(actor) || amountMinor <= 0) return ok(true);
  const arranged = ctx.deps.phoneBillChannel?.(accountId) === true ||
    (await ctx.deps.store.listOrders({ accountId })).some((o) => o.paidBy === 'phone_bill' && o.amountMinor > 0 && !isSelfService(o.actor));
  if (!arranged) {
    return fail('payment_required', `Account ${accountId} has no phone-bill channel: link a phone number (PUT /self/phone) or ask the operator to set up carrier billing, ` +
      'or pay from the wallet (channel "wallet"); nothing was changed.');
  }
  const subs = (await ctx.deps.store.listSubscriptions({ accountId, live: true })).filter((s) => s.type === 'plan' || s.type === 'payg');
  const lines = subs.map((s) => (termAt(s, currentIndex(s, ctx.now()))?.offer ?? ctx.catalog().offers.get(s.offerId))?.creditLimitMinor ?? 0);
  const limit = Math.max(ctx.catalog().limits.phoneBillMonthlyMinor ?? DEFAULT_PHONE_BILL_MONTHLY_MINOR, ...lines);
  const d = new Date(ctx.now());
  const monthStartMs = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const deferred = (await ctx.deps.store.listPayments({ accountId, fromMs: monthStartMs }))
    .filter((p) => p.channel === 'phone_bill' && p.status === 'deferred' && p.currency === currency).reduce((s, p) => s + p.amountMinor, 0);
  if (deferred + amountMinor > limit) {
    return fail('payment_required', `The phone bill of account ${accountId} already carries ${fmtMoney(Math.max(0, deferred), currency)} this month; ` +
      `${fmtMoney(amountMinor, currency)} more would pass its ${fmtMoney(limit, currency)} monthly phone-bill limit. Pay from the wallet (channel "wallet") or ask the operator; nothing was changed.`);
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
  return runOrder(ctx, { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request }, async () => {
    const o = await orderableOffer(ctx, i.accountId, i.offerId);
    if (!o.ok) return o;
    const offer = o.value;
    if (offer.type === 'addon') return fail('unprocessable', `${offer.id} is an add-on: buy it with POST /admin/accounts/${i.accountId}/addons.`);
    const subs = await ctx.deps.store.listSubscriptions({ accountId: i.accountId });
    if (offer.trialOnce) {
      // Once per enterprise tree (the top account and all its sub-accounts), not per account: new sub-accounts do
      // not mint new trials (issue 12, attacker finding F4).
      for (const accountId of await accountTree(ctx, i.accountId)) {
        const held = accountId === i.accountId ? subs : await ctx.deps.store.listSubscriptions({ accountId });
        const prior = held.find((s) => s.offerId === offer.id || s.terms.some((t) => t.offer.id === offer.id));
        if (prior === undefined) continue;
        const where = accountId === i.accountId ? `Account ${i.accountId}` : `Account ${accountId} (in the same enterprise as ${i.accountId})`;
        return fail('unprocessable', `${where} already took the trial ${offer.id} on ${isoDay(prior.createdAtMs)}; a trial is offered once per account and its sub-accounts. Nothing was changed.`);
      }
    }
    const same = subs.find((s) => isLive(s) && s.type === offer.type && (offer.type === 'plan' || offer.type === 'payg'));
    if (same !== undefined) {
      return fail('conflict', `Account ${i.accountId} already has ${same.type === 'plan' ? 'plan' : 'pay-as-you-go'} ${same.offerId} (${same.id}): ` +
        `change it with POST /admin/subscriptions/${same.id}/change, or cancel it first.`);
    }
    const q = validateQuantity(offer, i.quantity);
    if (!q.ok) return q;
    const channel = i.channel ?? offer.channel;
    if (offer.type === 'plan' && channel === 'external') return fail('invalid', 'recurring plans are paid from the wallet or the phone bill (channel wallet or phone_bill)');
    const price = times(offer.priceMinor, q.value, 'price');
    if (!price.ok) return price;
    if (offer.allowance !== null) {
      const amount = times(offer.allowance.amount, q.value, 'allowance');
      if (!amount.ok) return amount;
    }
    const funds = await requireFunds(ctx, i.accountId, offer.currency, price.value, channel);
    if (!funds.ok) return funds;
    if (channel === 'phone_bill') {
      const credit = await requirePhoneBill(ctx, i.accountId, offer.currency, price.value, i.actor);
      if (!credit.ok) return credit;
    }

    // Validated: from here on, writes.
    const now = ctx.now();
    const subId = ctx.id('sub');
    const orderId = ctx.id('ord');
    const oneTime = offer.type === 'pack' || offer.type === 'trial';
    const sub: Subscription = {
      id: subId, accountId: i.accountId, offerId: offer.id, type: offer.type, parentId: null, status: 'active', anchorMs: now,
      cycle: offer.type === 'plan' ? offer.cycle : null, quantity: q.value, terms: [], renewedThroughIndex: 0, endIndex: null, endReason: null,
      expiresAtMs: oneTime ? now + (offer.validityDays ?? 30) * DAY_MS : null, endedAtMs: null, channel, createdAtMs: now, updatedAtMs: now,
    };
    const ref = `sub:${subId}:${offer.id}:${orderId}`;
    let toMs: number | null = sub.expiresAtMs;
    if (offer.type === 'plan') {
      const term: Term = { fromIndex: 0, offer, quantity: q.value, ref, scheduleId: null, scheduled: false };
      sub.terms = [term];
      await scheduleTerm(ctx, sub, term);
      toMs = cycleWindow(sub.anchorMs, sub.cycle!, 0).endMs;
    } else {
      sub.terms = [{ fromIndex: 0, offer, quantity: q.value, ref, scheduleId: null, scheduled: true }];
      if (oneTime && offer.allowance !== null) await grantOnce(ctx, sub, offer, offer.allowance.amount * q.value, sub.expiresAtMs!, ref);
    }
    await ctx.deps.store.insertSubscription(sub);
    const lines: OrderLine[] = [{ kind: lineKindFor(offer), description: describe(offer, q.value, now, toMs), quantity: q.value, amountMinor: price.value, offerId: offer.id }];
    const order = newOrder(ctx, { id: orderId, accountId: i.accountId, type: 'subscribe', offerId: offer.id, subscriptionId: subId, lines, actor: i.actor, idempotencyKey: i.idempotencyKey });
    const paid = await collect(ctx, order, channel);
    if (paid === 'unpaid') return fail('payment_required', `The wallet could not pay ${fmtMoney(price.value, offer.currency)}; nothing was changed.`);
    order.paidBy = price.value === 0 ? 'none' : channel;
    await ctx.deps.store.insertOrder(order);
    await earnPoints(ctx, order);
    if (offer.type === 'plan' || offer.type === 'payg') await syncPolicy(ctx, i.accountId);
    return ok({ subscription: sub, order });
  });
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
  return runOrder(ctx, { scope: `account:${found.accountId}`, idempotencyKey: i.idempotencyKey, request }, async () => {
    await catchUpAccount(ctx, found.accountId);
    const sub = (await ctx.deps.store.getSubscription(i.subscriptionId))!;
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
      if (sub.endIndex !== null) return fail('conflict', `Subscription ${sub.id} already ends on ${isoDay(cycleStartMs(sub.anchorMs, sub.cycle, sub.endIndex))}.`);
      const end = currentIndex(sub, now) + 1;
      await endFamily(ctx, sub, end, 'canceled');
      details.endsAt = new Date(cycleStartMs(sub.anchorMs, sub.cycle, end)).toISOString();
    }
    sub.updatedAtMs = now;
    await ctx.deps.store.updateSubscription(sub);
    const order = newOrder(ctx, { accountId: sub.accountId, type: 'cancel', offerId: sub.offerId, subscriptionId: sub.id, lines: [], actor: i.actor, idempotencyKey: i.idempotencyKey, details });
    await ctx.deps.store.insertOrder(order);
    if (sub.type === 'payg') await syncPolicy(ctx, sub.accountId);
    return ok({ subscription: sub, order });
  });
}

/** The subscription has no cycle from `index` on (its fees stop, its schedules end there). */
export async function endAt(ctx: Ctx, sub: Subscription, index: number, reason: NonNullable<Subscription['endReason']>): Promise<void> {
  await endSchedulesAt(ctx, sub, index);
  sub.endIndex = index;
  sub.endReason = reason;
}

/** End a subscription at cycle `index` together with its renewing add-ons (which are saved here). */
export async function endFamily(ctx: Ctx, sub: Subscription, index: number, reason: NonNullable<Subscription['endReason']>): Promise<void> {
  await endAt(ctx, sub, index, reason);
  for (const child of await ctx.deps.store.listSubscriptions({ accountId: sub.accountId, live: true })) {
    if (child.parentId === sub.id && child.cycle !== null && (child.endIndex === null || child.endIndex > index)) {
      await endAt(ctx, child, index, 'parent_ended');
      child.updatedAtMs = ctx.now();
      await ctx.deps.store.updateSubscription(child);
    }
  }
}
