import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryAccountStore } from '../store/memory/accounts-store.ts';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { createMemoryBillingStore } from '../store/memory/billing-store.ts';
import { billingHarness, type BillingHarness } from './test-kit.ts';

const CATALOG = `
version: orders-test
defaults: { channel: wallet }
limits: { topupMax: "1000.00", codesPerBatchMax: 50 }
points: { earnPerYuan: 2, tokensPerPoint: 100, minRedeem: 10, validityDays: 7 }
offers:
  monthly: { name: Monthly, type: plan, price: "10.00", cycle: month, allowance: { tokens: 1000 } }
  small: { name: Small, type: plan, price: "5.00", cycle: month, allowance: { tokens: 100 } }
  yearly: { name: Yearly, type: plan, price: "100.00", cycle: year, allowance: { tokens: 12000 } }
  team: { name: Team, type: plan, price: "20.00", cycle: month, seats: { min: 2, max: 10 }, allowance: { tokens: 500 } }
  seat: { name: Extra seat, type: addon, feature: seat, price: "20.00", allowance: { tokens: 500 }, appliesTo: [team] }
  boost: { name: Boost, type: addon, renews: true, feature: speed, qos: priority, price: "3.00" }
  trial: { name: Trial, type: trial, allowance: { tokens: 50 }, validityDays: 7 }
  pack: { name: Pack, type: pack, price: "2.00", allowance: { tokens: 300 }, validityDays: 10 }
  card: { name: Card, type: pack, price: "30.00", allowance: { money: "30.00" }, validityDays: 365 }
`;

function setup(start = '2026-01-15T00:00:00Z'): BillingHarness {
  return billingHarness(
    { accounts: createMemoryAccountStore(), charging: openMemoryChargingStore(), billing: createMemoryBillingStore() },
    { startMs: start, catalogText: CATALOG },
  );
}

function must<T>(r: { ok: true; value: { value: T } } | { ok: false; code: string; message: string }): T {
  if (!r.ok) assert.fail(`${r.code}: ${r.message}`);
  return r.value.value;
}

async function state(h: BillingHarness, accountId: string): Promise<unknown> {
  return {
    orders: await h.billing.listOrders({ accountId }),
    subs: await h.billing.listSubscriptions({ accountId }),
    buckets: await h.charging.listBuckets(accountId),
    payments: await h.billing.listPayments({ accountId }),
    points: await h.billing.pointsBalance(accountId),
  };
}

async function refused(
  h: BillingHarness,
  accountId: string,
  code: string,
  re: RegExp,
  attempt: () => Promise<{ ok: boolean; code?: string; message?: string }>,
): Promise<void> {
  const before = await state(h, accountId);
  const r = await attempt();
  assert.ok(!r.ok, 'refused');
  assert.equal(r.code, code, r.message);
  assert.match(r.message!, re);
  assert.deepEqual(await state(h, accountId), before, 'nothing changed');
}

const actor = 'admin:t';

describe('orders refuse bad input and change nothing', () => {
  test('unknown offer, add-on as a plan, second trial, second plan, seats out of range', async () => {
    const h = setup();
    const a = await h.newAccount();
    await refused(h, a, 'not_found', /Unknown offer nope/, () => h.billing.subscribe({ accountId: a, offerId: 'nope', actor, idempotencyKey: 'k1' }));
    await refused(h, a, 'unprocessable', /is an add-on/, () => h.billing.subscribe({ accountId: a, offerId: 'boost', actor, idempotencyKey: 'k2' }));
    must(await h.billing.subscribe({ accountId: a, offerId: 'trial', actor, idempotencyKey: 'k3' }));
    await refused(h, a, 'unprocessable', /offered once/, () => h.billing.subscribe({ accountId: a, offerId: 'trial', actor, idempotencyKey: 'k4' }));
    await refused(h, a, 'payment_required', /wallet holds 0\.00 CNY/, () =>
      h.billing.subscribe({ accountId: a, offerId: 'monthly', actor, idempotencyKey: 'k5' }),
    );
    must(await h.billing.topUp({ accountId: a, amountMinor: 100_00, actor, idempotencyKey: 'k6' }));
    must(await h.billing.subscribe({ accountId: a, offerId: 'monthly', actor, idempotencyKey: 'k7' }));
    await refused(h, a, 'conflict', /already has plan monthly/, () => h.billing.subscribe({ accountId: a, offerId: 'small', actor, idempotencyKey: 'k8' }));
    const b = await h.newAccount();
    await refused(h, b, 'unprocessable', /2 to 10 seats/, () =>
      h.billing.subscribe({ accountId: b, offerId: 'team', quantity: 11, channel: 'phone_bill', actor, idempotencyKey: 'k9' }),
    );
    await refused(h, b, 'unprocessable', /can be added to team; .* has no plan/, () =>
      h.billing.buyAddon({ accountId: b, offerId: 'seat', actor, idempotencyKey: 'k10' }),
    );
  });

  test('top-ups: negative, zero, absurd, foreign currency; a replay with another body', async () => {
    const h = setup();
    const a = await h.newAccount();
    await refused(h, a, 'invalid', /positive/, () => h.billing.topUp({ accountId: a, amountMinor: -100, actor, idempotencyKey: 't1' }));
    await refused(h, a, 'invalid', /positive/, () => h.billing.topUp({ accountId: a, amountMinor: 0, actor, idempotencyKey: 't2' }));
    await refused(h, a, 'unprocessable', /over the 1000\.00 CNY limit/, () =>
      h.billing.topUp({ accountId: a, amountMinor: 1_000_01, actor, idempotencyKey: 't3' }),
    );
    await refused(h, a, 'unprocessable', /kept in CNY/, () =>
      h.billing.topUp({ accountId: a, amountMinor: 100, currency: 'USD', actor, idempotencyKey: 't4' }),
    );
    const first = await h.billing.topUp({ accountId: a, amountMinor: 500, actor, idempotencyKey: 't5' });
    assert.ok(first.ok);
    await refused(h, a, 'idempotency_key_reused', /different request/, () => h.billing.topUp({ accountId: a, amountMinor: 600, actor, idempotencyKey: 't5' }));
    const replay = await h.billing.topUp({ accountId: a, amountMinor: 500, actor, idempotencyKey: 't5' });
    assert.ok(replay.ok && replay.value.replayed && replay.value.value.order.id === first.value.value.order.id);
  });

  test('codes: reused, forged, malformed, expired; a batch replay does not show the codes again', async () => {
    const h = setup();
    const a = await h.newAccount();
    const b = await h.newAccount();
    const gen = await h.billing.generateCodes({ offerId: 'pack', count: 3, expiresAtMs: Date.parse('2026-02-01T00:00:00Z'), actor, idempotencyKey: 'g1' });
    assert.ok(gen.ok);
    const codes = gen.value.value.codes!;
    assert.equal(new Set(codes).size, 3);
    assert.match(codes[0]!, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    const replay = await h.billing.generateCodes({ offerId: 'pack', count: 3, expiresAtMs: Date.parse('2026-02-01T00:00:00Z'), actor, idempotencyKey: 'g1' });
    assert.ok(replay.ok && replay.value.replayed && replay.value.value.codes === null);
    const got = must(await h.billing.redeemCode({ accountId: a, code: codes[0]!.toLowerCase().replace(/-/g, ' '), actor, idempotencyKey: null }));
    assert.equal((await h.charging.listBuckets(a)).find((x) => x.kind === 'code')?.amount, 300);
    assert.equal(got.order.lines[0]!.amountMinor, 2_00);
    await refused(h, a, 'unprocessable', /already redeemed .* by this account/, () =>
      h.billing.redeemCode({ accountId: a, code: codes[0]!, actor, idempotencyKey: null }),
    );
    await refused(h, b, 'unprocessable', /already redeemed on 2026-01-15; a code works once/, () =>
      h.billing.redeemCode({ accountId: b, code: codes[0]!, actor, idempotencyKey: null }),
    );
    const flipped = codes[1]!.slice(0, 1) === 'A' ? `B${codes[1]!.slice(1)}` : `A${codes[1]!.slice(1)}`;
    await refused(h, b, 'unprocessable', /not a valid redemption code/, () =>
      h.billing.redeemCode({ accountId: b, code: flipped, actor, idempotencyKey: null }),
    );
    await refused(h, b, 'invalid', /16 letters and digits/, () => h.billing.redeemCode({ accountId: b, code: 'TG-1234', actor, idempotencyKey: null }));
    h.clock.set('2026-02-01T00:00:00Z');
    await refused(h, b, 'unprocessable', /expired on 2026-02-01/, () => h.billing.redeemCode({ accountId: b, code: codes[2]!, actor, idempotencyKey: null }));
    const card = must(await h.billing.generateCodes({ offerId: 'card', count: 1, actor, idempotencyKey: 'g2' })).codes![0]!;
    must(await h.billing.redeemCode({ accountId: b, code: card, actor, idempotencyKey: null }));
    assert.equal((await h.charging.listBuckets(b)).find((x) => x.kind === 'wallet')?.remaining, 30_00, 'a money card tops up the wallet');
  });

  test('points: too few, below the minimum', async () => {
    const h = setup();
    const a = await h.newAccount();
    must(await h.billing.topUp({ accountId: a, amountMinor: 50_00, actor, idempotencyKey: 'p0' }));
    must(await h.billing.subscribe({ accountId: a, offerId: 'monthly', actor, idempotencyKey: 'p1' }));
    assert.equal(await h.billing.pointsBalance(a), 20, '2 points per CNY of the 10.00 paid; top-ups earn nothing');
    await refused(h, a, 'unprocessable', /At least 10 points/, () => h.billing.redeemPoints({ accountId: a, points: 5, actor, idempotencyKey: 'p2' }));
    await refused(h, a, 'unprocessable', /has 20 points, fewer than 30/, () =>
      h.billing.redeemPoints({ accountId: a, points: 30, actor, idempotencyKey: 'p3' }),
    );
    const r = must(await h.billing.redeemPoints({ accountId: a, points: 20, actor, idempotencyKey: 'p4' }));
    assert.equal(r.tokens, 2000);
    assert.equal(r.pointsLeft, 0);
  });
});

describe('renewals', () => {
  test('a yearly plan anchored on Feb 29 renews on Feb 28 in common years and Feb 29 in leap years', async () => {
    const h = setup('2028-02-29T12:00:00Z');
    const a = await h.newAccount();
    must(await h.billing.topUp({ accountId: a, amountMinor: 1000_00, actor, idempotencyKey: 'y0' }));
    must(await h.billing.topUp({ accountId: a, amountMinor: 1000_00, actor, idempotencyKey: 'y00' }));
    const sub = must(await h.billing.subscribe({ accountId: a, offerId: 'yearly', actor, idempotencyKey: 'y1' })).subscription;
    h.clock.set('2033-03-01T00:00:00Z');
    await h.billing.renewDue();
    const dates = (await h.billing.listOrders({ accountId: a }))
      .filter((o) => o.type === 'renew')
      .map((o) => new Date(o.effectiveAtMs).toISOString().slice(0, 10));
    assert.deepEqual(dates, ['2029-02-28', '2030-02-28', '2031-02-28', '2032-02-29', '2033-02-28']);
    assert.equal(h.billing.subscriptionView((await h.billing.getSubscription(sub.id))!).currentPeriodEnd, '2034-02-28T12:00:00.000Z');
  });

  test('a renewal the wallet cannot pay is due on the bill; the plan lapses a cycle later unless a top-up pays it', async () => {
    const h = setup('2026-01-31T00:00:00Z');
    const a = await h.newAccount();
    must(await h.billing.topUp({ accountId: a, amountMinor: 10_00, actor, idempotencyKey: 'w0' }));
    const sub = must(await h.billing.subscribe({ accountId: a, offerId: 'monthly', actor, idempotencyKey: 'w1' })).subscription;
    h.clock.set('2026-02-28T00:00:00Z');
    await h.billing.renewDue();
    let s = (await h.billing.getSubscription(sub.id))!;
    assert.equal(s.status, 'past_due');
    const unpaid = (await h.billing.listOrders({ accountId: a })).find((o) => o.status === 'unpaid')!;
    assert.equal(unpaid.amountMinor, 10_00);
    const top = must(await h.billing.topUp({ accountId: a, amountMinor: 15_00, actor, idempotencyKey: 'w2' }));
    assert.equal(top.settledOrders, 1);
    assert.equal(top.walletMinor, 5_00);
    s = (await h.billing.getSubscription(sub.id))!;
    assert.equal(s.status, 'active', 'reinstated');
    h.clock.set('2026-03-31T00:00:01Z');
    await h.billing.renewDue();
    await h.charging.renewDue();
    assert.equal((await h.charging.listBuckets(a)).filter((b) => b.kind === 'plan_allowance' && !b.expired).length, 1, 'the next cycle came');
    h.clock.set('2026-04-30T00:00:01Z');
    await h.billing.renewDue();
    h.clock.set('2026-05-31T00:00:01Z');
    await h.billing.renewDue();
    s = (await h.billing.getSubscription(sub.id))!;
    assert.equal(s.status, 'canceled');
    assert.equal(s.endReason, 'unpaid');
    await h.charging.renewDue();
    assert.equal((await h.charging.listBuckets(a)).filter((b) => b.kind === 'plan_allowance' && !b.expired).length, 0, 'no allowance after the lapse');
    assert.equal(s.endedAtMs, Date.parse('2026-04-30T00:00:00Z'), 'the Mar 31 renewal went unpaid (5.00 in the wallet): lapsed on Apr 30');
    for (const p of ['2026-01', '2026-02', '2026-03', '2026-04']) assert.ok((await h.billing.runBills(p)).ok);
    const bills = await h.billing.listBills({ accountId: a });
    assert.deepEqual(
      bills.map((b) => [b.period, b.totalMinor, b.unpaidMinor]),
      [
        ['2026-01', 10_00, 0],
        ['2026-02', 10_00, 0],
        ['2026-03', 10_00, 10_00],
      ],
      'the February renewal was paid by the top-up before its bill ran; the March one is still due',
    );
  });

  test('seats: a team plan and an extra seat add their allowances and show in the entitlements; add-ons renew and end with the plan', async () => {
    const h = setup('2026-03-01T00:00:00Z');
    const a = await h.newAccount('Team', 'team');
    must(await h.billing.topUp({ accountId: a, amountMinor: 500_00, actor, idempotencyKey: 's0' }));
    const team = must(await h.billing.subscribe({ accountId: a, offerId: 'team', quantity: 3, actor, idempotencyKey: 's1' }));
    assert.equal(team.order.amountMinor, 60_00);
    h.clock.set('2026-03-16T12:00:00Z');
    const seat = must(await h.billing.buyAddon({ accountId: a, offerId: 'seat', quantity: 2, actor, idempotencyKey: 's2' }));
    assert.equal(seat.order.amountMinor, Math.ceil((40_00 * 15.5) / 31), 'two seats for 15.5 of 31 days');
    must(await h.billing.buyAddon({ accountId: a, offerId: 'boost', actor, idempotencyKey: 's3' }));
    const ent = await h.billing.entitlements(a);
    assert.equal(ent.seats, 5);
    assert.equal(ent.qos, 'priority');
    assert.deepEqual(ent.features.map((f) => f.feature).sort(), ['seat', 'speed']);
    h.clock.set('2026-04-01T00:00:00Z');
    await h.billing.renewDue();
    const renew = (await h.billing.listOrders({ accountId: a }))
      .filter((o) => o.type === 'renew')
      .map((o) => [o.offerId, o.amountMinor])
      .sort();
    assert.deepEqual(renew, [
      ['boost', 3_00],
      ['seat', 40_00],
      ['team', 60_00],
    ]);
    await h.charging.renewDue();
    const pool = (await h.charging.listBuckets(a)).filter((b) => !b.expired && b.unit === 'tokens').reduce((s, b) => s + b.amount, 0);
    assert.equal(pool, 2500, '3 + 2 seats of 500 tokens');
    must(await h.billing.cancel({ subscriptionId: team.subscription.id, actor, idempotencyKey: 's4' }));
    h.clock.set('2026-05-01T00:00:00Z');
    await h.billing.renewDue();
    assert.deepEqual(
      (await h.billing.listSubscriptions({ accountId: a, live: true })).map((x) => x.offerId),
      [],
      'add-ons end with their plan',
    );
    assert.equal((await h.billing.entitlements(a)).features.length, 0);
  });

  test('refunds and credits are negative lines on the bill of the month they are made', async () => {
    const h = setup('2026-01-10T00:00:00Z');
    const a = await h.newAccount();
    must(await h.billing.topUp({ accountId: a, amountMinor: 50_00, actor, idempotencyKey: 'r0' }));
    const sub = must(await h.billing.subscribe({ accountId: a, offerId: 'monthly', actor, idempotencyKey: 'r1' }));
    h.clock.set('2026-02-01T00:00:00Z');
    assert.ok((await h.billing.runBills('2026-01')).ok);
    h.clock.set('2026-02-03T00:00:00Z');
    const refund = await h.billing.refund({ orderId: sub.order.id, amountMinor: 4_00, reason: 'service outage', actor, idempotencyKey: 'r2' });
    assert.ok(refund.ok);
    const over = await h.billing.refund({ orderId: sub.order.id, amountMinor: 7_00, reason: 'again', actor, idempotencyKey: 'r3' });
    assert.ok(!over.ok && over.code === 'unprocessable' && /6\.00 CNY left to refund/.test(over.message));
    assert.ok((await h.billing.credit({ accountId: a, amountMinor: 1_50, reason: 'sorry', actor, idempotencyKey: 'r4' })).ok);
    h.clock.set('2026-03-01T00:00:00Z');
    assert.ok((await h.billing.runBills('2026-02')).ok);
    const jan = (await h.billing.listBills({ accountId: a, period: '2026-01' }))[0]!;
    const feb = (await h.billing.listBills({ accountId: a, period: '2026-02' }))[0]!;
    assert.equal(jan.totalMinor, 10_00, 'the January bill stays as it was');
    assert.deepEqual(
      feb.lines.map((l) => [l.kind, l.amountMinor, l.paidBy]),
      [
        ['refund', -4_00, 'wallet'],
        ['credit', -1_50, 'wallet'],
        ['subscription', 10_00, 'wallet'],
      ],
    );
    assert.equal((await h.charging.listBuckets(a)).find((b) => b.kind === 'wallet')!.remaining, 50_00 - 10_00 + 4_00 + 1_50 - 10_00);
  });
});
