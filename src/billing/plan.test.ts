/**
 * Billing as decide/apply under concurrency (issue 14 item 1): orders for one account run at the same time, with
 * no serial queue and no transaction held open. Each plans on what it read and applies in one transaction; a plan
 * made on stale reads is refused by the store and planned again, so the outcome is one of the serial orders'.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryAccountStore } from '../store/memory/accounts-store.ts';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { createMemoryBillingStore } from '../store/memory/billing-store.ts';
import { openSqlite } from '../store/sqlite/db.ts';
import { openSqliteAccountStore } from '../store/sqlite/accounts-store.ts';
import { openSqliteChargingStore } from '../store/sqlite/charging-store.ts';
import { openSqliteBillingStore } from '../store/sqlite/billing-store.ts';
import { openPostgresAccountStore } from '../store/postgres/accounts-store.ts';
import { openPostgresBillingStore } from '../store/postgres/billing-store.ts';
import { openPostgresChargingStore } from '../store/postgres/charging-store.ts';
import { afterReady, testDbOrSkip, truncateAll } from '../store/postgres/test-support.ts';
import { billingHarness, type BillingHarness, type TestStores } from './test-kit.ts';

const CATALOG = `
version: plan-test
defaults: { channel: wallet }
limits: { topupMax: "1000.00", codesPerBatchMax: 50 }
points: { earnPerYuan: 1, tokensPerPoint: 100, minRedeem: 10, validityDays: 7 }
offers:
  monthly: { name: Monthly, type: plan, price: "10.00", cycle: month, allowance: { tokens: 100000 } }
  pack: { name: Pack, type: pack, price: "2.50", allowance: { tokens: 3000 }, validityDays: 10 }
`;
const actor = 'admin:t';

const kinds: Record<string, () => TestStores> = {
  memory: () => ({ accounts: createMemoryAccountStore(), charging: openMemoryChargingStore(), billing: createMemoryBillingStore() }),
  sqlite: () => {
    const db = openSqlite(':memory:');
    return { accounts: openSqliteAccountStore(db), charging: openSqliteChargingStore(db), billing: openSqliteBillingStore(db) };
  },
};
// PostgreSQL: the orders really run at once (transactions on several pooled connections), one schema for the file.
const pg = await testDbOrSkip({ max: 8 });
if (typeof pg === 'string') test('billing orders at the same time (postgres stores)', { skip: pg }, () => {});
else {
  after(() => pg.drop());
  kinds.postgres = () => {
    const ready = truncateAll(pg.db);
    const charging = openPostgresChargingStore(pg.db);
    return {
      accounts: afterReady(ready, openPostgresAccountStore(pg.db)),
      charging: afterReady(ready, charging),
      billing: afterReady(ready, openPostgresBillingStore(pg.db, { charging })),
    };
  };
}

async function wallet(h: BillingHarness, a: string): Promise<number> {
  return (await h.charging.listBuckets(a)).filter((b) => b.kind === 'wallet').reduce((s, b) => s + b.remaining, 0);
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`billing orders at the same time (${name} stores)`, () => {
    test('five top-ups of one account at once all apply: the ones planned on a stale version plan again', async () => {
      const h = billingHarness(make(), { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      const rs = await Promise.all([1, 2, 3, 4, 5].map((i) => h.billing.topUp({ accountId: a, amountMinor: i * 100, actor, idempotencyKey: `t${i}` })));
      assert.deepEqual(
        rs.map((r) => r.ok),
        [true, true, true, true, true],
      );
      assert.equal(await wallet(h, a), 1500);
      assert.equal((await h.billing.listOrders({ accountId: a })).length, 5);
    });

    test('thirty orders of one account at once all apply: re-planning never runs out under a burst (no 409 storm)', async () => {
      // Attack finding (atk-billing F1): with every order planning at once, each round let one apply and sent the
      // rest to plan again, so past PLAN_ATTEMPTS (8) concurrent orders the rest were refused 409 conflict, and a
      // bill run or carrier answer on that account threw. Orders of one account in one process now take turns.
      const h = billingHarness(make(), { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      const rs = await Promise.all(
        Array.from({ length: 30 }, (_, i) => h.billing.topUp({ accountId: a, amountMinor: 100, actor, idempotencyKey: `burst${i}` })),
      );
      assert.deepEqual(
        rs.map((r) => (r.ok ? 'ok' : r.code)),
        rs.map(() => 'ok'),
      );
      assert.equal(await wallet(h, a), 3000);
      assert.equal((await h.billing.listOrders({ accountId: a })).length, 30);
    });

    test("a read that has nothing to catch up never waits for the account's orders", { timeout: 20_000 }, async () => {
      // The turns of F1 must not put reads behind a burst of orders: GET /self/balance, entitlements and the key
      // snapshot's refresh (every account, one after the other) catch up first, and usually write nothing.
      const stores = make();
      let open!: () => void;
      const gate = new Promise<void>((r) => {
        open = r;
      });
      const slow: TestStores['billing'] = Object.create(stores.billing);
      slow.getIdempotency = async (scope, key) => {
        if (key === 'slow') await gate;
        return stores.billing.getIdempotency(scope, key);
      };
      const h = billingHarness({ ...stores, billing: slow }, { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 400, actor, idempotencyKey: 'w' })).ok);
      const order = h.billing.topUp({ accountId: a, amountMinor: 100, actor, idempotencyKey: 'slow' }); // holds the turn
      let ordered = false;
      void order.then(() => {
        ordered = true;
      });
      // Were the read queued behind the order, it would wait for the gate, which opens only after it: the test's
      // timeout fails it.
      await h.billing.balance(a, null);
      assert.equal(ordered, false, 'the read answered while the order was still planning');
      open();
      assert.ok((await order).ok);
    });

    test('one Idempotency-Key sent at once with ten different bodies: one order applies, the nine others are refused as a reused key', async () => {
      const h = billingHarness(make(), { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      const rs = await Promise.all(
        Array.from({ length: 10 }, (_, i) => h.billing.topUp({ accountId: a, amountMinor: 100 + i, actor, idempotencyKey: 'one-key' })),
      );
      const applied = rs.filter((r) => r.ok && !r.value.replayed);
      assert.equal(applied.length, 1);
      assert.deepEqual(
        rs.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.code)),
        Array(9).fill('idempotency_key_reused'),
      );
      const only = applied[0]!;
      assert.ok(only.ok);
      assert.equal(await wallet(h, a), only.value.value.order.amountMinor);
      assert.equal((await h.billing.listOrders({ accountId: a })).length, 1);
    });

    test('one redemption code redeemed by four accounts at once works once', async () => {
      const h = billingHarness(make(), { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const batch = await h.billing.generateCodes({ offerId: 'pack', count: 1, actor, idempotencyKey: 'codes' });
      assert.ok(batch.ok && batch.value.value.codes !== null);
      const code = batch.value.value.codes[0]!;
      const accounts = await Promise.all([1, 2, 3, 4].map((i) => h.newAccount(`a${i}`)));
      const rs = await Promise.all(accounts.map((a) => h.billing.redeemCode({ accountId: a, code, actor, idempotencyKey: `r-${a}` })));
      assert.deepEqual(rs.map((r) => (r.ok ? 'ok' : r.code)).sort(), ['ok', 'unprocessable', 'unprocessable', 'unprocessable']);
      let subs = 0;
      for (const a of accounts) subs += (await h.billing.listSubscriptions({ accountId: a })).length;
      assert.equal(subs, 1, 'one pack granted');
    });

    test('two orders the wallet can pay only one of: one is paid, the other refused with nothing written', async () => {
      const h = billingHarness(make(), { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 400, actor, idempotencyKey: 'w' })).ok);
      const rs = await Promise.all(['p1', 'p2'].map((k) => h.billing.subscribe({ accountId: a, offerId: 'pack', actor, idempotencyKey: k })));
      assert.deepEqual(rs.map((r) => (r.ok ? 'ok' : r.code)).sort(), ['ok', 'payment_required']);
      assert.equal(await wallet(h, a), 150);
      assert.equal((await h.billing.listSubscriptions({ accountId: a })).length, 1);
      assert.equal((await h.billing.listOrders({ accountId: a })).filter((o) => o.type === 'subscribe').length, 1);
    });

    test('the same Idempotency-Key sent twice at once: one order is made, the other request replays its answer', async () => {
      const h = billingHarness(make(), { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 5000, actor, idempotencyKey: 'w' })).ok);
      const [x, y] = await Promise.all([1, 2].map(() => h.billing.subscribe({ accountId: a, offerId: 'monthly', actor, idempotencyKey: 'same' })));
      assert.ok(x?.ok && y?.ok);
      assert.deepEqual([x.value.replayed, y.value.replayed].sort(), [false, true]);
      assert.equal(x.value.value.order.id, y.value.value.order.id);
      assert.equal((await h.billing.listSubscriptions({ accountId: a })).length, 1);
      assert.equal(await wallet(h, a), 4000);
    });

    test('usage settled while orders are planned and applied is never lost (nothing joins or rolls back with an order)', async () => {
      const h = billingHarness(make(), { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 400, actor, idempotencyKey: 'w' })).ok);
      // Two packs race for a wallet that pays one (one order re-plans and is refused) while requests settle.
      const [orders, uses] = await Promise.all([
        Promise.all(['p1', 'p2'].map((k) => h.billing.subscribe({ accountId: a, offerId: 'pack', actor, idempotencyKey: k }))),
        Promise.all([1, 2, 3, 4].map(() => h.use(a, 100, 50))),
      ]);
      assert.equal(orders.filter((r) => r.ok).length, 1);
      const settled = uses.filter((u) => u.ok);
      assert.equal(settled.length, 4, JSON.stringify(uses));
      const records = await h.charging.listUsage(a, { fromMs: 0, toMs: Date.UTC(2100, 0) });
      assert.equal(records.length, 4, 'every settled request has its usage record');
    });
  });
}

// Two gateway processes on one PostgreSQL: the turns are per process, the version precondition decides between them.
if (typeof pg !== 'string') {
  describe('billing orders of one account on two nodes at once (postgres stores)', () => {
    test('fifteen orders on each of two nodes all apply: between nodes the versions decide, and no order runs out of re-plans', async () => {
      const ready = truncateAll(pg.db);
      const node = (seed: number) => {
        const charging = openPostgresChargingStore(pg.db);
        return billingHarness(
          {
            accounts: afterReady(ready, openPostgresAccountStore(pg.db)),
            charging: afterReady(ready, charging),
            billing: afterReady(ready, openPostgresBillingStore(pg.db, { charging })),
          },
          { startMs: '2027-03-10T00:00:00Z', catalogText: CATALOG, seed },
        );
      };
      const n1 = node(1);
      const n2 = node(2);
      const a = await n1.newAccount();
      const rs = await Promise.all(
        [n1, n2].flatMap((h, k) =>
          Array.from({ length: 15 }, (_, i) => h.billing.topUp({ accountId: a, amountMinor: 100, actor, idempotencyKey: `n${k}-${i}` })),
        ),
      );
      const codes = rs.map((r) => (r.ok ? 'ok' : r.code));
      assert.deepEqual(
        codes,
        rs.map(() => 'ok'),
      );
      assert.equal(await wallet(n1, a), 3000);
    });
  });
}
