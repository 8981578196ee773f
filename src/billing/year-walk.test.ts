/**
 * The "done when": with an injected clock, walk accounts through a year (subscribe, use, run out, buy
 * add-ons, renew on the 31st through a leap February, upgrade, downgrade, cancel) and check that every monthly
 * bill adds up, to the cent, to the orders and usage records of its month. Runs against the memory and the
 * SQLite stores.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createMemoryAccountStore } from '../store/memory/accounts-store.ts';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { createMemoryBillingStore } from '../store/memory/billing-store.ts';
import { openSqlite } from '../store/sqlite/db.ts';
import { openSqliteAccountStore } from '../store/sqlite/accounts-store.ts';
import { openSqliteChargingStore } from '../store/sqlite/charging-store.ts';
import { openSqliteBillingStore } from '../store/sqlite/billing-store.ts';
import { billingHarness, type BillingHarness, type TestStores } from './test-kit.ts';
import { parsePeriod, type CarrierCharge } from './index.ts';

const CATALOG = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8');

const stores: Record<string, () => TestStores> = {
  memory: () => ({ accounts: createMemoryAccountStore(), charging: openMemoryChargingStore(), billing: createMemoryBillingStore() }),
  sqlite: () => {
    const db = openSqlite(':memory:');
    return { accounts: openSqliteAccountStore(db), charging: openSqliteChargingStore(db), billing: openSqliteBillingStore(db) };
  },
};

function must<T>(r: { ok: true; value: T } | { ok: false; code: string; message: string }): T {
  if (!r.ok) assert.fail(`${r.code}: ${r.message}`);
  return r.value;
}

const MONTHS = ['2028-01', '2028-02', '2028-03', '2028-04', '2028-05', '2028-06', '2028-07', '2028-08', '2028-09', '2028-10', '2028-11', '2028-12'];

/** The bill equals the fold of its orders' lines and the money the period's usage records charged. */
async function checkBill(h: BillingHarness, accountId: string, period: string): Promise<number> {
  const p = parsePeriod(period)!;
  const bill = (await h.billing.listBills({ accountId, period }))[0];
  const orders = (await h.billing.listOrders({ accountId })).filter((o) => o.effectiveAtMs >= p.startMs && o.effectiveAtMs < p.endMs);
  const usage = await h.charging.listUsage(accountId, { fromMs: p.startMs, toMs: p.endMs });
  const ordersMinor = orders.flatMap((o) => o.lines).reduce((s, l) => s + l.amountMinor, 0);
  const usageMinor = usage
    .flatMap((u) => u.charges)
    .filter((c) => c.kind === 'wallet' || c.kind === 'postpaid_line')
    .reduce((s, c) => s + c.amount, 0);
  if (bill === undefined) {
    assert.equal(ordersMinor + usageMinor, 0, `${period}: no bill but activity`);
    return 0;
  }
  assert.ok(
    orders.every((o) => o.billId === bill.id),
    `${period}: every order of the month is on its bill`,
  );
  assert.equal(bill.totalMinor, ordersMinor + usageMinor, `${period}: bill total = orders + usage`);
  assert.equal(
    bill.lines.reduce((s, l) => s + l.amountMinor, 0),
    bill.totalMinor,
    `${period}: lines add up`,
  );
  const phone =
    orders.filter((o) => o.paidBy === 'phone_bill' && o.status !== 'unpaid').reduce((s, o) => s + o.amountMinor, 0) +
    usage
      .flatMap((u) => u.charges)
      .filter((c) => c.kind === 'postpaid_line')
      .reduce((s, c) => s + c.amount, 0);
  assert.equal(bill.phoneBillMinor, phone, `${period}: phone-bill amount`);
  return bill.totalMinor;
}

for (const [name, make] of Object.entries(stores)) {
  describe(`a year of billing (${name} stores)`, () => {
    test('subscribe, use, run out, add-ons, renew, upgrade, downgrade, cancel: every monthly bill adds up to the cent', async () => {
      const carried: CarrierCharge[] = [];
      const h = billingHarness(make(), {
        startMs: '2028-01-31T10:00:00Z',
        catalogText: CATALOG,
        carrier: {
          name: 'test',
          submit: async (cs) => {
            carried.push(...cs);
            return cs.map((c) => ({ paymentId: c.paymentId, ok: true, reference: 'ok', error: null }));
          },
        },
      });
      const b = h.billing;
      const at = async (iso: string): Promise<void> => {
        h.clock.set(iso);
        await b.renewDue();
      };
      const dev = await h.newAccount('Developer');
      const payg = await h.newAccount('Pay as you go');
      const actor = 'admin:test';

      must(await b.topUp({ accountId: dev, amountMinor: 100_00, actor, idempotencyKey: 't1' }));
      const sub = must(await b.subscribe({ accountId: dev, offerId: 'ct-dev-basic', channel: 'phone_bill', actor, idempotencyKey: 's1' })).value.subscription;
      assert.equal(b.subscriptionView(sub).currentPeriodEnd, '2028-02-29T10:00:00.000Z', 'anchor on the 31st: Feb 29 in a leap year');
      must(await b.subscribe({ accountId: payg, offerId: 'sh-telecom-payg', actor, idempotencyKey: 'p1' }));

      await at('2028-02-01T00:00:00Z');
      const jan = must(await b.runBills('2028-01'));
      assert.equal(jan.created, 2);
      const janBill = (await b.listBills({ accountId: dev, period: '2028-01' }))[0]!;
      assert.equal(janBill.totalMinor, 39_90);
      assert.equal(janBill.phoneBillMinor, 39_90);
      assert.deepEqual(
        janBill.payments.map((x) => x.amountMinor),
        [100_00],
        'the top-up is a payment, not a charge',
      );

      await at('2028-02-02T00:00:00Z');
      assert.ok((await h.use(dev, 5_000_000, 1_000_000)).ok);
      await at('2028-02-05T00:00:00Z');
      assert.ok((await h.use(dev, 9_000_000, 0)).ok, 'uses the allowance to the last token');
      const over = await h.use(dev, 300_000, 100_000);
      assert.ok(over.ok);
      assert.deepEqual(
        over.record.charges.map((c) => [c.kind, c.amount]),
        [['wallet', 1_00]],
        'past the cap: paid from the wallet at 2.5 CNY per 1M',
      );
      const bal = await b.balance(dev, null);
      assert.match(bal.pastCap, /wallet/);
      assert.equal(bal.wallet.balanceMinor, 99_00);

      await at('2028-02-10T10:00:00Z');
      const sec = must(await b.buyAddon({ accountId: dev, offerId: 'ct-security-pack', channel: 'wallet', actor, idempotencyKey: 'a1' })).value;
      assert.equal(sec.order.amountMinor, 3_28, '5.00 x 19/29 days, rounded up');
      const ent = await b.entitlements(dev);
      assert.deepEqual(
        ent.features.map((f) => f.feature),
        ['security_pack'],
      );
      await at('2028-02-12T00:00:00Z');
      must(await b.buyAddon({ accountId: dev, offerId: 'ct-tokens-10m', channel: 'wallet', actor, idempotencyKey: 'a2' }));
      await at('2028-02-13T00:00:00Z');
      const fromAddon = await h.use(dev, 2_000_000, 0);
      assert.ok(fromAddon.ok);
      assert.deepEqual(
        fromAddon.record.charges.map((c) => c.kind),
        ['addon'],
        'the add-on pays before the wallet',
      );
      assert.ok((await h.use(payg, 8_000_000, 2_000_000)).ok, 'pay as you go on the phone bill');

      await at('2028-02-29T10:00:00Z');
      const renewals = (await b.listOrders({ accountId: dev })).filter((o) => o.type === 'renew');
      assert.deepEqual(
        renewals.map((o) => [o.offerId, o.amountMinor, new Date(o.effectiveAtMs).toISOString()]),
        [
          ['ct-dev-basic', 39_90, '2028-02-29T10:00:00.000Z'],
          ['ct-security-pack', 5_00, '2028-02-29T10:00:00.000Z'],
        ],
      );
      await at('2028-03-01T00:00:00Z');
      must(await b.runBills('2028-02'));
      const feb = (await b.listBills({ accountId: dev, period: '2028-02' }))[0]!;
      assert.equal(feb.totalMinor, 1_00 + 3_28 + 9_90 + 39_90 + 5_00);
      assert.equal(feb.phoneBillMinor, 39_90);
      const febPayg = (await b.listBills({ accountId: payg, period: '2028-02' }))[0]!;
      // Issue 12: billed at the offer's own price (sh-telecom-payg, 250,000 tokens per CNY), not the wallet's 400,000.
      assert.equal(febPayg.phoneBillMinor, 40_00, "10M tokens at 4 CNY per 1M (the offer's price) on the phone bill");
      assert.ok(
        carried.some((c) => c.accountId === payg && c.amountMinor === 40_00),
        'handed to the carrier',
      );
      const line = (await h.charging.listBuckets(payg)).find((x) => x.kind === 'postpaid_line')!;
      assert.equal(line.remaining, 200_00, 'the billed usage no longer counts against the credit limit');

      await at('2028-03-15T00:00:00Z');
      assert.ok((await h.use(dev, 3_000_000, 0)).ok);
      await at('2028-04-01T00:00:00Z');
      must(await b.runBills('2028-03'));

      await at('2028-04-15T10:00:00Z');
      const up = must(await b.changePlan({ subscriptionId: sub.id, offerId: 'ct-dev-pro', actor, idempotencyKey: 'c1' })).value;
      assert.equal(up.kind, 'upgrade');
      assert.deepEqual(
        up.order.lines.map((l) => l.amountMinor),
        [79_95, -19_95],
        'half a cycle of 159.90 charged, half of 39.90 credited',
      );
      const prorated = (await h.charging.listBuckets(dev)).find((x) => x.sourceRef.endsWith(':prorated'))!;
      assert.equal(prorated.amount, 27_500_000, 'half of the 55M difference for the rest of the cycle');
      await at('2028-04-20T00:00:00Z');
      assert.ok((await h.use(dev, 30_000_000, 0)).ok);
      await at('2028-05-01T00:00:00Z');
      must(await b.runBills('2028-04'));
      const aprRenew = (await b.listOrders({ accountId: dev })).find(
        (o) => o.type === 'renew' && o.effectiveAtMs === Date.parse('2028-04-30T10:00:00Z') && o.offerId === 'ct-dev-pro',
      );
      assert.equal(aprRenew?.amountMinor, 159_90, 'renews on the new plan, on the anchor day (30th in April)');

      await at('2028-05-10T00:00:00Z');
      assert.ok((await h.use(dev, 20_000_000, 0)).ok);
      const ordersBefore = (await b.listOrders({ accountId: dev })).length;
      const refused = await b.changePlan({ subscriptionId: sub.id, offerId: 'ct-dev-basic', actor, idempotencyKey: 'c2' });
      assert.ok(!refused.ok && refused.code === 'unprocessable' && /already used/.test(refused.message));
      assert.equal((await b.listOrders({ accountId: dev })).length, ordersBefore, 'nothing changed');
      await at('2028-06-01T00:00:00Z');
      must(await b.runBills('2028-05'));

      await at('2028-06-10T00:00:00Z');
      const down = must(await b.changePlan({ subscriptionId: sub.id, offerId: 'ct-dev-basic', actor, idempotencyKey: 'c3' })).value;
      assert.equal(down.kind, 'downgrade');
      assert.equal(down.effectiveAt, '2028-06-30T10:00:00.000Z');
      assert.equal(b.subscriptionView(down.subscription).pendingChange?.offerId, 'ct-dev-basic');
      await at('2028-06-30T10:00:01Z');
      const julyPlan = (await h.charging.listBuckets(dev)).filter(
        (x) => x.sourceRef.startsWith(`sub:${sub.id}:`) && !x.expired && x.effectiveAtMs === Date.parse('2028-06-30T10:00:00Z'),
      );
      assert.deepEqual(
        julyPlan.map((x) => x.amount),
        [15_000_000],
        'the smaller plan from the next cycle',
      );
      await at('2028-07-01T00:00:00Z');
      must(await b.runBills('2028-06'));
      await at('2028-08-01T00:00:00Z');
      must(await b.runBills('2028-07'));

      await at('2028-08-05T00:00:00Z');
      const points = await b.pointsBalance(dev);
      assert.ok(points >= 100, `points earned on paid orders: ${points}`);
      const redeemed = must(await b.redeemPoints({ accountId: dev, points: 100, actor, idempotencyKey: 'r1' })).value;
      assert.equal(redeemed.tokens, 1_000_000);
      await at('2028-09-01T00:00:00Z');
      must(await b.runBills('2028-08'));

      await at('2028-09-05T00:00:00Z');
      const batch = must(await b.generateCodes({ offerId: 'bj-mobile-once', count: 3, actor, idempotencyKey: 'g1' })).value;
      const code = batch.codes![0]!;
      must(await b.redeemCode({ accountId: dev, code, actor, idempotencyKey: null }));
      const again = await b.redeemCode({ accountId: payg, code, actor, idempotencyKey: null });
      assert.ok(!again.ok && again.code === 'unprocessable', 'a code works once');
      await at('2028-10-01T00:00:00Z');
      must(await b.runBills('2028-09'));

      await at('2028-10-03T00:00:00Z');
      const canceled = must(await b.cancel({ subscriptionId: sub.id, actor, idempotencyKey: 'x1' })).value;
      assert.equal(b.subscriptionView(canceled.subscription).cancelAt, '2028-10-31T10:00:00.000Z');
      await at('2028-11-01T00:00:00Z');
      must(await b.runBills('2028-10'));
      assert.equal((await b.getSubscription(sub.id))!.status, 'canceled');
      assert.equal((await b.listSubscriptions({ accountId: dev, live: true })).filter((s) => s.cycle !== null).length, 0, 'the add-on ended with its plan');
      await at('2028-11-05T00:00:00Z');
      const afterPlan = await h.use(dev, 1_000_000, 0);
      assert.ok(afterPlan.ok);
      await at('2028-12-01T00:00:00Z');
      must(await b.runBills('2028-11'));
      await at('2029-01-01T00:00:00Z');
      must(await b.runBills('2028-12'));
      assert.equal(
        (await b.listOrders({ accountId: dev })).filter((o) => o.type === 'renew' && o.effectiveAtMs >= Date.parse('2028-10-31T10:00:00Z')).length,
        0,
        'no renewal after the cancel',
      );

      let yearDev = 0;
      for (const m of MONTHS) {
        yearDev += await checkBill(h, dev, m);
        await checkBill(h, payg, m);
      }
      const allLines = (await b.listOrders({ accountId: dev })).flatMap((o) => o.lines).reduce((s, l) => s + l.amountMinor, 0);
      const allUsage = (await h.charging.listUsage(dev, { fromMs: 0, toMs: Date.parse('2030-01-01') }))
        .flatMap((u) => u.charges)
        .filter((c) => c.kind === 'wallet' || c.kind === 'postpaid_line')
        .reduce((s, c) => s + c.amount, 0);
      assert.equal(yearDev, allLines + allUsage, 'the year adds up');

      const march = (await b.listBills({ accountId: dev, period: '2028-03' }))[0];
      const rerun = must(await b.runBills('2028-03'));
      assert.equal(rerun.created, 0);
      assert.deepEqual((await b.listBills({ accountId: dev, period: '2028-03' }))[0], march, 'a re-run changes no bill');
    });
  });
}
