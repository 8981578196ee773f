import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryAccountStore } from '../store/memory/accounts-store.ts';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { createMemoryBillingStore } from '../store/memory/billing-store.ts';
import { billingHarness } from './test-kit.ts';

const CATALOG = `
version: terms-test
defaults: { channel: wallet }
limits: { topupMax: "1000.00", codesPerBatchMax: 50 }
points: { earnPerYuan: 0, tokensPerPoint: 100, minRedeem: 10, validityDays: 7 }
offers:
  basic: { name: Basic, type: plan, price: "10.00", cycle: month, allowance: { tokens: 1000 } }
  pro: { name: Pro, type: plan, price: "30.00", cycle: month, allowance: { tokens: 5000 } }
`;

// Found by billing.prop.test.ts: the upgrade's schedule waits for the next (clamped) cycle start; a downgrade in
// the same cycle must cancel it, or the next cycle grants both plans' allowances.
test('upgrade then downgrade in one cycle on a clamped anchor: the next cycle grants only the new plan', async () => {
  const h = billingHarness(
    { accounts: createMemoryAccountStore(), charging: openMemoryChargingStore(), billing: createMemoryBillingStore() },
    { startMs: '2027-01-29T09:30:00Z', catalogText: CATALOG },
  );
  const a = await h.newAccount();
  const actor = 'admin:t';
  assert.ok((await h.billing.topUp({ accountId: a, amountMinor: 100_00, actor, idempotencyKey: 't' })).ok);
  const sub = await h.billing.subscribe({ accountId: a, offerId: 'basic', actor, idempotencyKey: 's' });
  assert.ok(sub.ok);
  const id = sub.value.value.subscription.id;
  h.clock.set('2027-01-30T12:00:00Z');
  assert.ok((await h.billing.changePlan({ subscriptionId: id, offerId: 'pro', actor, idempotencyKey: 'up' })).ok);
  assert.ok((await h.billing.changePlan({ subscriptionId: id, offerId: 'basic', actor, idempotencyKey: 'down' })).ok);
  h.clock.set('2027-03-01T00:00:00Z'); // cycle 1 started on Feb 28 (Jan 29 clamped)
  await h.billing.renewDue();
  await h.billing.catchUp(a);
  const next = (await h.charging.listBuckets(a)).filter((b) => b.sourceRef.startsWith(`sub:${id}:`) && b.effectiveAtMs === Date.parse('2027-02-28T09:30:00Z'));
  assert.deepEqual(
    next.map((b) => b.amount),
    [1000],
    'one allowance for cycle 1: Basic',
  );
});
