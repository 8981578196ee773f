/**
 * Issue 12, finding 8, in the engine: a bucket already holding the reference of a cycle that is due (data written
 * before client references were namespaced) never makes the renewal fail: the cycle gets a unique reference, the
 * account keeps working, and the ledger stays consistent. '#' is refused in references a caller chooses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { auditAccount } from './audit.ts';
import { harness, reserveInput, settleInput, usage, DAY_MS, T0 } from './test-fixtures.ts';

test('a cycle whose reference is already taken is created under a unique one; requests go on', async () => {
  const h = harness(openMemoryChargingStore());
  const s = await h.engine.createAllowanceSchedule({
    accountId: 'acct_1',
    unit: 'tokens',
    amountPerCycle: 1_000,
    anchorMs: T0,
    cycle: 'day',
    sourceRef: 'plan_1',
  });
  assert.ok(s.ok);
  // Legacy data: a bucket with the next cycle's reference, written straight to the store (the API refuses '#').
  await h.store.createBucket(
    {
      id: 'bkt_legacy',
      accountId: 'acct_1',
      memberId: null,
      unit: 'tokens',
      currency: null,
      kind: 'manual',
      amount: 0,
      consumed: 0,
      held: 0,
      forfeited: 0,
      floor: 0,
      effectiveAtMs: T0,
      expiresAtMs: null,
      priority: 60,
      models: null,
      rollover: false,
      sourceRef: 'plan_1#1',
      scheduleId: null,
      cycleIndex: null,
      createdAtMs: T0,
    },
    [],
  );
  const refused = await h.engine.grantBucket({
    accountId: 'acct_1',
    unit: 'tokens',
    amount: 5,
    effectiveAtMs: T0,
    expiresAtMs: null,
    kind: 'manual',
    sourceRef: 'plan_1#2',
  });
  assert.ok(!refused.ok);
  assert.match(refused.message, /reserved for allowance cycles/);

  h.clock.set(T0 + DAY_MS + 1);
  const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 10, tokensOutputMax: 20 }));
  assert.ok(r.ok, r.ok ? '' : r.message);
  await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(10, 20)));
  const cycle1 = (await h.engine.listBuckets('acct_1')).find((b) => b.sourceRef.startsWith('plan_1#1~'));
  assert.ok(cycle1, 'the cycle was created under a unique reference');
  assert.equal(cycle1.used, 30);
  assert.deepEqual((await auditAccount(h.store, 'acct_1', { nowMs: h.clock.nowMs() })).problems, []);
  assert.deepEqual(await h.engine.renewDueReport(), { created: 0, failures: [] });
});
