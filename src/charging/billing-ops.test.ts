/** The operations billing pays and restores through (it never opens the charging store itself). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { openSqliteChargingStore } from '../store/sqlite/charging-store.ts';
import { openSqlite } from '../store/sqlite/db.ts';
import { auditAccount } from './audit.ts';
import type { ChargingStore } from './store.ts';
import { harness } from './test-fixtures.ts';

const stores: Record<string, () => ChargingStore> = {
  memory: () => openMemoryChargingStore(),
  sqlite: () => openSqliteChargingStore(openSqlite(':memory:')),
};

for (const [name, make] of Object.entries(stores)) {
  describe(`billing's charging operations (${name})`, () => {
    test('a wallet debit pays in full with one consume entry, or moves nothing when the wallet is short', async () => {
      const h = harness(make());
      const wallet = async (): Promise<number> =>
        (await h.engine.listBuckets('acct_1')).filter((b) => b.kind === 'wallet').reduce((s, b) => s + b.remaining, 0);
      assert.deepEqual(
        await h.engine.debitWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 1, ref: 'order:ord_0' }),
        { ok: true, value: { paid: false } },
        'no wallet yet',
      );
      assert.ok((await h.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 1000, sourceRef: 'order:top_1' })).ok);
      assert.deepEqual(await h.engine.debitWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 1001, ref: 'order:ord_1' }), {
        ok: true,
        value: { paid: false },
      });
      assert.equal(await wallet(), 1000, 'a refused debit moves nothing');
      assert.deepEqual(await h.engine.debitWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 997, ref: 'order:ord_2' }), {
        ok: true,
        value: { paid: true },
      });
      assert.equal(await wallet(), 3);
      const ledger = (await h.store.listLedger('acct_1')).filter((e) => e.op === 'consume');
      assert.equal(ledger.length, 1);
      assert.match(ledger[0]!.id, /^consume:order:ord_2:/);
      assert.equal(ledger[0]!.amount, 997);
      assert.deepEqual((await auditAccount(h.store, 'acct_1', { nowMs: h.clock.nowMs() })).problems, []);
      assert.equal((await h.engine.debitWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 0, ref: 'x' })).ok, false, 'zero is invalid');
    });

    test('a credit-line restore grows the postpaid line; an account without one is told so', async () => {
      const h = harness(make());
      assert.deepEqual(await h.engine.restoreCreditLine({ accountId: 'acct_1', currency: 'CNY', amountMinor: 50, ref: 'bill:b1' }), {
        ok: true,
        value: { restored: false },
      });
      assert.ok((await h.engine.setAccountPolicy('acct_1', { overage: 'postpaid', creditLimitMinor: 100, currency: 'CNY' })).ok);
      const line = async () => (await h.engine.listBuckets('acct_1')).find((b) => b.kind === 'postpaid_line')!;
      const before = await line();
      assert.deepEqual(await h.engine.restoreCreditLine({ accountId: 'acct_1', currency: 'CNY', amountMinor: 50, ref: 'bill:b1' }), {
        ok: true,
        value: { restored: true },
      });
      assert.equal((await line()).amount, before.amount + 50);
      assert.deepEqual((await auditAccount(h.store, 'acct_1', { nowMs: h.clock.nowMs() })).problems, []);
    });

    test('the account state read shows the policy in force', async () => {
      const h = harness(make());
      assert.equal((await h.engine.accountState('acct_1', null)).policy, null);
      assert.ok((await h.engine.setAccountPolicy('acct_1', { overage: 'wallet' })).ok);
      assert.equal((await h.engine.accountState('acct_1', null)).policy?.overage, 'wallet');
    });
  });
}
