/** Money orders: wallet top-ups, refunds, goodwill credits, and loyalty points (grant, redeem). */
import type { PlanCtx } from './plan.ts';
import { ok } from '../core/index.ts';
import { activeAccount, fail, fmtMoney, type BR, type Ctx } from './context.ts';
import { runOrder, type Outcome } from './plan.ts';
import { collect, creditWallet, newPayment, planPointsBalance } from './payments.ts';
import { DAY_MS, cycleAt, isoDay } from './periods.ts';
import { catchUpAccount, settleUnpaid } from './renew.ts';
import { currentIndex, endFamily, isLive, newOrder, syncPolicy, termAt } from './terms.ts';
import { requirePhoneBill } from './subscriptions.ts';
import { cycleStartMs } from '../charging/index.ts';
import type { Order, PaymentChannel, PointsEntry } from './types.ts';

export interface TopUpInput {
  accountId: string;
  amountMinor: number;
  currency?: string;
  /** external: paid outside TokenGrid (cash, online payment); phone_bill: charged to the phone bill. */
  channel?: 'external' | 'phone_bill';
  reference?: string | null;
  actor: string;
  idempotencyKey: string | null;
}

export interface TopUpResult {
  order: Order;
  walletMinor: number;
  /** Unpaid orders the top-up paid. */
  settledOrders: number;
}

export function topUp(ctx: Ctx, i: TopUpInput): Promise<BR<Outcome<TopUpResult>>> {
  const currency = i.currency ?? ctx.catalog().currency;
  const channel = i.channel ?? 'external';
  const request = { op: 'topup', accountId: i.accountId, amountMinor: i.amountMinor, currency, channel, reference: i.reference ?? null };
  return runOrder(ctx, { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request }, (p) => decideTopUp(p, i, currency, channel));
}

/** The topUp planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideTopUp(ctx: PlanCtx, i: TopUpInput, currency: string, channel: 'external' | 'phone_bill'): BR<TopUpResult> {
  if (!Number.isSafeInteger(i.amountMinor) || i.amountMinor <= 0)
    return fail('invalid', `amount must be a positive amount of ${currency}, got ${i.amountMinor} minor units`);
  const max = ctx.catalog().limits.topupMaxMinor;
  if (i.amountMinor > max)
    return fail(
      'unprocessable',
      `A top-up of ${fmtMoney(i.amountMinor, currency)} is over the ${fmtMoney(max, currency)} limit per order (limits.topupMax in the catalog); nothing was changed.`,
    );
  if (currency !== ctx.catalog().currency) return fail('unprocessable', `Wallets are kept in ${ctx.catalog().currency}, not ${currency}.`);
  const account = activeAccount(ctx, i.accountId);
  if (!account.ok) return account;
  catchUpAccount(ctx, i.accountId);
  if (channel === 'phone_bill') {
    const credit = requirePhoneBill(ctx, i.accountId, currency, i.amountMinor, i.actor);
    if (!credit.ok) return credit;
  }
  const order = newOrder(ctx, {
    accountId: i.accountId,
    type: 'topup',
    offerId: null,
    subscriptionId: null,
    lines: [],
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    details: { reference: i.reference ?? null },
  });
  order.amountMinor = i.amountMinor;
  order.currency = currency;
  order.paidBy = channel;
  creditWallet(ctx, i.accountId, currency, i.amountMinor, `order:${order.id}`);
  ctx.deps.store.insertPayment(
    newPayment(ctx, {
      accountId: i.accountId,
      orderId: order.id,
      channel,
      amountMinor: i.amountMinor,
      currency,
      status: channel === 'phone_bill' ? 'deferred' : 'succeeded',
      reference: i.reference ?? null,
    }),
  );
  ctx.deps.store.insertOrder(order);
  const settledOrders = settleUnpaid(ctx, i.accountId);
  const wallet = ctx.deps.charging
    .listBuckets(i.accountId)
    .filter((b) => b.kind === 'wallet' && b.currency === currency)
    .reduce((s, b) => s + b.remaining, 0);
  return ok({ order, walletMinor: wallet, settledOrders });
}

export interface RefundInput {
  orderId: string;
  /** Default: everything not refunded yet. */
  amountMinor?: number;
  reason: string;
  actor: string;
  idempotencyKey: string | null;
}

const REFUNDABLE = new Set<Order['type']>(['subscribe', 'renew', 'upgrade', 'addon']);

export async function refund(ctx: Ctx, i: RefundInput): Promise<BR<Outcome<Order>>> {
  const original = await ctx.deps.store.getOrder(i.orderId);
  if (original === undefined) return fail('not_found', `Order ${i.orderId} does not exist.`);
  const request = { op: 'refund', orderId: i.orderId, amountMinor: i.amountMinor, reason: i.reason };
  return runOrder(ctx, { scope: `account:${original.accountId}`, idempotencyKey: i.idempotencyKey, request }, (p) => decideRefund(p, i));
}

/** The refund planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideRefund(ctx: PlanCtx, i: RefundInput): BR<Order> {
  const o = ctx.deps.store.getOrder(i.orderId)!;
  if (!REFUNDABLE.has(o.type) || o.status !== 'completed' || o.amountMinor <= 0) {
    return fail('unprocessable', `Order ${o.id} (${o.type}, ${o.status}, ${fmtMoney(o.amountMinor, o.currency)}) cannot be refunded.`);
  }
  if (o.paidBy !== 'wallet' && o.paidBy !== 'phone_bill' && o.paidBy !== 'external')
    return fail('unprocessable', `Order ${o.id} was paid by ${o.paidBy}; nothing to refund.`);
  const done = ctx.deps.store
    .listOrders({ accountId: o.accountId })
    .filter((x) => x.type === 'refund' && x.details.refundOf === o.id)
    .reduce((s, x) => s - x.amountMinor, 0);
  const left = o.amountMinor - done;
  const amount = i.amountMinor ?? left;
  if (!Number.isSafeInteger(amount) || amount <= 0) return fail('invalid', 'amount must be positive');
  if (amount > left) return fail('unprocessable', `Order ${o.id} has ${fmtMoney(left, o.currency)} left to refund, less than ${fmtMoney(amount, o.currency)}.`);
  const order = newOrder(ctx, {
    accountId: o.accountId,
    type: 'refund',
    offerId: o.offerId,
    subscriptionId: o.subscriptionId,
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    details: { refundOf: o.id, reason: i.reason },
    lines: [
      {
        kind: 'refund',
        description: `Refund of order ${o.id} (${o.lines[0]?.description ?? o.type}): ${i.reason}`,
        quantity: 1,
        amountMinor: -amount,
        offerId: o.offerId,
      },
    ],
  });
  order.paidBy = o.paidBy;
  collect(ctx, order, o.paidBy);
  if (amount === left && ctx.rules.fullRefundEndsSubscription) {
    const ended = endRefunded(ctx, o, order.id);
    if (ended !== null) order.details = { ...order.details, ...ended };
  }
  ctx.deps.store.insertOrder(order);
  return ok(order);
}

/**
 * A full refund of what paid for a subscription's running cycle (its subscribe, renewal or add-on order) ends the
 * subscription now: no renewal afterwards, and the unused part of the allowance that order paid for is taken back
 * (forfeited, with a ledger entry). A refund of a past cycle's fee returns money only: that allowance has already
 * expired. Partial refunds (goodwill) return money only. Returns what the refund order records, or null.
 */
function endRefunded(ctx: PlanCtx, paid: Order, refundId: string): Order['details'] | null {
  if (paid.type === 'upgrade') return revertUpgrade(ctx, paid, refundId);
  if (paid.subscriptionId === null || (paid.type !== 'subscribe' && paid.type !== 'renew' && paid.type !== 'addon')) return null;
  catchUpAccount(ctx, paid.accountId);
  const sub = ctx.deps.store.getSubscription(paid.subscriptionId);
  if (sub === undefined || !isLive(sub)) return null;
  const now = ctx.now();
  if (sub.cycle !== null) {
    const k = currentIndex(sub, now);
    const paidFor =
      paid.type === 'renew' && paid.details.cycleIndex !== undefined
        ? Number(paid.details.cycleIndex)
        : cycleAt(sub.anchorMs, sub.cycle, paid.effectiveAtMs).index;
    if (paidFor < k) return null;
    endFamily(ctx, sub, k + 1, 'refunded');
  }
  sub.status = 'canceled';
  sub.endReason = 'refunded';
  sub.endedAtMs = now;
  if (sub.cycle === null) sub.expiresAtMs = now;
  sub.updatedAtMs = now;
  ctx.deps.store.updateSubscription(sub);
  let forfeited = 0;
  for (const b of ctx.deps.charging.listBuckets(sub.accountId)) {
    if (!b.sourceRef.startsWith(`sub:${sub.id}:`) || b.expired || b.effectiveAtMs > now) continue;
    const r = ctx.deps.charging.forfeitBucket(sub.accountId, b.id, `refund:${refundId}`);
    if (!r.ok) throw new Error(`refund ${refundId}: ${r.message}`);
    forfeited += r.value.forfeited;
  }
  if (sub.type === 'plan' || sub.type === 'payg') syncPolicy(ctx, sub.accountId);
  return { endedSubscription: sub.id, allowanceForfeited: forfeited };
}

/**
 * A full refund of an upgrade made in the running cycle reverts what it bought (issue 12, attacker finding F5):
 * the upgrade's extra allowance is forfeited, the plan goes back to the one before the upgrade for the rest of the
 * cycle, and the subscription ends at the end of that cycle (it renews on neither plan; subscribe again). An
 * upgrade from an earlier cycle returns money only (that allowance has expired).
 */
function revertUpgrade(ctx: PlanCtx, paid: Order, refundId: string): Order['details'] | null {
  if (paid.subscriptionId === null) return null;
  catchUpAccount(ctx, paid.accountId);
  const sub = ctx.deps.store.getSubscription(paid.subscriptionId);
  if (sub === undefined || !isLive(sub) || sub.cycle === null) return null;
  const now = ctx.now();
  const k = currentIndex(sub, now);
  if (cycleAt(sub.anchorMs, sub.cycle, paid.effectiveAtMs).index < k) return null;
  const prefix = `sub:${sub.id}:${paid.offerId}:${paid.id}`;
  if (sub.endIndex === null || sub.endIndex > k + 1) endFamily(ctx, sub, k + 1, 'refunded');
  sub.terms = sub.terms.filter((t) => !t.ref.startsWith(prefix));
  const before = termAt(sub, k);
  if (before !== undefined) {
    sub.offerId = before.offer.id;
    sub.quantity = before.quantity;
  }
  sub.updatedAtMs = now;
  ctx.deps.store.updateSubscription(sub);
  let forfeited = 0;
  for (const b of ctx.deps.charging.listBuckets(sub.accountId)) {
    if (!b.sourceRef.startsWith(prefix) || b.expired) continue;
    const r = ctx.deps.charging.forfeitBucket(sub.accountId, b.id, `refund:${refundId}`);
    if (!r.ok) throw new Error(`refund ${refundId}: ${r.message}`);
    forfeited += r.value.forfeited;
  }
  syncPolicy(ctx, sub.accountId);
  return {
    revertedUpgrade: paid.id,
    planNow: sub.offerId,
    subscriptionEndsAt: new Date(cycleStartMs(sub.anchorMs, sub.cycle, k + 1)).toISOString(),
    allowanceForfeited: forfeited,
  };
}

export interface CreditInput {
  accountId: string;
  amountMinor: number;
  reason: string;
  /** wallet: money into the wallet now; phone_bill: deducted from this month's phone-bill amount. */
  channel?: PaymentChannel;
  actor: string;
  idempotencyKey: string | null;
}

export function credit(ctx: Ctx, i: CreditInput): Promise<BR<Outcome<Order>>> {
  const channel = i.channel ?? 'wallet';
  const request = { op: 'credit', accountId: i.accountId, amountMinor: i.amountMinor, reason: i.reason, channel };
  return runOrder(ctx, { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request }, (p) => decideCredit(p, i, channel));
}

/** The credit planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideCredit(ctx: PlanCtx, i: CreditInput, channel: PaymentChannel): BR<Order> {
  if (!Number.isSafeInteger(i.amountMinor) || i.amountMinor <= 0) return fail('invalid', 'amount must be positive');
  if (i.amountMinor > ctx.catalog().limits.topupMaxMinor)
    return fail('unprocessable', `A credit over ${fmtMoney(ctx.catalog().limits.topupMaxMinor)} is refused.`);
  const account = activeAccount(ctx, i.accountId);
  if (!account.ok) return account;
  const order = newOrder(ctx, {
    accountId: i.accountId,
    type: 'credit',
    offerId: null,
    subscriptionId: null,
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    details: { reason: i.reason },
    lines: [{ kind: 'credit', description: `Credit: ${i.reason}`, quantity: 1, amountMinor: -i.amountMinor, offerId: null }],
  });
  order.paidBy = channel;
  collect(ctx, order, channel);
  ctx.deps.store.insertOrder(order);
  if (channel === 'wallet') settleUnpaid(ctx, i.accountId);
  return ok(order);
}

export interface PointsRedeemInput {
  accountId: string;
  points: number;
  actor: string;
  idempotencyKey: string | null;
}

export interface PointsRedeemResult {
  order: Order;
  tokens: number;
  pointsLeft: number;
  expiresAt: string;
}

export function redeemPoints(ctx: Ctx, i: PointsRedeemInput): Promise<BR<Outcome<PointsRedeemResult>>> {
  const request = { op: 'redeem_points', accountId: i.accountId, points: i.points };
  return runOrder(ctx, { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request }, (p) => decideRedeemPoints(p, i));
}

/** The redeemPoints planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideRedeemPoints(ctx: PlanCtx, i: PointsRedeemInput): BR<PointsRedeemResult> {
  const rules = ctx.catalog().points;
  if (!Number.isSafeInteger(i.points) || i.points <= 0) return fail('invalid', 'points must be a positive whole number');
  if (i.points < rules.minRedeem) return fail('unprocessable', `At least ${rules.minRedeem} points are redeemed at a time.`);
  const account = activeAccount(ctx, i.accountId);
  if (!account.ok) return account;
  const have = planPointsBalance(ctx, i.accountId);
  if (have < i.points) return fail('unprocessable', `Account ${i.accountId} has ${have} points, fewer than ${i.points}; nothing was changed.`);
  const tokens = i.points * rules.tokensPerPoint;
  if (!Number.isSafeInteger(tokens)) return fail('unprocessable', 'too many points at once');
  const now = ctx.now();
  const expiresAtMs = now + rules.validityDays * DAY_MS;
  const order = newOrder(ctx, {
    accountId: i.accountId,
    type: 'redeem_points',
    offerId: null,
    subscriptionId: null,
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    details: { points: i.points, tokens },
    lines: [
      {
        kind: 'points',
        description: `Redeemed ${i.points} points for ${tokens} tokens, valid until ${isoDay(expiresAtMs)}`,
        quantity: i.points,
        amountMinor: 0,
        offerId: null,
      },
    ],
  });
  order.paidBy = 'points';
  const g = ctx.deps.charging.grantBucket({
    accountId: i.accountId,
    unit: 'tokens',
    amount: tokens,
    effectiveAtMs: now,
    expiresAtMs,
    kind: 'points',
    sourceRef: `points:${order.id}`,
  });
  if (!g.ok) throw new Error(`points grant: ${g.message}`);
  const entry: PointsEntry = {
    id: ctx.id('pts'),
    accountId: i.accountId,
    points: -i.points,
    reason: `redeemed on order ${order.id}`,
    orderId: order.id,
    atMs: now,
  };
  ctx.deps.store.insertPoints(entry);
  ctx.deps.store.insertOrder(order);
  return ok({ order, tokens, pointsLeft: have - i.points, expiresAt: new Date(expiresAtMs).toISOString() });
}

export interface GrantPointsInput {
  accountId: string;
  points: number;
  reason: string;
  actor: string;
  idempotencyKey: string | null;
}

export function grantPoints(ctx: Ctx, i: GrantPointsInput): Promise<BR<Outcome<{ entry: PointsEntry; balance: number }>>> {
  const request = { op: 'grant_points', accountId: i.accountId, points: i.points, reason: i.reason };
  return runOrder(ctx, { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request }, (p) => decideGrantPoints(p, i));
}

/** The grantPoints planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideGrantPoints(ctx: PlanCtx, i: GrantPointsInput): BR<{ entry: PointsEntry; balance: number }> {
  if (!Number.isSafeInteger(i.points) || i.points === 0 || Math.abs(i.points) > 100_000_000)
    return fail('invalid', 'points must be a non-zero whole number up to 100000000');
  const account = activeAccount(ctx, i.accountId);
  if (!account.ok) return account;
  const have = planPointsBalance(ctx, i.accountId);
  if (have + i.points < 0) return fail('unprocessable', `Account ${i.accountId} has ${have} points; cannot take ${-i.points}.`);
  const entry: PointsEntry = {
    id: ctx.id('pts'),
    accountId: i.accountId,
    points: i.points,
    reason: `${i.reason} (by ${i.actor})`,
    orderId: null,
    atMs: ctx.now(),
  };
  ctx.deps.store.insertPoints(entry);
  return ok({ entry, balance: have + i.points });
}
