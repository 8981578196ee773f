import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { auditAccount } from './audit.ts';
import { harness, reserveInput, settleInput, usage, DAY_MS, T0, type Harness } from './test-fixtures.ts';

const FEB1 = Date.UTC(2026, 1, 1);
const MAR1 = Date.UTC(2026, 2, 1);

async function monthly(amount = 1000, rollover = false, startMs = T0): Promise<Harness> {
  const h = harness(openMemoryChargingStore(), {}, startMs);
  const s = await h.engine.createAllowanceSchedule({
    accountId: 'acct_1',
    unit: 'tokens',
    amountPerCycle: amount,
    anchorMs: T0,
    cycle: 'month',
    sourceRef: 'sub_1',
    rollover,
  });
  assert.ok(s.ok);
  return h;
}
async function clean(h: Harness): Promise<void> {
  assert.deepEqual((await auditAccount(h.store, 'acct_1')).problems, []);
}
const cycles = async (h: Harness) =>
  (await h.store.listBuckets('acct_1')).filter((b) => b.scheduleId !== null).map((b) => [b.cycleIndex, b.amount, b.consumed, b.forfeited]);

describe('allowance schedules', () => {
  test("creating a schedule creates the running cycle's bucket, valid until the next cycle start", async () => {
    const h = await monthly();
    const [b] = await h.engine.listBuckets('acct_1');
    assert.deepEqual([b!.amount, b!.effectiveAtMs, b!.expiresAtMs, b!.kind], [1000, T0, FEB1, 'plan_allowance']);
  });

  test('a schedule created mid-way starts with the running cycle, not the ones it never had', async () => {
    const h = harness(openMemoryChargingStore(), {}, Date.UTC(2026, 4, 10));
    await h.engine.createAllowanceSchedule({ accountId: 'acct_1', unit: 'tokens', amountPerCycle: 10, anchorMs: T0, cycle: 'month', sourceRef: 's' });
    assert.deepEqual(await cycles(h), [[4, 10, 0, 0]]);
  });

  test('renewal is lazy: the first reserve after the boundary creates the new cycle bucket in the same step', async () => {
    const h = await monthly();
    h.clock.set(FEB1);
    const r = await h.engine.reserve(reserveInput('r1'));
    assert.ok(r.ok);
    assert.deepEqual(
      await cycles(h),
      [
        [0, 1000, 0, 1000],
        [1, 1000, 0, 0],
      ],
      'January cleared, February created',
    );
    assert.equal((await h.engine.listBuckets('acct_1')).find((b) => !b.expired)!.reserved, 200);
  });

  test('cycles skipped while the server was down are each created exactly once; their leftovers are never usable', async () => {
    const h = await monthly(1000);
    h.clock.set(Date.UTC(2026, 3, 15)); // down from Jan to mid-April: Feb, Mar, Apr due
    assert.equal(await h.engine.renewDue(), 3);
    assert.equal(await h.engine.renewDue(), 0, 'idempotent');
    await h.engine.sweepExpired();
    assert.deepEqual(await cycles(h), [
      [0, 1000, 0, 1000],
      [1, 1000, 0, 1000],
      [2, 1000, 0, 1000],
      [3, 1000, 0, 0],
    ]);
    const r = await h.engine.reserve(reserveInput('r1', { tokensInputEstimate: 900, tokensOutputMax: 1000 }));
    assert.ok(r.ok);
    assert.equal(r.value.tokensOutputGranted, 100, 'only the running cycle pays');
    await clean(h);
  });

  test('lazy renewal and the timer racing create each cycle once', async () => {
    const h = await monthly();
    h.clock.set(MAR1 + 5);
    await Promise.all([h.engine.renewDue(), h.engine.reserve(reserveInput('r1')), h.engine.renewDue()]);
    assert.deepEqual(
      (await cycles(h)).map((c) => c[0]),
      [0, 1, 2],
    );
  });

  test('unused allowance is cleared at cycle end by default (booked as breakage)', async () => {
    const h = await monthly(1000);
    const r = await h.engine.reserve(reserveInput('r1'));
    assert.ok(r.ok);
    await h.engine.settle(settleInput(r.value.reservationId, 'r1', usage(100, 100)));
    h.clock.set(FEB1);
    await h.engine.sweepExpired();
    assert.deepEqual(await cycles(h), [
      [0, 1000, 200, 800],
      [1, 1000, 0, 0],
    ]);
    assert.ok((await h.store.listLedger('acct_1')).some((e) => e.op === 'forfeit' && e.credit === 'house:breakage' && e.amount === 800));
    await clean(h);
  });

  test("rollover carries last cycle's unused amount for one cycle only", async () => {
    const h = await monthly(1000, true);
    const r = await h.engine.reserve(reserveInput('r1'));
    assert.ok(r.ok);
    await h.engine.settle(settleInput(r.value.reservationId, 'r1', usage(100, 100)));
    h.clock.set(FEB1);
    await h.engine.renewDue();
    const feb = (await h.engine.listBuckets('acct_1')).filter((b) => !b.expired);
    assert.deepEqual(
      feb.map((b) => [b.amount, b.sourceRef]),
      [
        [1000, 'sub_1#1'],
        [800, 'sub_1#1:rollover'],
      ],
    );
    h.clock.set(MAR1);
    await h.engine.sweepExpired();
    const mar = (await h.engine.listBuckets('acct_1')).filter((b) => !b.expired);
    assert.deepEqual(
      mar.map((b) => [b.amount, b.sourceRef]),
      [
        [1000, 'sub_1#2'],
        [1000, 'sub_1#2:rollover'],
      ],
      'the rollover itself does not roll',
    );
    await clean(h);
  });

  test('a request spanning the cycle end is charged to the cycle it reserved; its unused hold is forfeited, not renewed', async () => {
    const h = await monthly(1000);
    h.clock.set(FEB1 - 1000);
    const r = await h.engine.reserve(reserveInput('r1', { tokensInputEstimate: 100, tokensOutputMax: 400 }));
    assert.ok(r.ok);
    h.clock.set(FEB1 + 1000);
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'r1', usage(100, 100)));
    const [jan, feb] = (await h.store.listBuckets('acct_1')).sort((a, b) => a.effectiveAtMs - b.effectiveAtMs);
    assert.deepEqual(
      cdr.charges.map((c) => c.bucketId),
      [jan!.id],
    );
    assert.deepEqual([jan!.consumed, jan!.held, jan!.forfeited], [200, 0, 800]);
    assert.deepEqual([feb!.consumed, feb!.held], [0, 0]);
    assert.equal(cdr.startedAtMs, FEB1 - 1000);
    await clean(h);
  });

  test('an ended schedule creates no cycle at or after its end', async () => {
    const h = await monthly();
    const sched = (await h.store.listBuckets('acct_1'))[0]!.scheduleId!;
    await h.engine.endSchedule(sched, FEB1);
    h.clock.set(MAR1 + 1);
    assert.equal(await h.engine.renewDue(), 0);
    const r = await h.engine.reserve(reserveInput('r1'));
    assert.equal(!r.ok && r.code, 'insufficient_quota');
    assert.match(!r.ok ? r.message : '', /^This account has no package or balance that pays for the model ref; /);
  });

  test('daily cycles renew every day', async () => {
    const h = harness(openMemoryChargingStore());
    await h.engine.createAllowanceSchedule({ accountId: 'acct_1', unit: 'requests', amountPerCycle: 5, anchorMs: T0, cycle: 'day', sourceRef: 'd' });
    h.clock.set(T0 + 2 * DAY_MS + 5);
    await h.engine.renewDue();
    assert.deepEqual(
      (await cycles(h)).map((c) => c[0]),
      [0, 1, 2],
    );
  });

  test('grants and schedules are idempotent by sourceRef; a different payload with the same ref is a conflict', async () => {
    const h = harness(openMemoryChargingStore());
    const g = { accountId: 'acct_1', unit: 'tokens' as const, amount: 10, effectiveAtMs: T0, expiresAtMs: null, kind: 'code' as const, sourceRef: 'code_X' };
    const a = await h.engine.grantBucket(g);
    const b = await h.engine.grantBucket(g);
    assert.ok(a.ok && b.ok && a.value.id === b.value.id);
    const c = await h.engine.grantBucket({ ...g, amount: 99 });
    assert.equal(!c.ok && c.code, 'conflict');
    const w1 = await h.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 100, sourceRef: 'pay_1' });
    const w2 = await h.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 100, sourceRef: 'pay_1' });
    assert.ok(w1.ok && w2.ok && w2.value.amount === 100);
    const bad = await h.engine.grantBucket({ ...g, sourceRef: 'y', unit: 'money' });
    assert.equal(!bad.ok && bad.code, 'invalid');
  });
});

describe('expiry sweep', () => {
  test('an abandoned reservation is released after its time limit plus grace, never before', async () => {
    const h = harness(openMemoryChargingStore(), { reservationTtlMs: 60_000, reservationGraceMs: 10_000 });
    await h.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p' });
    const r = await h.engine.reserve(reserveInput('r1'));
    assert.ok(r.ok);
    h.clock.advance(70_000);
    assert.equal(await h.engine.sweepExpired(), 0);
    h.clock.advance(1);
    assert.equal(await h.engine.sweepExpired(), 1);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 0);
    assert.equal((await h.store.getReservation(r.value.reservationId))?.state, 'expired');
    // A late settle still records the usage and charges what is available now.
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'r1', usage(50, 50)));
    assert.equal(cdr.charges[0]!.amount, 100);
    assert.deepEqual((await auditAccount(h.store, 'acct_1')).problems, []);
  });
});
