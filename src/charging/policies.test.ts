import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { auditAccount } from './audit.ts';
import { harness, reserveInput, settleInput, usage, T0, type Harness } from './test-fixtures.ts';

async function withAllowance(amount: number): Promise<Harness> {
  const h = harness(openMemoryChargingStore());
  await h.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount, effectiveAtMs: T0, expiresAtMs: null, kind: 'plan_allowance', sourceRef: 'plan' });
  await h.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 500, sourceRef: 'pay_1' });
  return h;
}
async function run(h: Harness, id: string, inTok: number, outTok: number, extra = {}) {
  const r = await h.engine.reserve(reserveInput(id, { tokensInputEstimate: inTok, tokensOutputMax: outTok, ...extra }));
  if (!r.ok) return r;
  return { ok: true as const, cdr: await h.engine.settle(settleInput(r.value.reservationId, id, usage(inTok, outTok))) };
}
async function clean(h: Harness): Promise<void> {
  assert.deepEqual((await auditAccount(h.store, 'acct_1')).problems, []);
}

describe('overage policies', () => {
  test('block: past the allowance the request is refused even with money in the wallet', async () => {
    const h = await withAllowance(100);
    await h.engine.setAccountPolicy('acct_1', { overage: 'block' });
    assert.ok((await run(h, 'r1', 50, 50)).ok);
    const r = await run(h, 'r2', 50, 50);
    assert.equal(!r.ok && r.code, 'insufficient_quota');
    assert.match(!r.ok ? r.message : '', /an add-on continues now\.$/, 'block: only an add-on continues (the wallet cannot)');
  });

  test('wallet (default): past the allowance the wallet pays, in minor units', async () => {
    const h = await withAllowance(100);
    await run(h, 'r1', 50, 50);
    const r = await run(h, 'r2', 500_000, 500_000, { model: 'pricey' });
    assert.ok(r.ok && 'cdr' in r);
    // 0.5M in * 2 CNY/M + 0.5M out * 8 CNY/M = 5 CNY = 500 fen
    assert.deepEqual(
      r.cdr.charges.map((c) => [c.kind, c.amount]),
      [['wallet', 500]],
    );
    assert.equal((await run(h, 'r3', 10, 10)).ok, false, 'wallet empty now');
    await clean(h);
  });

  test('postpaid: past allowance and wallet, the bill takes it up to the credit limit', async () => {
    const h = await withAllowance(0);
    await h.engine.setAccountPolicy('acct_1', { overage: 'postpaid', creditLimitMinor: 1000, currency: 'CNY' });
    const a = await run(h, 'r1', 500_000, 500_000, { model: 'pricey' }); // 500 fen: wallet
    const b = await run(h, 'r2', 500_000, 500_000, { model: 'pricey' }); // 500 fen: postpaid
    const c = await run(h, 'r3', 500_000, 500_000, { model: 'pricey' }); // 500 fen: postpaid, reaching the limit
    const d = await run(h, 'r4', 500_000, 500_000, { model: 'pricey' });
    assert.ok(a.ok && b.ok && c.ok && !d.ok);
    assert.deepEqual(
      [a, b, c].map((x) => ('cdr' in x ? x.cdr.charges.map((ch) => ch.kind).join() : '')),
      ['wallet', 'postpaid_line', 'postpaid_line'],
    );
    const line = (await h.engine.listBuckets('acct_1')).find((x) => x.kind === 'postpaid_line')!;
    assert.deepEqual([line.used, line.remaining], [1000, 0]);
    await clean(h);
  });

  test('lowering the credit limit below what is owed keeps the line at zero available, never negative', async () => {
    const h = await withAllowance(0);
    await h.engine.setAccountPolicy('acct_1', { overage: 'postpaid', creditLimitMinor: 1000, currency: 'CNY' });
    await run(h, 'r1', 500_000, 500_000, { model: 'pricey' });
    await run(h, 'r2', 500_000, 500_000, { model: 'pricey' });
    await h.engine.setAccountPolicy('acct_1', { overage: 'postpaid', creditLimitMinor: 100, currency: 'CNY' });
    const line = (await h.engine.listBuckets('acct_1')).find((x) => x.kind === 'postpaid_line')!;
    assert.equal(line.remaining, 0);
    await clean(h);
  });
});

describe('member caps and pools', () => {
  test('a member draws from the family pool but never beyond the member cap in the cycle', async () => {
    const h = await withAllowance(10_000);
    await h.engine.setAccountPolicy('acct_1', { overage: 'block' });
    await h.engine.setMemberCap('acct_1', 'mem_kid', { tokensPerCycle: 300 });
    assert.ok((await run(h, 'r1', 100, 100, { memberId: 'mem_kid' })).ok);
    const r = await h.engine.reserve(reserveInput('r2', { memberId: 'mem_kid', tokensInputEstimate: 50, tokensOutputMax: 1000 }));
    assert.ok(r.ok);
    assert.equal(r.value.tokensOutputGranted, 50, 'clamped to the cap');
    const denied = await h.engine.reserve(reserveInput('r3', { memberId: 'mem_kid', tokensInputEstimate: 50, tokensOutputMax: 100 }));
    assert.equal(!denied.ok && denied.code, 'member_cap_reached');
    assert.ok((await run(h, 'r4', 100, 100, { memberId: 'mem_parent' })).ok, 'other members are not affected');
    h.clock.set(Date.UTC(2026, 1, 1));
    assert.ok((await h.engine.reserve(reserveInput('r5', { memberId: 'mem_kid', tokensInputEstimate: 50, tokensOutputMax: 100 }))).ok, 'a new cycle');
  });

  test('member cap thresholds notify at 80% and 100%', async () => {
    const h = await withAllowance(10_000);
    await h.engine.setMemberCap('acct_1', 'mem_kid', { tokensPerCycle: 1000 });
    await run(h, 'r1', 400, 400, { memberId: 'mem_kid' });
    await run(h, 'r2', 100, 100, { memberId: 'mem_kid' });
    const types = (await h.engine.listEvents('acct_1')).filter((e) => e.subjectId === 'mem_kid').map((e) => e.type);
    assert.deepEqual(types, ['member_cap_80', 'member_cap_100']);
  });

  test('a member-owned bucket (a seat allowance) pays only for that member', async () => {
    const h = harness(openMemoryChargingStore());
    await h.engine.grantBucket({
      accountId: 'acct_1',
      memberId: 'mem_a',
      unit: 'tokens',
      amount: 1000,
      effectiveAtMs: T0,
      expiresAtMs: null,
      kind: 'plan_allowance',
      sourceRef: 'seat_a',
    });
    assert.ok((await run(h, 'r1', 10, 10, { memberId: 'mem_a' })).ok);
    assert.equal((await run(h, 'r2', 10, 10, { memberId: 'mem_b' })).ok, false);
    assert.equal((await run(h, 'r3', 10, 10, { memberId: null })).ok, false);
  });
});

describe('request-count plans', () => {
  test('each request costs one request whatever its length; streams extend without more charge', async () => {
    const h = harness(openMemoryChargingStore());
    await h.engine.createAllowanceSchedule({ accountId: 'acct_1', unit: 'requests', amountPerCycle: 2, anchorMs: T0, cycle: 'month', sourceRef: 'coding' });
    const r = await h.engine.reserve(reserveInput('r1', { model: 'coder', stream: true, tokensInputEstimate: 100_000, tokensOutputMax: 50_000 }));
    assert.ok(r.ok);
    const e = await h.engine.extend({ reservationId: r.value.reservationId, tokensOutputMore: 4096 });
    assert.ok(e.ok && !e.value.final);
    const cdr = await h.engine.settle(settleInput(r.value.reservationId, 'r1', usage(100_000, 8000)));
    assert.deepEqual(
      cdr.charges.map((c) => [c.unit, c.amount]),
      [['requests', 1]],
    );
    assert.ok((await run(h, 'r2', 10, 10, { model: 'coder' })).ok);
    const third = await run(h, 'r3', 10, 10, { model: 'coder' });
    assert.equal(!third.ok && third.code, 'insufficient_quota');
    assert.equal((await run(h, 'r4', 10, 10, { model: 'ref' })).ok, false, 'requests buckets pay only request-priced models');
    await clean(h);
  });

  test('a request voided before the first byte is not counted', async () => {
    const h = harness(openMemoryChargingStore());
    await h.engine.grantBucket({
      accountId: 'acct_1',
      unit: 'requests',
      amount: 1,
      effectiveAtMs: T0,
      expiresAtMs: null,
      kind: 'plan_allowance',
      sourceRef: 'p',
    });
    const r = await h.engine.reserve(reserveInput('r1', { model: 'coder' }));
    assert.ok(r.ok);
    await h.engine.void(r.value.reservationId);
    assert.equal((await h.engine.listBuckets('acct_1'))[0]!.remaining, 1);
  });
});

describe('threshold notifications', () => {
  test('50/80/100% of an allowance each notify exactly once, in the same step as the charge', async () => {
    const h = await withAllowance(1000);
    await run(h, 'r1', 300, 300);
    await run(h, 'r2', 100, 100);
    await run(h, 'r3', 10, 10);
    await run(h, 'r4', 100, 100);
    const events = await h.engine.listEvents('acct_1');
    assert.deepEqual(
      events.map((e) => e.type),
      ['threshold_50', 'threshold_80', 'threshold_100'],
    );
    assert.equal(
      events.every((e) => e.deliveryState === 'pending'),
      true,
    );
    assert.equal(events[0]!.data.percent, 50);
  });
});
