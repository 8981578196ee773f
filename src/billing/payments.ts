/**
 * Payment channels for orders. The prepaid wallet pays now (a debit of the charging wallet bucket in the same
 * transaction as the order); the phone bill defers the charge to the month's bill, which the carrier channel
 * collects; external records money received outside TokenGrid. Every payment leaves a Payment record.
 */
import type { PlanCtx } from './plan.ts';
import { ok } from '../core/index.ts';
import { fail, fmtMoney, type Basics, type BR, type Ctx } from './context.ts';
import type { Order, Payment, PaymentChannel, PaymentStatus } from './types.ts';

export function walletAvailable(ctx: PlanCtx, accountId: string, currency: string): number {
  const buckets = ctx.deps.charging.listBuckets(accountId);
  return buckets.filter((b) => b.kind === 'wallet' && b.currency === currency && b.memberId === null).reduce((s, b) => s + b.remaining, 0);
}

/** Refuse a wallet order the wallet cannot pay, before anything is written. */
export function requireFunds(ctx: PlanCtx, accountId: string, currency: string, amountMinor: number, channel: PaymentChannel): BR<true> {
  if (channel !== 'wallet' || amountMinor <= 0) return ok(true);
  const have = walletAvailable(ctx, accountId, currency);
  if (have >= amountMinor) return ok(true);
  return fail(
    'payment_required',
    `The wallet holds ${fmtMoney(have, currency)} but this order costs ${fmtMoney(amountMinor, currency)}. ` +
      'Top up the wallet or pay with channel "phone_bill"; nothing was changed.',
  );
}

/** Debit the wallet through charging (one atomic charging operation with its ledger entry); false when it cannot pay. */
export function debitWallet(ctx: PlanCtx, accountId: string, currency: string, amountMinor: number, ref: string): boolean {
  const r = ctx.deps.charging.debitWallet({ accountId, currency, amountMinor, ref });
  if (!r.ok) throw new Error(`wallet debit ${ref} failed: ${r.message}`);
  return r.value.paid;
}

export function creditWallet(ctx: PlanCtx, accountId: string, currency: string, amountMinor: number, ref: string): void {
  const r = ctx.deps.charging.topUpWallet({ accountId, currency, amountMinor, sourceRef: ref });
  if (!r.ok) throw new Error(`wallet credit ${ref} failed: ${r.message}`);
}

export function newPayment(
  ctx: Basics,
  p: Pick<Payment, 'accountId' | 'orderId' | 'channel' | 'amountMinor' | 'currency' | 'status'> & { reference?: string | null; billId?: string | null },
): Payment {
  const now = ctx.now();
  return {
    id: ctx.id('pay'),
    accountId: p.accountId,
    orderId: p.orderId,
    billId: p.billId ?? null,
    channel: p.channel,
    amountMinor: p.amountMinor,
    currency: p.currency,
    status: p.status,
    reference: p.reference ?? null,
    attempts: 0,
    createdAtMs: now,
    updatedAtMs: now,
  };
}

/**
 * Collect an order's amount through its channel and record the payment. Returns the payment status:
 * wallet -> succeeded or unpaid; phone_bill -> deferred (collected with the bill); external -> succeeded.
 */
export function collect(ctx: PlanCtx, order: Order, channel: PaymentChannel, reference: string | null = null): PaymentStatus {
  if (order.amountMinor === 0) return 'succeeded';
  let status: PaymentStatus;
  if (order.amountMinor < 0) {
    // Money back: to the wallet, as a phone-bill credit, or refunded outside.
    if (channel === 'wallet') creditWallet(ctx, order.accountId, order.currency, -order.amountMinor, `order:${order.id}`);
    status = channel === 'phone_bill' ? 'deferred' : 'refunded';
  } else if (channel === 'wallet') {
    status = debitWallet(ctx, order.accountId, order.currency, order.amountMinor, `order:${order.id}`) ? 'succeeded' : 'unpaid';
  } else {
    status = channel === 'phone_bill' ? 'deferred' : 'succeeded';
  }
  ctx.deps.store.insertPayment(
    newPayment(ctx, { accountId: order.accountId, orderId: order.id, channel, amountMinor: order.amountMinor, currency: order.currency, status, reference }),
  );
  return status;
}

/** Loyalty points for money actually charged (not for top-ups, codes or points). */
export function earnPoints(ctx: PlanCtx, order: Order): void {
  const rate = ctx.catalog().points.earnPerUnit;
  if (order.amountMinor <= 0 || rate === 0 || order.status !== 'completed') return;
  if (order.paidBy !== 'wallet' && order.paidBy !== 'phone_bill' && order.paidBy !== 'external') return;
  const points = Math.floor(order.amountMinor / 100) * rate;
  if (points === 0) return;
  ctx.deps.store.insertPoints({
    id: ctx.id('pts'),
    accountId: order.accountId,
    points,
    reason: `earned on order ${order.id}`,
    orderId: order.id,
    atMs: ctx.now(),
  });
}

export async function pointsBalance(ctx: Ctx, accountId: string): Promise<number> {
  return (await ctx.deps.store.listPoints(accountId)).reduce((s, e) => s + e.points, 0);
}

/** The account's points balance as the plan sees it. */
export function planPointsBalance(ctx: PlanCtx, accountId: string): number {
  return ctx.deps.store.listPoints(accountId).reduce((s, e) => s + e.points, 0);
}

/**
 * A bill moved the postpaid line's usage to the phone bill: give the credit back to the line (its amount grows
 * by what was billed), so the credit limit applies to each month's unbilled usage, not to all time.
 */
export function restoreCreditLine(ctx: PlanCtx, accountId: string, currency: string, amountMinor: number, ref: string): void {
  if (amountMinor <= 0) return;
  const r = ctx.deps.charging.restoreCreditLine({ accountId, currency, amountMinor, ref });
  if (!r.ok) throw new Error(`credit line restore ${ref} failed: ${r.message}`);
}
