/**
 * The BillingStore contract: every implementation (memory, SQLite, later PostgreSQL) runs this suite. It checks
 * the port's own promises (round trips, the filters and order of each query, uniqueness, copies not aliases),
 * not billing policy, which the use cases' tests and the reference-model property test cover.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  emptyPlan,
  type ApplyResult,
  type Bill,
  type BillingPlan,
  type BillingStore,
  type CodeBatch,
  type Order,
  type Payment,
  type Subscription,
} from '../../billing/index.ts';
import type { ChargingStore } from '../../charging/index.ts';

const T = Date.UTC(2027, 0, 1);

function order(over: Partial<Order> = {}): Order {
  return {
    id: 'ord_1',
    accountId: 'acct_1',
    type: 'subscribe',
    status: 'completed',
    offerId: 'basic',
    subscriptionId: 'sub_1',
    lines: [{ kind: 'subscription', description: 'Basic', quantity: 1, amountMinor: 997, offerId: 'basic' }],
    amountMinor: 997,
    currency: 'CNY',
    paidBy: 'wallet',
    actor: 'admin:t',
    idempotencyKey: null,
    effectiveAtMs: T,
    createdAtMs: T,
    billId: null,
    details: {},
    ...over,
  };
}

function sub(over: Partial<Subscription> = {}): Subscription {
  return {
    id: 'sub_1',
    accountId: 'acct_1',
    offerId: 'basic',
    type: 'plan',
    parentId: null,
    status: 'active',
    anchorMs: T,
    cycle: 'month',
    quantity: 1,
    terms: [],
    renewedThroughIndex: 0,
    endIndex: null,
    endReason: null,
    expiresAtMs: null,
    endedAtMs: null,
    channel: 'wallet',
    createdAtMs: T,
    updatedAtMs: T,
    ...over,
  };
}

function payment(over: Partial<Payment> = {}): Payment {
  return {
    id: 'pay_1',
    accountId: 'acct_1',
    orderId: 'ord_1',
    billId: null,
    channel: 'wallet',
    amountMinor: 997,
    currency: 'CNY',
    status: 'succeeded',
    reference: null,
    attempts: 0,
    createdAtMs: T,
    updatedAtMs: T,
    ...over,
  };
}

function bill(over: Partial<Bill> = {}): Bill {
  return {
    id: 'bill_1',
    accountId: 'acct_1',
    period: '2027-01',
    periodStartMs: T,
    periodEndMs: T + 31 * 86_400_000,
    currency: 'CNY',
    status: 'final',
    lines: [],
    usage: [],
    payments: [],
    totalMinor: 0,
    prepaidMinor: 0,
    phoneBillMinor: 0,
    unpaidMinor: 0,
    createdAtMs: T,
    ...over,
  };
}

const ids = (xs: { id: string }[]): string[] => xs.map((x) => x.id);
const plan = (p: Partial<BillingPlan>): BillingPlan => ({ ...emptyPlan(), ...p });
const conflict = (r: ApplyResult): string | null => (r.ok ? null : r.conflict);
/** Apply a plan that must apply. */
async function put(s: BillingStore, p: Partial<BillingPlan>): Promise<void> {
  const r = await s.apply(plan(p));
  assert.deepEqual(r, { ok: true });
}

export function billingStoreContract(
  name: string,
  make: () => BillingStore,
  /** A billing store connected to the charging store of the same database (for plans with charging operations). */
  makeWithCharging?: () => { billing: BillingStore; charging: ChargingStore },
): void {
  describe(`BillingStore contract (${name})`, () => {
    test('an account version starts at 0 and moves by one per applied plan; a plan made from an older version is refused and writes nothing', async () => {
      const s = make();
      assert.equal(await s.accountVersion('acct_1'), 0);
      await put(s, { expect: [{ accountId: 'acct_1', version: 0 }], ordersInsert: [order({ id: 'ord_a' })] });
      assert.equal(await s.accountVersion('acct_1'), 1);
      const stale = await s.apply(plan({ expect: [{ accountId: 'acct_1', version: 0 }], ordersInsert: [order({ id: 'ord_b' })] }));
      assert.equal(conflict(stale), 'version');
      assert.equal(await s.getOrder('ord_b'), undefined, 'nothing of a refused plan is written');
      assert.equal(await s.accountVersion('acct_1'), 1);
      await put(s, { expect: [{ accountId: 'acct_1', version: 1 }], ordersInsert: [order({ id: 'ord_b' })] });
      assert.equal(await s.accountVersion('acct_1'), 2);
      assert.equal(await s.accountVersion('acct_2'), 0, 'versions are per account');
    });

    test('of two plans made from the same version, exactly one applies', async () => {
      const s = make();
      const results = await Promise.all(
        ['ord_x', 'ord_y'].map((id) => s.apply(plan({ expect: [{ accountId: 'acct_1', version: 0 }], ordersInsert: [order({ id })] }))),
      );
      assert.deepEqual(results.map((r) => r.ok).sort(), [false, true]);
      assert.equal((await s.listOrders({ accountId: 'acct_1' })).length, 1);
    });

    test('a plan refused for any precondition writes none of its rows (all or nothing)', async () => {
      const s = make();
      await put(s, { billsInsert: [bill({ id: 'bill_a' })] });
      const r = await s.apply(
        plan({
          expect: [{ accountId: 'acct_1', version: 0 }],
          idempotency: { scope: 'account:acct_1', key: 'k9', requestHash: 'h', response: null, createdAtMs: T },
          ordersInsert: [order({ id: 'ord_n' })],
          subscriptionsInsert: [sub({ id: 'sub_n' })],
          paymentsInsert: [payment({ id: 'pay_n' })],
          pointsInsert: [{ id: 'pts_n', accountId: 'acct_1', points: 5, reason: 'x', orderId: null, atMs: T }],
          billsInsert: [bill({ id: 'bill_b' })],
        }),
      );
      assert.equal(conflict(r), 'bill');
      assert.equal(await s.getOrder('ord_n'), undefined);
      assert.equal(await s.getSubscription('sub_n'), undefined);
      assert.deepEqual(await s.listPayments({}), []);
      assert.deepEqual(await s.listPoints('acct_1'), []);
      assert.equal(await s.getIdempotency('account:acct_1', 'k9'), undefined);
      assert.equal(await s.accountVersion('acct_1'), 0);
    });

    test('a code is redeemed by one plan only: a second plan redeeming it is refused', async () => {
      const s = make();
      const b = {
        id: 'cb_1',
        offerId: 'pack',
        offer: { id: 'pack' },
        count: 1,
        note: null,
        createdBy: 'a',
        createdAtMs: T,
        expiresAtMs: null,
      } as unknown as CodeBatch;
      const code = { hash: 'h1', batchId: 'cb_1', hint: 'ABCD', redeemedBy: null, redeemedAtMs: null, orderId: null };
      await put(s, { codeBatches: [{ batch: b, codes: [code] }] });
      await put(s, { codesRedeem: [{ ...code, redeemedBy: 'acct_1', redeemedAtMs: T, orderId: 'ord_1' }] });
      const again = await s.apply(plan({ codesRedeem: [{ ...code, redeemedBy: 'acct_2', redeemedAtMs: T, orderId: 'ord_2' }] }));
      assert.equal(conflict(again), 'code');
      assert.equal((await s.getCode('h1'))!.redeemedBy, 'acct_1');
      const dup = await s.apply(plan({ codeBatches: [{ batch: { ...b, id: 'cb_2' }, codes: [{ ...code, batchId: 'cb_2' }] }] }));
      assert.equal(conflict(dup), 'code', 'a code hash is stored once');
      assert.equal(await s.getCodeBatch('cb_2'), undefined);
    });

    if (makeWithCharging !== undefined) {
      test("a plan's charging operations apply in its transaction: a debit the wallet cannot pay refuses the whole plan", async () => {
        const { billing: s, charging } = makeWithCharging();
        const wallet = async (): Promise<number> =>
          (await charging.listBuckets('acct_1')).filter((x) => x.kind === 'wallet').reduce((n, x) => n + x.amount - x.consumed, 0);
        const ops = (o: NonNullable<BillingPlan['charging']>['ops']): BillingPlan['charging'] => ({ accountId: 'acct_1', nowMs: T, ops: o });
        await put(s, {
          expect: [{ accountId: 'acct_1', version: 0 }],
          ordersInsert: [order({ id: 'ord_top', type: 'topup', lines: [], amountMinor: 500 })],
          charging: ops([{ op: 'topUpWallet', currency: 'CNY', amountMinor: 500, sourceRef: 'order:ord_top', walletId: 'bkt_w' }]),
        });
        assert.equal(await wallet(), 500);
        const tooMuch = await s.apply(
          plan({
            expect: [{ accountId: 'acct_1', version: 1 }],
            ordersInsert: [order({ id: 'ord_big' })],
            charging: ops([
              {
                op: 'grant',
                id: 'bkt_g',
                unit: 'tokens',
                currency: null,
                amount: 1000,
                effectiveAtMs: T,
                expiresAtMs: T + 1e9,
                kind: 'addon',
                models: null,
                sourceRef: 'sub:x',
              },
              { op: 'debitWallet', currency: 'CNY', amountMinor: 600, ref: 'order:ord_big' },
            ]),
          }),
        );
        assert.equal(conflict(tooMuch), 'charging');
        assert.equal(await s.getOrder('ord_big'), undefined, 'the order is not written');
        assert.equal(
          (await charging.listBuckets('acct_1')).find((x) => x.id === 'bkt_g'),
          undefined,
          'nor the grant before the debit',
        );
        assert.equal(await s.accountVersion('acct_1'), 1);
        await put(s, {
          expect: [{ accountId: 'acct_1', version: 1 }],
          ordersInsert: [order({ id: 'ord_ok' })],
          charging: ops([{ op: 'debitWallet', currency: 'CNY', amountMinor: 200, ref: 'order:ord_ok' }]),
        });
        assert.equal(await wallet(), 300);
        assert.ok((await s.getOrder('ord_ok')) !== undefined);
        const ledger = await charging.listLedger('acct_1');
        assert.deepEqual(ledger.map((e) => [e.op, e.amount]).sort(), [
          ['consume', 200],
          ['topup', 500],
        ]);
      });
    }

    test('an Idempotency-Key is stored once per scope, with its request hash and answer', async () => {
      const s = make();
      assert.equal(await s.getIdempotency('account:acct_1', 'k1'), undefined);
      await put(s, { idempotency: { scope: 'account:acct_1', key: 'k1', requestHash: 'h1', response: { a: [1, 2] }, createdAtMs: T } });
      assert.deepEqual(await s.getIdempotency('account:acct_1', 'k1'), {
        scope: 'account:acct_1',
        key: 'k1',
        requestHash: 'h1',
        response: { a: [1, 2] },
        createdAtMs: T,
      });
      assert.equal(await s.getIdempotency('account:acct_2', 'k1'), undefined, 'keys are per scope');
      assert.equal(
        conflict(await s.apply(plan({ idempotency: { scope: 'account:acct_1', key: 'k1', requestHash: 'h2', response: null, createdAtMs: T } }))),
        'idempotency',
      );
    });

    test('orders round-trip, filter by account, subscription, time, status and unbilled, sorted by effective time then id', async () => {
      const s = make();
      await put(s, { ordersInsert: [order({ id: 'ord_b', effectiveAtMs: T + 10 })] });
      await put(s, { ordersInsert: [order({ id: 'ord_a', effectiveAtMs: T + 10, status: 'unpaid' })] });
      await put(s, { ordersInsert: [order({ id: 'ord_c', effectiveAtMs: T, subscriptionId: 'sub_2' })] });
      await put(s, { ordersInsert: [order({ id: 'ord_d', accountId: 'acct_2' })] });
      await assert.rejects(s.apply(plan({ ordersInsert: [order({ id: 'ord_a' })] })), 'ids are unique');
      assert.deepEqual(await s.getOrder('ord_c'), order({ id: 'ord_c', effectiveAtMs: T, subscriptionId: 'sub_2' }));
      assert.equal(await s.getOrder('ord_x'), undefined);
      assert.deepEqual(ids(await s.listOrders({ accountId: 'acct_1' })), ['ord_c', 'ord_a', 'ord_b']);
      assert.deepEqual(ids(await s.listOrders({ subscriptionId: 'sub_2' })), ['ord_c']);
      assert.deepEqual(ids(await s.listOrders({ accountId: 'acct_1', fromMs: T + 1, toMs: T + 11 })), ['ord_a', 'ord_b']);
      assert.deepEqual(ids(await s.listOrders({ accountId: 'acct_1', toMs: T + 10 })), ['ord_c'], 'toMs is exclusive');
      assert.deepEqual(ids(await s.listOrders({ status: 'unpaid' })), ['ord_a']);
      await put(s, { ordersUpdate: [order({ id: 'ord_b', effectiveAtMs: T + 10, billId: 'bill_1' })] });
      assert.deepEqual(ids(await s.listOrders({ accountId: 'acct_1', unbilled: true })), ['ord_c', 'ord_a']);
      assert.equal((await s.getOrder('ord_b'))!.billId, 'bill_1');
    });

    test('what a read returns is a copy: changing it changes nothing stored', async () => {
      const s = make();
      const o = order();
      await put(s, { ordersInsert: [o] });
      o.amountMinor = 1;
      const read = (await s.getOrder('ord_1'))!;
      assert.equal(read.amountMinor, 997);
      read.lines[0]!.amountMinor = 5;
      assert.equal((await s.listOrders({}))[0]!.lines[0]!.amountMinor, 997);
    });

    test('subscriptions round-trip; live means active or past due; sorted by id', async () => {
      const s = make();
      await put(s, { subscriptionsInsert: [sub({ id: 'sub_b' })] });
      await put(s, { subscriptionsInsert: [sub({ id: 'sub_a', status: 'past_due' })] });
      await put(s, { subscriptionsInsert: [sub({ id: 'sub_c', status: 'canceled' })] });
      await put(s, { subscriptionsInsert: [sub({ id: 'sub_d', accountId: 'acct_2' })] });
      await assert.rejects(s.apply(plan({ subscriptionsInsert: [sub({ id: 'sub_a' })] })));
      assert.deepEqual(ids(await s.listSubscriptions({ accountId: 'acct_1' })), ['sub_a', 'sub_b', 'sub_c']);
      assert.deepEqual(ids(await s.listSubscriptions({ accountId: 'acct_1', live: true })), ['sub_a', 'sub_b']);
      assert.deepEqual(ids(await s.listSubscriptions({ live: true })), ['sub_a', 'sub_b', 'sub_d']);
      await put(s, { subscriptionsUpdate: [sub({ id: 'sub_b', status: 'expired', endReason: 'canceled' })] });
      assert.deepEqual(ids(await s.listSubscriptions({ accountId: 'acct_1', live: true })), ['sub_a']);
      assert.equal((await s.getSubscription('sub_b'))!.endReason, 'canceled');
    });

    test('payments filter by account, order, bill, status and creation time', async () => {
      const s = make();
      await put(s, { paymentsInsert: [payment({ id: 'pay_a' })] });
      await put(s, { paymentsInsert: [payment({ id: 'pay_b', orderId: 'ord_2', status: 'pending', createdAtMs: T + 5 })] });
      await put(s, { paymentsInsert: [payment({ id: 'pay_c', accountId: 'acct_2', orderId: null })] });
      assert.deepEqual(ids(await s.listPayments({ accountId: 'acct_1' })), ['pay_a', 'pay_b']);
      assert.deepEqual(ids(await s.listPayments({ orderId: 'ord_2' })), ['pay_b']);
      assert.deepEqual(ids(await s.listPayments({ status: 'pending' })), ['pay_b']);
      assert.deepEqual(ids(await s.listPayments({ fromMs: T + 1 })), ['pay_b']);
      await put(s, { paymentsUpdate: [payment({ id: 'pay_b', orderId: 'ord_2', status: 'submitted', billId: 'bill_1', attempts: 1, createdAtMs: T + 5 })] });
      assert.deepEqual(ids(await s.listPayments({ billId: 'bill_1' })), ['pay_b']);
      assert.deepEqual(ids(await s.listPayments({ status: 'pending' })), []);
    });

    test('code batches and codes: stored by hash, redeemed once counted', async () => {
      const s = make();
      const b = {
        id: 'cb_1',
        offerId: 'pack',
        offer: { id: 'pack' },
        count: 2,
        note: null,
        createdBy: 'admin:t',
        createdAtMs: T,
        expiresAtMs: null,
      } as unknown as CodeBatch;
      const code = (hash: string) => ({ hash, batchId: 'cb_1', hint: 'ABCD', redeemedBy: null, redeemedAtMs: null, orderId: null });
      await put(s, { codeBatches: [{ batch: b, codes: [code('h1'), code('h2')] }] });
      assert.deepEqual(await s.getCodeBatch('cb_1'), b);
      assert.deepEqual(ids(await s.listCodeBatches()), ['cb_1']);
      assert.equal(await s.countRedeemed('cb_1'), 0);
      await put(s, { codesRedeem: [{ ...code('h1'), redeemedBy: 'acct_1', redeemedAtMs: T, orderId: 'ord_1' }] });
      assert.equal(await s.countRedeemed('cb_1'), 1);
      assert.equal((await s.getCode('h1'))!.redeemedBy, 'acct_1');
      assert.equal(await s.getCode('nope'), undefined);
    });

    test('points are listed per account in id order', async () => {
      const s = make();
      await put(s, { pointsInsert: [{ id: 'pts_2', accountId: 'acct_1', points: -10, reason: 'redeemed', orderId: null, atMs: T + 1 }] });
      await put(s, { pointsInsert: [{ id: 'pts_1', accountId: 'acct_1', points: 30, reason: 'earned', orderId: 'ord_1', atMs: T }] });
      await put(s, { pointsInsert: [{ id: 'pts_3', accountId: 'acct_2', points: 5, reason: 'earned', orderId: null, atMs: T }] });
      assert.deepEqual(ids(await s.listPoints('acct_1')), ['pts_1', 'pts_2']);
    });

    test('one bill per account and period; found by either, listed by period then id', async () => {
      const s = make();
      await put(s, { billsInsert: [bill({ id: 'bill_b', period: '2027-02' })] });
      await put(s, { billsInsert: [bill({ id: 'bill_a' })] });
      await put(s, { billsInsert: [bill({ id: 'bill_c', accountId: 'acct_2' })] });
      assert.equal(conflict(await s.apply(plan({ billsInsert: [bill({ id: 'bill_z' })] }))), 'bill', 'a second bill for the same account and period');
      assert.equal((await s.findBill('acct_1', '2027-02'))!.id, 'bill_b');
      assert.equal(await s.findBill('acct_1', '2027-03'), undefined);
      assert.deepEqual(await s.getBill('bill_a'), bill({ id: 'bill_a' }));
      assert.deepEqual(ids(await s.listBills({})), ['bill_a', 'bill_c', 'bill_b']);
      assert.deepEqual(ids(await s.listBills({ accountId: 'acct_1' })), ['bill_a', 'bill_b']);
      assert.deepEqual(ids(await s.listBills({ period: '2027-01' })), ['bill_a', 'bill_c']);
    });

    test('admin keys round-trip and update', async () => {
      const s = make();
      const k = {
        id: 'adk_1',
        name: 'ops',
        role: 'operator',
        accountIds: null,
        hash: 'h',
        prefix: 'tgadm_',
        createdBy: 'bootstrap',
        createdAtMs: T,
        revokedAtMs: null,
      } as const;
      await s.insertAdminKey({ ...k });
      await s.updateAdminKey({ ...k, revokedAtMs: T + 1 });
      assert.deepEqual(await s.listAdminKeys(), [{ ...k, revokedAtMs: T + 1 }]);
    });
  });
}
