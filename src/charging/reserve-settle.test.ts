import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { auditAccount } from './audit.ts';
import { harness, reserveInput, sampleRates, settleInput, usage, DAY_MS, T0, type Harness } from './test-fixtures.ts';

async function setup(amount = 10_000): Promise<Harness> {
  const h = harness(openMemoryChargingStore());
  await h.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'pack_1' });
  return h;
}
async function clean(h: Harness, accountId = 'acct_1'): Promise<void> {
  assert.deepEqual((await auditAccount(h.store, accountId)).problems, []);
}

describe('reserve and settle', () => {
  test('reserve holds input estimate + output max; settle charges the actual usage and releases the rest', async () => {
    const h = await setup();
    const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 100, tokensOutputMax: 400 }));
    assert.ok(r.ok);
    assert.equal(r.value.tokensOutputGranted, 400);
    assert.equal(r.value.rateVersion, 'v1');
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 500);
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(90, 120)));
    assert.deepEqual(
      cdr.charges.map((c) => c.amount),
      [210],
    );
    const [bal] = await h.engine.listBuckets('acct_1');
    assert.deepEqual([bal!.used, bal!.reserved, bal!.remaining], [210, 0, 9790]);
    await clean(h);
  });

  test('a charge ratio (a response-cache hit) charges that fraction of the rated cost, rounded up, and releases the rest', async () => {
    const h = await setup();
    const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 100, tokensOutputMax: 400 }));
    assert.ok(r.ok);
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(90, 121), { chargeRatio: { num: 1, den: 10 } }));
    assert.deepEqual([cdr.costCoins, cdr.charges.map((c) => c.amount)], [22, [22]]); // 211 / 10 = 21.1 -> 22
    const [bal] = await h.engine.listBuckets('acct_1');
    assert.deepEqual([bal!.used, bal!.reserved], [22, 0]);
    assert.deepEqual(cdr.usage, usage(90, 121), 'the usage record keeps the tokens delivered');
    await clean(h);
  });

  test('settle is idempotent by request id: a repeat returns the same record and charges nothing', async () => {
    const h = await setup();
    const r = await h.engine.reserve(reserveInput('req_1'));
    assert.ok(r.ok);
    const a = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(100, 50)));
    const b = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(999, 999)));
    assert.deepEqual(b, a);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.used, 150);
    await clean(h);
  });

  test('a retried request id never charges twice: open -> same hold, closed -> duplicate_request', async () => {
    const h = await setup();
    const r1 = await h.engine.reserve(reserveInput('req_1'));
    const r2 = await h.engine.reserve(reserveInput('req_1'));
    assert.ok(r1.ok && r2.ok);
    assert.equal(r2.value.reservationId, r1.value.reservationId);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 200, 'held once');
    await h.engine.settle(settleInput(r1.value.reservationId, 'req_1', usage(10, 10)));
    const r3 = await h.engine.reserve(reserveInput('req_1'));
    assert.equal(!r3.ok && r3.code, 'duplicate_request');
    await clean(h);
  });

  test('a request id reused for a different request is refused, the first hold untouched', async () => {
    const h = await setup();
    const r1 = await h.engine.reserve(reserveInput('req_1'));
    assert.ok(r1.ok);
    const other = await h.engine.reserve(reserveInput('req_1', { model: 'pricey' }));
    assert.equal(!other.ok && other.code, 'duplicate_request');
    assert.match(!other.ok ? other.message : '', /different request/);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 200);
  });

  test('a model with no rate is model_not_priced (fail closed), nothing is held', async () => {
    const h = await setup();
    const r = await h.engine.reserve(reserveInput('req_1', { model: 'mystery' }));
    assert.equal(!r.ok && r.code, 'model_not_priced');
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 0);
  });

  test('non-stream: when the full output is not affordable the largest affordable output is granted', async () => {
    const h = await setup(1000);
    const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 300, tokensOutputMax: 4000 }));
    assert.ok(r.ok);
    assert.equal(r.value.tokensOutputGranted, 700);
    assert.equal(r.value.final, true);
    const pricey = await h.engine.reserve(reserveInput('req_2', { model: 'pricey', tokensInputEstimate: 0, tokensOutputMax: 4000 }));
    assert.equal(!pricey.ok && pricey.code, 'insufficient_quota', 'nothing left for even the minimum grant');
  });

  test('below the minimum output grant the request is refused with insufficient_quota', async () => {
    const h = await setup(110);
    const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 100, tokensOutputMax: 1000 }));
    assert.equal(!r.ok && r.code, 'insufficient_quota');
  });

  test('insufficient_quota names the bucket that ran out and when it renews', async () => {
    const h = harness(openMemoryChargingStore());
    await h.engine.createAllowanceSchedule({ accountId: 'acct_1', unit: 'tokens', amountPerCycle: 150, anchorMs: T0, cycle: 'month', sourceRef: 'sub_1' });
    const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 100, tokensOutputMax: 100 }));
    assert.ok(r.ok);
    await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(100, 50)));
    const denied = await h.engine.reserve(reserveInput('req_2', { tokensInputEstimate: 100, tokensOutputMax: 100 }));
    assert.ok(!denied.ok);
    assert.equal(denied.code, 'insufficient_quota');
    const [bucket] = await h.engine.listBuckets('acct_1');
    // Plain words (issue 13, item 4): what ran out, when it renews, what continues now; no ids, no coin jargon.
    assert.match(denied.message, /^Your 150-token monthly package is used up; it renews on 1 Feb; an add-on/);
    assert.doesNotMatch(denied.message, new RegExp(bucket!.id));
    assert.doesNotMatch(denied.message, /coin|minor unit/);
    assert.equal(denied.details?.bucketId, bucket!.id, 'the id stays in the machine-readable details');
    assert.equal(denied.details?.renewsAtMs, Date.UTC(2026, 1, 1));
  });

  test('worked example: trial, then plan, then booster in one hold; the wallet only after them', async () => {
    const h = harness(openMemoryChargingStore());
    const g = (kind: 'trial' | 'plan_allowance' | 'addon', amount: number, days: number | null, ref: string) =>
      h.engine.grantBucket({
        accountId: 'acct_1',
        unit: 'tokens',
        amount,
        effectiveAtMs: T0,
        expiresAtMs: days === null ? null : T0 + days * DAY_MS,
        kind,
        sourceRef: ref,
      });
    await g('trial', 300, 30, 't');
    await g('plan_allowance', 150, 31, 'p');
    await g('addon', 50, 90, 'b');
    await h.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 100, sourceRef: 'pay_1' });
    const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 400, tokensOutputMax: 80 }));
    assert.ok(r.ok);
    const held = (await h.engine.listBuckets('acct_1')).map((b) => [b.kind, b.reserved]);
    assert.deepEqual(held, [
      ['trial', 300],
      ['plan_allowance', 150],
      ['addon', 30],
      ['wallet', 0],
    ]);
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(400, 80)));
    assert.deepEqual(
      cdr.charges.map((c) => [c.kind, c.amount]),
      [
        ['trial', 300],
        ['plan_allowance', 150],
        ['addon', 30],
      ],
    );
    const r2 = await h.engine.reserve(reserveInput('req_2', { tokensInputEstimate: 10, tokensOutputMax: 30 }));
    assert.ok(r2.ok);
    const cdr2 = await h.engine.settle(settleInput(r2.value.reservationId, 'req_2', usage(10, 30)));
    assert.deepEqual(
      cdr2.charges.map((c) => [c.kind, c.unit, c.amount]),
      [
        ['addon', 'tokens', 20],
        ['wallet', 'money', 1],
      ],
    );
    await clean(h);
  });

  test("settle rates with the reservation's rate version even after the table changed", async () => {
    const h = await setup();
    const r = await h.engine.reserve(reserveInput('req_1'));
    assert.ok(r.ok);
    const next = sampleRates('v2');
    next.models.ref!.coinsPerTokenInput = { num: 100, den: 1 };
    h.rates.current = next;
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(10, 10)));
    assert.deepEqual([cdr.rateVersion, cdr.costCoins], ['v1', 20]);
  });

  test('usage beyond the hold is charged to eligible buckets; what nobody can pay is leak, never an overspend', async () => {
    const h = await setup(300);
    const r = await h.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 50, tokensOutputMax: 50 }));
    assert.ok(r.ok);
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(200, 300)));
    assert.equal(cdr.costCoins, 500);
    assert.deepEqual(
      cdr.charges.map((c) => c.amount),
      [300],
    );
    assert.equal(cdr.leakCoins, 200);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.remaining, 0);
    await clean(h);
  });

  test('void releases everything and writes no usage record; void is idempotent', async () => {
    const h = await setup();
    const r = await h.engine.reserve(reserveInput('req_1'));
    assert.ok(r.ok);
    await h.engine.void(r.value.reservationId);
    await h.engine.void(r.value.reservationId);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.reserved, 0);
    assert.equal(await h.engine.getUsageRecord('req_1'), null);
    assert.equal((await h.store.getReservation(r.value.reservationId))?.state, 'voided');
    await clean(h);
  });

  test('the usage record carries the CDR fields the issue lists', async () => {
    const h = await setup();
    const r = await h.engine.reserve(reserveInput('req_1', { memberId: 'mem_1' }));
    assert.ok(r.ok);
    h.clock.advance(1234);
    const cdr = await h.engine.settle(
      settleInput(r.value.reservationId, 'req_1', usage(10, 20, { tokensCachedInput: 4, tokensReasoning: 5 }), {
        provider: 'deepseek',
        upstreamModel: 'deepseek-chat',
        deploymentId: 'dep_9',
        region: 'cn',
        latencyMs: 800,
        ttftMs: 120,
        vendorCostMicros: 77,
        status: 'truncated',
        usageEstimated: true,
      }),
    );
    assert.deepEqual(
      [
        cdr.accountId,
        cdr.memberId,
        cdr.keyId,
        cdr.model,
        cdr.provider,
        cdr.upstreamModel,
        cdr.deploymentId,
        cdr.region,
        cdr.latencyMs,
        cdr.ttftMs,
        cdr.vendorCostMicros,
        cdr.status,
        cdr.usageEstimated,
        cdr.rateVersion,
        cdr.startedAtMs,
        cdr.settledAtMs,
      ],
      ['acct_1', 'mem_1', 'key_1', 'ref', 'deepseek', 'deepseek-chat', 'dep_9', 'cn', 800, 120, 77, 'truncated', true, 'v1', T0, T0 + 1234],
    );
    assert.deepEqual(await h.engine.listUsage('acct_1', { fromMs: T0, toMs: T0 + DAY_MS }), [cdr]);
    const [row] = await h.engine.usageSummary('acct_1', { fromMs: T0, toMs: T0 + DAY_MS });
    assert.deepEqual([row!.day, row!.model, row!.requests, row!.chargedCoins], ['2026-01-01', 'ref', 1, cdr.costCoins]);
  });
});
