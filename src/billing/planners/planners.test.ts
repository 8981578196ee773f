/**
 * The billing planners as pure functions: table tests on hand-made views, no store, no clock, no await. A plan is
 * data (rows, charging operations, preconditions), so what an order would do is asserted without applying it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BucketBalance } from '../../charging/index.ts';
import { PLANNER_RULES } from '../context.ts';
import { parseOfferCatalog } from '../offers.ts';
import type { BillingPlan } from '../store.ts';
import type { OfferCatalog } from '../types.ts';
import { emptyView, type BillingView } from '../view.ts';
import { parsePeriod } from '../periods.ts';
import { planBill, planCancel, planChange, planRefund, planRenew, planSubscribe, planTopUp } from './orders.ts';
import type { IdSource } from './sheet.ts';

const CATALOG = `
version: planners-test
defaults: { channel: wallet }
limits: { topupMax: "1000.00" }
points: { earnPerYuan: 2, tokensPerPoint: 100, minRedeem: 10, validityDays: 7 }
offers:
  monthly: { name: Monthly, type: plan, price: "10.00", cycle: month, allowance: { tokens: 1000 } }
  big: { name: Big, type: plan, price: "30.00", cycle: month, allowance: { tokens: 5000 } }
`;

const parsed = parseOfferCatalog(CATALOG, { walletCoinsPerUnit: 400_000 });
if (!parsed.ok) throw new Error(parsed.message);
const catalog: OfferCatalog = parsed.value;
const T0 = Date.parse('2026-01-15T00:00:00Z');

/** Ids unique across the file (views are chained from one plan to the next). */
let seq = 0;
function ids(): IdSource {
  return (prefix) => `${prefix}_${++seq}`;
}

/** The same ids every time. */
function fixedIds(): IdSource {
  let n = 0;
  return (prefix) => `${prefix}_fixed_${++n}`;
}

function wallet(remaining: number): BucketBalance {
  return {
    id: 'bkt_wallet',
    unit: 'money',
    currency: catalog.currency,
    kind: 'wallet',
    memberId: null,
    amount: remaining,
    used: 0,
    reserved: 0,
    forfeited: 0,
    remaining,
    effectiveAtMs: 0,
    expiresAtMs: null,
    expired: false,
    models: null,
    priority: 0,
    sourceRef: `wallet:${catalog.currency}`,
  };
}

function view(o: { nowMs?: number; status?: 'active' | 'suspended'; walletMinor?: number; version?: number } = {}): BillingView {
  const v = emptyView(o.nowMs ?? T0, catalog, PLANNER_RULES, 'acct_1');
  v.versions = [{ accountId: 'acct_1', version: o.version ?? 3 }];
  v.account = { id: 'acct_1', name: 'One', kind: 'individual', parentId: null, status: o.status ?? 'active', createdAtMs: 0 };
  if (o.walletMinor !== undefined) v.buckets = [wallet(o.walletMinor)];
  return v;
}

/** The view after `plan` applied (billing rows only; the buckets are given by the test). */
function after(v: BillingView, plan: BillingPlan, nowMs: number, walletMinor: number): BillingView {
  const next = structuredClone(v);
  next.nowMs = nowMs;
  const upsert = <T extends { id: string }>(xs: T[], ys: T[]): T[] => [...xs.filter((x) => !ys.some((y) => y.id === x.id)), ...ys];
  next.orders = upsert(next.orders, [...plan.ordersInsert, ...plan.ordersUpdate]);
  next.subscriptions = upsert(next.subscriptions, [...plan.subscriptionsInsert, ...plan.subscriptionsUpdate]);
  next.payments = upsert(next.payments, [...plan.paymentsInsert, ...plan.paymentsUpdate]);
  next.points = [...next.points, ...plan.pointsInsert];
  next.buckets = [wallet(walletMinor)];
  return next;
}

describe('planTopUp', () => {
  const cases: { name: string; v: BillingView; amountMinor: number; code?: string }[] = [
    { name: 'an active account is credited', v: view(), amountMinor: 5_000 },
    { name: 'over the per-order limit is refused', v: view(), amountMinor: 100_001, code: 'unprocessable' },
    { name: 'a zero amount is invalid', v: view(), amountMinor: 0, code: 'invalid' },
    { name: 'a suspended account is refused', v: view({ status: 'suspended' }), amountMinor: 100, code: 'unprocessable' },
    { name: 'an unknown account is not found', v: { ...view(), account: undefined }, amountMinor: 100, code: 'not_found' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = planTopUp(c.v, { accountId: 'acct_1', amountMinor: c.amountMinor, actor: 'admin', idempotencyKey: null }, ids());
      if (c.code !== undefined) {
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.code, c.code);
        return;
      }
      assert.ok(r.ok);
      const { plan, value } = r.value;
      assert.deepEqual(plan.expect, [{ accountId: 'acct_1', version: 3 }], 'planned against the version the view was loaded at');
      assert.equal(value.walletMinor, c.amountMinor);
      assert.equal(plan.ordersInsert.length, 1);
      assert.equal(plan.ordersInsert[0]!.amountMinor, c.amountMinor);
      assert.equal(plan.paymentsInsert[0]!.status, 'succeeded');
      assert.deepEqual(
        plan.charging?.ops.map((o) => o.op),
        ['topUpWallet'],
      );
      assert.equal(plan.charging?.nowMs, T0, 'time is the view’s now');
    });
  }

  test('is deterministic: the same view and ids give the same plan', () => {
    const input = { accountId: 'acct_1', amountMinor: 700, actor: 'admin', idempotencyKey: null };
    assert.deepEqual(planTopUp(view(), input, fixedIds()), planTopUp(view(), input, fixedIds()));
  });

  test('pays an unpaid renewal the wallet could not pay, oldest first', () => {
    const sub = planSubscribe(view({ walletMinor: 1_000 }), { accountId: 'acct_1', offerId: 'monthly', actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(sub.ok);
    const nextMonth = Date.parse('2026-02-15T00:00:01Z');
    const renewed = planRenew(after(view(), sub.value.plan, nextMonth, 0), ids());
    assert.ok(renewed.ok);
    assert.equal(renewed.value.value, 1);
    const unpaid = renewed.value.plan.ordersInsert.find((o) => o.type === 'renew')!;
    assert.equal(unpaid.status, 'unpaid');
    const r = planTopUp(
      after(after(view(), sub.value.plan, nextMonth, 0), renewed.value.plan, nextMonth, 0),
      { accountId: 'acct_1', amountMinor: 2_000, actor: 'admin', idempotencyKey: null },
      ids(),
    );
    assert.ok(r.ok);
    assert.equal(r.value.value.settledOrders, 1);
    assert.equal(r.value.value.walletMinor, 1_000);
    assert.deepEqual(
      r.value.plan.ordersUpdate.map((o) => [o.id, o.status]),
      [[unpaid.id, 'completed']],
    );
  });
});

describe('planSubscribe', () => {
  test('a wallet that cannot pay is refused with payment_required and no plan', () => {
    const r = planSubscribe(view({ walletMinor: 999 }), { accountId: 'acct_1', offerId: 'monthly', actor: 'admin', idempotencyKey: null }, ids());
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.code, 'payment_required');
  });

  test('a paid subscription debits the wallet, creates its allowance schedule and sets the policy', () => {
    const r = planSubscribe(view({ walletMinor: 1_000 }), { accountId: 'acct_1', offerId: 'monthly', actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(r.ok);
    const { plan, value } = r.value;
    assert.equal(value.subscription.offerId, 'monthly');
    assert.equal(value.order.amountMinor, 1_000);
    assert.equal(plan.subscriptionsInsert.length, 1);
    const ops = plan.charging!.ops.map((o) => o.op);
    assert.ok(ops.includes('debitWallet') && ops.includes('createSchedule') && ops.includes('setPolicy'), ops.join(','));
    assert.equal(r.value.schedulesCreated, 1);
  });

  test('an unknown offer is not found', () => {
    const r = planSubscribe(view({ walletMinor: 1_000 }), { accountId: 'acct_1', offerId: 'nope', actor: 'admin', idempotencyKey: null }, ids());
    assert.equal(r.ok ? 'ok' : r.code, 'not_found');
  });
});

describe('planChange, planCancel, planRefund on a subscribed view', () => {
  const subscribed = (): { v: BillingView; subId: string; orderId: string } => {
    const r = planSubscribe(view({ walletMinor: 1_000 }), { accountId: 'acct_1', offerId: 'monthly', actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(r.ok);
    return { v: after(view(), r.value.plan, T0 + 1, 10_000), subId: r.value.value.subscription.id, orderId: r.value.value.order.id };
  };

  test('an upgrade mid-cycle charges the new price for the rest of the cycle less the unused old price', () => {
    const { v, subId } = subscribed();
    const r = planChange(v, { subscriptionId: subId, offerId: 'big', actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(r.ok);
    assert.equal(r.value.value.kind, 'upgrade');
    const lines = r.value.value.order.lines.map((l) => l.amountMinor);
    assert.equal(lines.length, 2);
    assert.ok(lines[0]! > 0 && lines[1]! < 0, `prorated charge then credit: ${lines}`);
    assert.ok(lines[0]! <= 3_000 && -lines[1]! <= 1_000);
  });

  test('changing to the same plan is a conflict', () => {
    const { v, subId } = subscribed();
    const r = planChange(v, { subscriptionId: subId, offerId: 'monthly', actor: 'admin', idempotencyKey: null }, ids());
    assert.equal(r.ok ? 'ok' : r.code, 'conflict');
  });

  test('cancel ends the subscription at the end of the cycle', () => {
    const { v, subId } = subscribed();
    const r = planCancel(v, { subscriptionId: subId, actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(r.ok);
    assert.equal(r.value.value.subscription.endIndex, 1);
    assert.ok(r.value.plan.charging!.ops.some((o) => o.op === 'endSchedule'));
  });

  test('a full refund of the running cycle ends the subscription now and refunds to the wallet', () => {
    const { v, orderId } = subscribed();
    const r = planRefund(v, { orderId, reason: 'test', actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(r.ok);
    assert.equal(r.value.value.amountMinor, -1_000);
    assert.equal(r.value.plan.subscriptionsUpdate[0]!.status, 'canceled');
    assert.ok(r.value.plan.charging!.ops.some((o) => o.op === 'topUpWallet'));
  });

  test('a refund larger than what is left is refused', () => {
    const { v, orderId } = subscribed();
    const r = planRefund(v, { orderId, amountMinor: 1_001, reason: 'test', actor: 'admin', idempotencyKey: null }, ids());
    assert.equal(r.ok ? 'ok' : r.code, 'unprocessable');
  });
});

describe('a view loaded without the account history', () => {
  test('renews (catch-ups need subscriptions and buckets only) but refuses to plan an order that reads orders', () => {
    const r = planSubscribe(view({ walletMinor: 1_000 }), { accountId: 'acct_1', offerId: 'monthly', actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(r.ok);
    const light = { ...after(view(), r.value.plan, Date.parse('2026-02-15T00:00:01Z'), 5_000), history: false, orders: [], payments: [] };
    const renewed = planRenew(light, ids());
    assert.ok(renewed.ok);
    assert.equal(renewed.value.value, 1);
    assert.equal(renewed.value.plan.ordersInsert[0]!.status, 'completed');
    assert.throws(
      () => planTopUp(light, { accountId: 'acct_1', amountMinor: 100, actor: 'admin', idempotencyKey: null }, ids()),
      /without the account history/,
    );
  });
});

describe('planBill', () => {
  test('bills the month’s orders once: created, then existing on a view that holds the bill', () => {
    const r = planSubscribe(view({ walletMinor: 1_000 }), { accountId: 'acct_1', offerId: 'monthly', actor: 'admin', idempotencyKey: null }, ids());
    assert.ok(r.ok);
    const feb = after(view(), r.value.plan, Date.parse('2026-02-01T00:00:00Z'), 0);
    const period = parsePeriod('2026-01')!;
    const b = planBill(feb, period, ids());
    assert.ok(b.ok);
    assert.equal(b.value.value.kind, 'created');
    assert.equal(b.value.value.bill!.totalMinor, 1_000);
    assert.deepEqual(
      b.value.plan.ordersUpdate.map((o) => o.billId),
      [b.value.value.bill!.id],
    );
    const again = planBill({ ...feb, bills: b.value.plan.billsInsert }, period, ids());
    assert.ok(again.ok);
    assert.equal(again.value.value.kind, 'existing');
    assert.equal(again.value.plan.billsInsert.length, 0);
  });
});
