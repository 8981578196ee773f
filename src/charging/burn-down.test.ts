import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bucket } from './types.ts';
import { available, compareBuckets, eligibleSorted, walk, type EligibilityContext } from './burn-down.ts';
import { rateEstimate } from './rate.ts';
import { Q1 } from './rational.ts';
import { sampleRates, T0 } from './test-fixtures.ts';

const rates = sampleRates();
let n = 0;
function b(over: Partial<Bucket>): Bucket {
  n++;
  return {
    id: `bkt_${String(n).padStart(3, '0')}`,
    accountId: 'acct_1',
    memberId: null,
    unit: 'tokens',
    currency: null,
    kind: 'addon',
    amount: 100,
    consumed: 0,
    held: 0,
    forfeited: 0,
    floor: 0,
    effectiveAtMs: T0,
    expiresAtMs: null,
    priority: 30,
    models: null,
    rollover: false,
    sourceRef: `r${n}`,
    scheduleId: null,
    cycleIndex: null,
    createdAtMs: T0,
    ...over,
  };
}
const ctx = (over: Partial<EligibilityContext> = {}): EligibilityContext => ({
  nowMs: T0 + 1,
  memberId: null,
  model: 'ref',
  rate: rates.models.ref!,
  currency: 'CNY',
  overage: 'postpaid',
  ...over,
});

describe('burn-down order', () => {
  test('allowance before money, then earliest expiry first, then priority', () => {
    const wallet = b({ unit: 'money', currency: 'CNY', kind: 'wallet', priority: 80 });
    const postpaid = b({ unit: 'money', currency: 'CNY', kind: 'postpaid_line', priority: 90, floor: -100 });
    const trialLate = b({ kind: 'trial', priority: 10, expiresAtMs: T0 + 30 * 86_400_000 });
    const planSoon = b({ kind: 'plan_allowance', priority: 20, expiresAtMs: T0 + 10 * 86_400_000 });
    const addonNever = b({ kind: 'addon', priority: 30 });
    const trialSameExpiry = b({ kind: 'trial', priority: 10, expiresAtMs: T0 + 10 * 86_400_000 });
    const order = [wallet, postpaid, addonNever, trialLate, planSoon, trialSameExpiry].sort(compareBuckets).map((x) => x.id);
    assert.deepEqual(order, [trialSameExpiry.id, planSoon.id, trialLate.id, addonNever.id, wallet.id, postpaid.id]);
  });

  test('eligibility: validity window, model scope and groups, member ownership, policy and price', () => {
    const c = ctx({ memberId: 'mem_1', overage: 'wallet' });
    const ok1 = b({ models: ['chat'] });
    const ok2 = b({ memberId: 'mem_1' });
    const notYet = b({ effectiveAtMs: T0 + 10 });
    const expired = b({ expiresAtMs: T0 + 1 });
    const otherModel = b({ models: ['pricey'] });
    const otherMember = b({ memberId: 'mem_2' });
    const postpaid = b({ unit: 'money', currency: 'CNY', kind: 'postpaid_line', floor: -10 });
    const usd = b({ unit: 'money', currency: 'USD', kind: 'wallet' });
    const requests = b({ unit: 'requests' });
    const ids = eligibleSorted([ok1, ok2, notYet, expired, otherModel, otherMember, postpaid, usd, requests], c)
      .map((x) => x.id)
      .sort();
    assert.deepEqual(ids, [ok1.id, ok2.id].sort());
  });

  test('a request larger than the first bucket takes all of it, then the rest from the next, in one walk', () => {
    const first = b({ amount: 50, expiresAtMs: T0 + 1000 });
    const second = b({ amount: 500 });
    const cost = rateEstimate(rates.models.ref!, 60, 40, 100); // 100 coins
    const r = walk([first, second], cost, Q1, available);
    assert.deepEqual(
      r.takes.map((t) => [t.bucket.id, t.amount]),
      [
        [first.id, 50],
        [second.id, 50],
      ],
    );
    assert.equal(r.left.num, 0n);
  });

  test('mixed units: the allowance pays a fraction and the wallet the rest, in minor units rounded up', () => {
    const tokens = b({ amount: 25 });
    const wallet = b({ unit: 'money', currency: 'CNY', kind: 'wallet', amount: 1000 });
    // ref costs 100 coins and 400 CNY/M * 100 tokens... money: 100 tokens * 4 CNY/M = 0.0004 CNY = 0.04 fen
    const cost = rateEstimate(rates.models.ref!, 60, 40, 100);
    const r = walk([tokens, wallet], cost, Q1, available);
    assert.deepEqual(
      r.takes.map((t) => t.amount),
      [25, 1],
    );
    assert.equal(r.left.num, 0n);
  });

  test('within one unit the parts add up to the cost rounded up once', () => {
    const parts = [b({ amount: 1 }), b({ amount: 1 }), b({ amount: 100 })];
    const cost = rateEstimate(rates.models.third!, 2, 2, 100); // 2/3 + 4/3 = 2 coins
    const r = walk(parts, cost, Q1, available);
    assert.equal(
      r.takes.reduce((s, t) => s + t.amount, 0),
      2,
    );
  });

  test('a request-count bucket pays a whole request or nothing', () => {
    const reqs = b({ unit: 'requests', amount: 1 });
    const cost = rateEstimate(rates.models.coder!, 1000, 1000, 100);
    assert.deepEqual(
      walk([reqs], cost, Q1, available).takes.map((t) => t.amount),
      [1],
    );
    const empty = b({ unit: 'requests', amount: 1, consumed: 1 });
    assert.equal(walk([empty], cost, Q1, available).left.num, 1n);
  });
});
