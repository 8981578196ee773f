import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryAccountStore } from '../store/memory/accounts-store.ts';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { createMemoryBillingStore } from '../store/memory/billing-store.ts';
import { parseOfferCatalog } from './offers.ts';
import { billingHarness } from './test-kit.ts';

const CATALOG = `
version: residency-test
defaults: { channel: wallet }
offers:
  east: { name: East, type: plan, price: "10.00", cycle: month, allowance: { tokens: 1000 }, regions: [cn-east, cn-north] }
  anywhere: { name: Anywhere, type: plan, price: "10.00", cycle: month, allowance: { tokens: 1000 } }
  north-payg: { name: North PAYG, type: payg, payg: { tokensPerYuan: 1000 }, overage: wallet, regions: [cn-north] }
  boost: { name: Boost, type: addon, renews: true, feature: speed, qos: priority, price: "3.00" }
`;

const actor = 'admin:test';
const must = <T>(r: { ok: true; value: { value: T } } | { ok: false; code: string; message: string }): T => {
  if (!r.ok) assert.fail(`${r.code}: ${r.message}`);
  return r.value.value;
};

describe('residency in the entitlements', () => {
  test('plans and payg offers may carry regions; an empty list or regions on an add-on are refused', () => {
    assert.equal(parseOfferCatalog(CATALOG).ok, true);
    assert.equal(parseOfferCatalog(CATALOG.replace('regions: [cn-north]', 'regions: []')).ok, false);
    const onAddon = parseOfferCatalog(CATALOG.replace('qos: priority, price: "3.00"', 'qos: priority, price: "3.00", regions: [sg]'));
    assert.equal(onAddon.ok, false);
    assert.match(JSON.stringify(onAddon), /only plans and pay-as-you-go offers pin regions/);
  });

  test("no pin without an offer that sets one; a plan's regions pin the account; with a payg pin too, their intersection", async () => {
    const h = billingHarness(
      { accounts: createMemoryAccountStore(), charging: openMemoryChargingStore(), billing: createMemoryBillingStore() },
      { startMs: '2026-03-01T00:00:00Z', catalogText: CATALOG },
    );
    const free = await h.newAccount('Free', 'individual');
    must(await h.billing.topUp({ accountId: free, amountMinor: 100_00, actor, idempotencyKey: 'f0' }));
    must(await h.billing.subscribe({ accountId: free, offerId: 'anywhere', actor, idempotencyKey: 'f1' }));
    assert.equal((await h.billing.entitlements(free)).regions, null);

    const a = await h.newAccount('Pinned', 'individual');
    must(await h.billing.topUp({ accountId: a, amountMinor: 100_00, actor, idempotencyKey: 'p0' }));
    must(await h.billing.subscribe({ accountId: a, offerId: 'east', actor, idempotencyKey: 'p1' }));
    assert.deepEqual((await h.billing.entitlements(a)).regions, ['cn-east', 'cn-north']);
    must(await h.billing.buyAddon({ accountId: a, offerId: 'boost', actor, idempotencyKey: 'p2' }));
    const withBoost = await h.billing.entitlements(a);
    assert.deepEqual(withBoost.regions, ['cn-east', 'cn-north']);
    assert.equal(withBoost.qos, 'priority');
    must(await h.billing.subscribe({ accountId: a, offerId: 'north-payg', actor, idempotencyKey: 'p3' }));
    assert.deepEqual((await h.billing.entitlements(a)).regions, ['cn-north']);
  });
});
