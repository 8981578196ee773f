/**
 * Plans decided on a view that moved before they applied (attack review atk-billing). The billing version covers
 * billing rows only: usage settles in the charging store without touching it. Every decision a plan takes from
 * the buckets must therefore be checked again when it applies, or the client gets what it no longer had.
 * The race is made deterministic by running a request's reserve + settle inside the store's apply, just before
 * the plan is applied.
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
import type { BillingStore } from './store.ts';
import { billingHarness, type TestStores } from './test-kit.ts';

const CATALOG = `
version: stale-plan
defaults: { channel: wallet }
limits: { topupMax: "1000.00", codesPerBatchMax: 50 }
points: { earnPerYuan: 0, tokensPerPoint: 100, minRedeem: 10, validityDays: 7 }
offers:
  tokens: { name: Tokens, type: plan, price: "100.00", cycle: month, allowance: { tokens: 100000 } }
  requests: { name: Requests, type: plan, price: "200.00", cycle: month, allowance: { requests: 1000 } }
  small: { name: Small, type: plan, price: "50.00", cycle: month, allowance: { tokens: 50000 } }
  big: { name: Big, type: plan, price: "200.00", cycle: month, allowance: { tokens: 200000 } }
`;
const actor = 'admin:t';

/** A billing store whose next apply first runs `before` (a request settling between planning and applying). */
function raced(store: BillingStore): { store: BillingStore; arm(before: () => Promise<unknown>): void } {
  let pending: (() => Promise<unknown>) | null = null;
  const wrapped: BillingStore = Object.create(store);
  wrapped.apply = async (plan) => {
    const run = pending;
    pending = null;
    if (run !== null) await run();
    return store.apply(plan);
  };
  return {
    store: wrapped,
    arm(before) {
      pending = before;
    },
  };
}

const kinds: Record<string, () => TestStores> = {
  memory: () => ({ accounts: createMemoryAccountStore(), charging: openMemoryChargingStore(), billing: createMemoryBillingStore() }),
  sqlite: () => {
    const db = openSqlite(':memory:');
    return { accounts: openSqliteAccountStore(db), charging: openSqliteChargingStore(db), billing: openSqliteBillingStore(db) };
  },
};
// PostgreSQL: the same races through its apply (one schema for the file, emptied for each test).
const pg = await testDbOrSkip({ max: 4 });
if (typeof pg === 'string') test('plans on a moved view (postgres stores)', { skip: pg }, () => {});
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

for (const [name, make] of Object.entries(kinds)) {
  describe(`plans on a moved view (${name} stores)`, () => {
    test('an upgrade across units credits no allowance that was used between planning and applying', async () => {
      // F2: the credit for the old plan is price x left / allowance with `left` read while planning; the forfeit
      // then takes what is left when the plan applies. 90% of the allowance used in that gap was still credited
      // (90.00 of a 100.00 plan) and used as well.
      const stores = make();
      const r = raced(stores.billing);
      const h = billingHarness({ ...stores, billing: r.store }, { startMs: '2027-03-01T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 50_000, actor, idempotencyKey: 'w' })).ok);
      const sub = await h.billing.subscribe({ accountId: a, offerId: 'tokens', actor, idempotencyKey: 's' });
      assert.ok(sub.ok, JSON.stringify(sub));
      let used = false;
      r.arm(async () => {
        const u = await h.use(a, 45_000, 45_000);
        used = u.ok;
      });
      const ch = await h.billing.changePlan({ subscriptionId: sub.value.value.subscription.id, offerId: 'requests', actor, idempotencyKey: 'up' });
      assert.ok(used, 'the request settled between planning and applying');
      assert.ok(ch.ok, JSON.stringify(ch));
      const creditLine = ch.value.value.order.lines.find((l) => l.amountMinor < 0);
      const credited = -(creditLine?.amountMinor ?? 0);
      // At most 10,000 of the 100,000 tokens were left when the upgrade applied: 10.00 of the 100.00 price.
      assert.ok(credited <= 1_000, `credited ${credited} minor units for an allowance 90% used`);
    });
  });
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`downgrade on a moved view (${name} stores)`, () => {
    test("a downgrade is refused when the cycle's use passed the smaller plan's allowance before the downgrade applied", async () => {
      // F5: the check read the cycle's use while planning; usage settled before the plan applied was not checked
      // again (the downgrade was scheduled past the guard).
      const stores = make();
      const r = raced(stores.billing);
      const h = billingHarness({ ...stores, billing: r.store }, { startMs: '2027-03-01T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 50_000, actor, idempotencyKey: 'w' })).ok);
      const sub = await h.billing.subscribe({ accountId: a, offerId: 'tokens', actor, idempotencyKey: 's' });
      assert.ok(sub.ok);
      r.arm(() => h.use(a, 40_000, 40_000));
      const ch = await h.billing.changePlan({ subscriptionId: sub.value.value.subscription.id, offerId: 'small', actor, idempotencyKey: 'down' });
      assert.ok(!ch.ok && ch.code === 'unprocessable', `80,000 of 100,000 used, the smaller plan allows 50,000: ${JSON.stringify(ch.ok)}`);
    });
  });
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`carrier hand-over run twice at once (${name} stores)`, () => {
    test('two bill runs (or deliveries) at the same time hand each phone-bill payment to the carrier once', async () => {
      // F3: deliverCarrierCharges lists the pending payments, submits them, then records the answers; a second run
      // started before the first recorded its answers submitted the same payments again (two carrier files with
      // the same charge: charged twice on the phone bill).
      const submitted: string[] = [];
      let open!: () => void;
      const gate = new Promise<void>((r) => {
        open = r;
      });
      const stores = make();
      const h = billingHarness(stores, {
        startMs: '2027-03-01T00:00:00Z',
        catalogText: CATALOG,
        carrier: {
          name: 'slow',
          submit: async (cs) => {
            submitted.push(...cs.map((c) => c.paymentId));
            await gate;
            return cs.map((c) => ({ paymentId: c.paymentId, ok: true, reference: 'file', error: null }));
          },
        },
      });
      const a = await h.newAccount();
      assert.ok((await h.billing.subscribe({ accountId: a, offerId: 'tokens', channel: 'phone_bill', actor, idempotencyKey: 's' })).ok);
      h.clock.set('2027-04-01T00:00:01Z');
      const first = h.billing.runBills('2027-03');
      const second = h.billing.runBills('2027-03');
      // Let both runs reach the carrier before it answers.
      for (let i = 0; i < 200 && submitted.length < 2; i++) await new Promise((r) => setImmediate(r));
      open();
      const [x, y] = await Promise.all([first, second]);
      assert.ok(x.ok && y.ok, JSON.stringify([x, y]));
      assert.ok(submitted.length >= 1);
      assert.deepEqual(submitted, [...new Set(submitted)], `payments submitted more than once: ${submitted.join(', ')}`);
    });
  });
}

/** A billing store on which every plan of `busy` conflicts: another node keeps winning that account. */
function contended(store: BillingStore, busy: () => string): BillingStore {
  const wrapped: BillingStore = Object.create(store);
  wrapped.apply = async (plan) =>
    plan.expect.some((e) => e.accountId === busy()) ? { ok: false, conflict: 'version', detail: `account ${busy()} changed (test)` } : store.apply(plan);
  return wrapped;
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`re-plans running out (${name} stores)`, () => {
    test('an account that keeps changing answers 409 conflict on orders and reads, and never stops the bill run of the others', async () => {
      // F4: runPlan's conflict after PLAN_ATTEMPTS was thrown as a plain Error by reads that catch up first (a
      // balance read answered 500) and by the bill run, which then stopped for every account after the busy one.
      let busy = '';
      const stores = make();
      const h = billingHarness({ ...stores, billing: contended(stores.billing, () => busy) }, { startMs: '2027-03-01T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount('busy');
      const b = await h.newAccount('calm');
      for (const x of [a, b]) {
        assert.ok((await h.billing.topUp({ accountId: x, amountMinor: 50_000, actor, idempotencyKey: `w${x}` })).ok);
        assert.ok((await h.billing.subscribe({ accountId: x, offerId: 'tokens', actor, idempotencyKey: `s${x}` })).ok);
      }
      busy = a;
      h.clock.set('2027-04-01T00:00:01Z'); // a renewal is due: reads catch up first
      const order = await h.billing.topUp({ accountId: a, amountMinor: 100, actor, idempotencyKey: 'late' });
      assert.ok(!order.ok && order.code === 'conflict', JSON.stringify(order));
      await assert.rejects(h.billing.balance(a, null), (e: unknown) => (e as { code?: string }).code === 'conflict');
      // Accounts are listed in creation order: the busy one comes first.
      const run = await h.billing.runBills('2027-03');
      assert.ok(run.ok, JSON.stringify(run));
      assert.equal(run.value.created, 1, 'the calm account is billed');
      assert.deepEqual(
        run.value.failures.map((f) => f.accountId),
        [a],
      );
      assert.equal((await h.billing.listBills({ accountId: b, period: '2027-03' })).length, 1);
    });
  });
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`orders on a suspended account (${name} stores)`, () => {
    test('a plan change on a suspended account is refused like every other order, with nothing written', async () => {
      // F6: subscribe, add-ons, top-ups, codes and points refuse an account that is not active; changePlan did not
      // check, so a suspended (or closed) account could still be upgraded, paid from its wallet.
      const h = billingHarness(make(), { startMs: '2027-03-01T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 50_000, actor, idempotencyKey: 'w' })).ok);
      const sub = await h.billing.subscribe({ accountId: a, offerId: 'tokens', actor, idempotencyKey: 's' });
      assert.ok(sub.ok);
      const acc = (await h.accounts.store.getAccount(a))!;
      await h.accounts.store.updateAccount({ ...acc, status: 'suspended' });
      const before = (await h.billing.listOrders({ accountId: a })).length;
      const ch = await h.billing.changePlan({ subscriptionId: sub.value.value.subscription.id, offerId: 'requests', actor, idempotencyKey: 'up' });
      assert.ok(!ch.ok && ch.code === 'unprocessable', JSON.stringify(ch));
      assert.equal((await h.billing.listOrders({ accountId: a })).length, before);
    });
  });
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`a plan that crosses a cycle boundary while it plans (${name} stores)`, () => {
    test('an upgrade planned as the cycle ends pays the next cycle once: one clock reading per plan', async () => {
      // F8: a plan read the clock many times. The catch-up ran at 23:59:59 (no renewal due), the upgrade then read
      // 00:00:00.5 of the next cycle: it credited the old plan for a cycle never paid and charged the new plan for
      // it, and the renewal made afterwards charged the new plan for that cycle again.
      const stores = make();
      const h0 = { clock: null as null | { set(v: string): void } };
      let calls = -1;
      const ticking: BillingStore = Object.create(stores.billing);
      ticking.getSubscription = async (id) => {
        if (calls >= 0 && ++calls === 2) h0.clock?.set('2027-04-01T00:00:00.500Z'); // time passes while it plans
        return stores.billing.getSubscription(id);
      };
      const h = billingHarness({ ...stores, billing: ticking }, { startMs: '2027-03-01T00:00:00Z', catalogText: CATALOG });
      h0.clock = h.clock;
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 100_000, actor, idempotencyKey: 'w' })).ok);
      const sub = await h.billing.subscribe({ accountId: a, offerId: 'tokens', actor, idempotencyKey: 's' });
      assert.ok(sub.ok);
      h.clock.set('2027-03-31T23:59:59.000Z');
      calls = 0;
      const ch = await h.billing.changePlan({ subscriptionId: sub.value.value.subscription.id, offerId: 'big', actor, idempotencyKey: 'up' });
      assert.ok(ch.ok, JSON.stringify(ch));
      calls = -1;
      h.clock.set('2027-04-02T00:00:00Z');
      await h.billing.balance(a, null); // catches up
      const april = Date.UTC(2027, 3, 1);
      const orders = (await h.billing.listOrders({ accountId: a })).filter((o) => o.type !== 'topup');
      const paidForApril = orders
        .flatMap((o) => o.lines.map((l) => ({ o, l })))
        .filter(({ o, l }) => (o.type === 'renew' ? o.effectiveAtMs >= april : o.type === 'upgrade' && l.description.includes('2027-04-')))
        .reduce((sum, { l }) => sum + l.amountMinor, 0);
      // The upgrade is either in March's last second (renewal of Big for April: 200.00) or April's first (renewal of
      // Tokens 100.00, then the upgrade's difference for almost all of April: 100.00 and a cent): never 300.00.
      assert.ok(paidForApril <= 20_001, `April paid ${paidForApril} minor units: ${JSON.stringify(orders.map((o) => [o.type, o.amountMinor]))}`);
    });
  });
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`a full refund racing a request (${name} stores)`, () => {
    test("the refund order's allowanceForfeited is what the ledger forfeited", {
      todo: 'F7 (low): the refund order records the leftover the plan saw; the forfeit takes the leftover when it applies (lenient on purpose, so a refund never fails for requests in flight), so usage settled in between makes the record overstate the ledger by that usage. Money is right; the record is not.',
    }, async () => {
      const stores = make();
      const r = raced(stores.billing);
      const h = billingHarness({ ...stores, billing: r.store }, { startMs: '2027-03-01T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 50_000, actor, idempotencyKey: 'w' })).ok);
      const sub = await h.billing.subscribe({ accountId: a, offerId: 'tokens', actor, idempotencyKey: 's' });
      assert.ok(sub.ok);
      r.arm(() => h.use(a, 15_000, 15_000));
      const rf = await h.billing.refund({ orderId: sub.value.value.order.id, reason: 'test', actor, idempotencyKey: 'rf' });
      assert.ok(rf.ok, JSON.stringify(rf));
      const left = (await h.charging.listBuckets(a)).filter((b) => b.sourceRef.startsWith(`sub:${sub.value.value.subscription.id}:`));
      const forfeited = left.reduce((s, b) => s + b.forfeited, 0);
      assert.equal(rf.value.value.details.allowanceForfeited, forfeited);
    });
  });
}

for (const [name, make] of Object.entries(kinds)) {
  describe(`renewals of a closed account (${name} stores)`, () => {
    test('a closed account is not charged for new cycles: its subscriptions end with the running cycle', async () => {
      // F9: closing an account (PATCH /admin/accounts/:id, status closed; enterprise admins may) ended none of its
      // subscriptions: catch-ups renewed them every cycle, from the wallet or on the phone bill (to the carrier).
      const h = billingHarness(make(), { startMs: '2027-03-01T00:00:00Z', catalogText: CATALOG });
      const a = await h.newAccount();
      assert.ok((await h.billing.subscribe({ accountId: a, offerId: 'tokens', channel: 'phone_bill', actor, idempotencyKey: 's' })).ok);
      const acc = (await h.accounts.store.getAccount(a))!;
      await h.accounts.store.updateAccount({ ...acc, status: 'closed' });
      h.clock.set('2027-06-02T00:00:00Z');
      await h.billing.renewDue();
      const renewals = (await h.billing.listOrders({ accountId: a })).filter((o) => o.type === 'renew');
      assert.deepEqual(
        renewals.map((o) => [o.paidBy, o.amountMinor]),
        [],
      );
      const sub = (await h.billing.listSubscriptions({ accountId: a }))[0]!;
      assert.equal(sub.status, 'canceled');
      assert.equal(sub.endedAtMs, Date.UTC(2027, 3, 1), 'ends when the cycle running at the closing ended');
      // (The charging engine mints the schedule's cycles before billing catches up; a closed account's keys use none.)
    });
  });
}
