/**
 * Renewals (auto-renew on the anchor day): one renewal order per subscription and cycle, dated at the cycle
 * start, idempotent because the subscription's renewedThroughIndex moves in the same transaction. Run lazily
 * before every order and read of an account, by the timer, and before every bill run, so a bill never misses
 * a renewal whatever the timer did. A renewal the wallet cannot pay is recorded unpaid (due on the bill) and the
 * subscription lapses at the next cycle unless a top-up pays it first.
 */
import { planner, runPlan, type PlanCtx } from './plan.ts';
import { ok } from '../core/index.ts';
import { cycleStartMs } from '../charging/index.ts';
import { activeAccount, offerOnSale, type BR, type Ctx } from './context.ts';
import { collect, debitWallet, earnPoints } from './payments.ts';
import { cycleWindow, isoDay } from './periods.ts';
import { currentIndex, endFamily, isLive, lineKindFor, newOrder, scheduleTerm, syncPolicy, termAt } from './terms.ts';
import type { Offer, Order, Subscription, Term } from './types.ts';

/** Create the schedules of terms that were waiting for their first cycle (clamped start dates). */
function scheduleDeferred(ctx: PlanCtx, sub: Subscription, upToIndex: number): void {
  for (const t of sub.terms) {
    if (!t.scheduled && (t.scheduleFromIndex ?? t.fromIndex) <= upToIndex && (sub.endIndex === null || t.fromIndex < sub.endIndex)) scheduleTerm(ctx, sub, t);
  }
}

function renewCycles(ctx: PlanCtx, sub: Subscription, nowMs: number): number {
  let renewed = 0;
  for (;;) {
    const k = sub.renewedThroughIndex + 1;
    const w = cycleWindow(sub.anchorMs, sub.cycle!, k);
    if (w.startMs > nowMs) break;
    if (sub.endIndex !== null && k >= sub.endIndex) {
      sub.status = 'canceled';
      sub.endedAtMs = cycleStartMs(sub.anchorMs, sub.cycle!, sub.endIndex);
      break;
    }
    scheduleDeferred(ctx, sub, k);
    const term = termAt(sub, k)!;
    sub.offerId = term.offer.id;
    sub.quantity = term.quantity;
    const order = newOrder(ctx, {
      accountId: sub.accountId,
      type: 'renew',
      offerId: term.offer.id,
      subscriptionId: sub.id,
      actor: 'system',
      idempotencyKey: null,
      effectiveAtMs: w.startMs,
      details: { cycleIndex: k },
      lines: [
        {
          kind: lineKindFor(term.offer),
          description: `${term.offer.name}${term.quantity > 1 ? ` x ${term.quantity}` : ''}, ${isoDay(w.startMs)} to ${isoDay(w.endMs)}`,
          quantity: term.quantity,
          amountMinor: term.offer.priceMinor * term.quantity,
          offerId: term.offer.id,
        },
      ],
    });
    const paid = collect(ctx, order, sub.channel);
    order.paidBy = order.amountMinor === 0 ? 'none' : sub.channel;
    if (paid === 'unpaid') {
      order.status = 'unpaid';
      sub.status = 'past_due';
      endFamily(ctx, sub, k + 1, 'unpaid');
    }
    ctx.deps.store.insertOrder(order);
    earnPoints(ctx, order);
    sub.renewedThroughIndex = k;
    renewed++;
  }
  if (isLive(sub)) {
    const k = currentIndex(sub, nowMs);
    scheduleDeferred(ctx, sub, k);
    const term = termAt(sub, k);
    if (term !== undefined) {
      sub.offerId = term.offer.id;
      sub.quantity = term.quantity;
    }
  }
  return renewed;
}

/** Bring one account's subscriptions to now, as part of a plan (plan.ts). Returns renewal orders created. */
export function catchUpAccount(ctx: PlanCtx, accountId: string): number {
  const { store } = ctx.deps;
  const nowMs = ctx.now();
  const live = store.listSubscriptions({ accountId, live: true });
  if (live.length === 0) return 0;
  // A closed account renews nothing: its subscriptions end when the cycle running at the closing ends (atk-billing
  // F9: they renewed every cycle, from the wallet or on the phone bill, after the customer had left).
  const closed = ctx.view.account?.id === accountId && ctx.view.account.status === 'closed';
  live.sort((a, b) => (a.parentId === null ? 0 : 1) - (b.parentId === null ? 0 : 1));
  let renewed = 0;
  let policyChanged = false;
  for (const { id } of live) {
    const sub = store.getSubscription(id)!;
    if (!isLive(sub)) continue;
    const before = JSON.stringify(sub);
    if (sub.cycle === null) {
      if (sub.expiresAtMs !== null && sub.expiresAtMs <= nowMs) {
        sub.status = 'expired';
        sub.endedAtMs = sub.expiresAtMs;
      }
    } else {
      const next = sub.renewedThroughIndex + 1;
      if (closed && cycleWindow(sub.anchorMs, sub.cycle, next).startMs <= nowMs && (sub.endIndex === null || sub.endIndex > next))
        endFamily(ctx, sub, next, 'canceled');
      renewed += renewCycles(ctx, sub, nowMs);
    }
    if (JSON.stringify(sub) === before) continue;
    if (!isLive(sub) && (sub.type === 'plan' || sub.type === 'payg')) policyChanged = true;
    sub.updatedAtMs = nowMs;
    store.updateSubscription(sub);
  }
  if (policyChanged) syncPolicy(ctx, accountId);
  return renewed;
}

/** catchUpAccount as its own plan (load, plan, apply): reads, the renewal run and bill runs use it. */
export function catchUpPlanned(ctx: Ctx, accountId: string): Promise<BR<number>> {
  return runPlan(
    ctx,
    accountId,
    { history: false },
    planner((p) => ok(catchUpAccount(p, accountId))),
  );
}

/** Renew every account that has live subscriptions (the timer and the bill run). Returns renewal orders made. */
export async function renewDue(ctx: Ctx): Promise<number> {
  return (await renewDueReport(ctx)).renewalOrders;
}

export interface RenewalRunFailure {
  accountId: string;
  /** allowance: the charging engine's cycle buckets; subscription: the renewal order. */
  stage: 'allowance' | 'subscription';
  error: string;
}

export interface RenewalRun {
  renewalOrders: number;
  allowanceBuckets: number;
  failures: RenewalRunFailure[];
}

/**
 * The renewal run: the engine's due cycles, then every account's subscriptions, one account at a time. An
 * account that fails is rolled back alone, logged at error and listed; the run goes on with the others (one
 * account's bad data must never stop everybody's renewal).
 */
export async function renewDueReport(ctx: Ctx): Promise<RenewalRun> {
  const cycles = await ctx.deps.charging.renewDueReport();
  const failures: RenewalRunFailure[] = cycles.failures.map((f) => ({ accountId: f.accountId, stage: 'allowance', error: f.error }));
  const accounts = new Set((await ctx.deps.store.listSubscriptions({ live: true })).map((s) => s.accountId));
  let renewed = 0;
  for (const accountId of accounts) {
    try {
      const r = await catchUpPlanned(ctx, accountId);
      if (!r.ok) throw new Error(r.message);
      renewed += r.value;
    } catch (e) {
      failures.push({ accountId, stage: 'subscription', error: e instanceof Error ? e.message : String(e) });
    }
  }
  for (const f of failures) {
    ctx.deps.log?.(
      'error',
      { accountId: f.accountId, stage: f.stage, err: f.error, alert: 'renewal_failed' },
      'renewal failed for an account; the run went on with the others',
    );
    ctx.deps.onRenewalFailure?.(f);
  }
  return { renewalOrders: renewed, allowanceBuckets: cycles.created, failures };
}

/** After money arrives in the wallet: pay unpaid orders, oldest first, and reinstate a lapsing subscription. */
export function settleUnpaid(ctx: PlanCtx, accountId: string): number {
  const { store } = ctx.deps;
  let settled = 0;
  for (const order of store.listOrders({ accountId, status: 'unpaid' })) {
    if (!debitWallet(ctx, accountId, order.currency, order.amountMinor, `order:${order.id}`)) break;
    order.status = 'completed';
    store.updateOrder(order);
    for (const p of store.listPayments({ orderId: order.id, status: 'unpaid' })) {
      store.updatePayment({ ...p, status: 'succeeded', updatedAtMs: ctx.now() });
    }
    earnPoints(ctx, order);
    reinstate(ctx, order);
    settled++;
  }
  return settled;
}

function reinstate(ctx: PlanCtx, order: Order): void {
  if (order.type !== 'renew' || order.subscriptionId === null) return;
  const sub = ctx.deps.store.getSubscription(order.subscriptionId);
  const k = Number(order.details.cycleIndex);
  if (sub === undefined || sub.status !== 'past_due' || sub.endReason !== 'unpaid' || sub.renewedThroughIndex !== k || currentIndex(sub, ctx.now()) !== k)
    return;
  const family = [
    sub,
    ...ctx.deps.store
      .listSubscriptions({ accountId: sub.accountId, live: true })
      .filter((c) => c.parentId === sub.id && c.endReason === 'parent_ended' && c.endIndex === k + 1),
  ];
  for (const s of family) {
    const current = termAt(s, k);
    s.status = 'active';
    s.endIndex = null;
    s.endReason = null;
    if (current !== undefined) {
      const term: Term = {
        fromIndex: k + 1,
        offer: current.offer,
        quantity: current.quantity,
        ref: `sub:${s.id}:${current.offer.id}:${order.id}`,
        scheduleId: null,
        scheduled: false,
      };
      s.terms.push(term);
      scheduleTerm(ctx, s, term);
    }
    s.updatedAtMs = ctx.now();
    ctx.deps.store.updateSubscription(s);
  }
}

/**
 * The start of every subscription order: the account must be active, its due cycles are caught up first (so
 * the order sees this cycle's buckets), and the offer must be on sale.
 */
export function orderableOffer(ctx: PlanCtx, accountId: string, offerId: string): BR<Offer> {
  const account = activeAccount(ctx, accountId);
  if (!account.ok) return account;
  catchUpAccount(ctx, accountId);
  return offerOnSale(ctx, offerId);
}
