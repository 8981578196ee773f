/**
 * Fast paths of the charging arithmetic against their general paths. Rating (rate.ts sums in doubles while every
 * value is a safe integer, in bigints otherwise) gives exactly the num/den of the straightforward reference below
 * (the rating as first written: a q() per term) and fails exactly when it fails; q, qCeil and qFloor match reference
 * division; the burn-down walk's shortcut for a whole request matches the general product. Inputs range from the
 * usual small ratios to values past 2^53, so both paths and the switch between them are exercised.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Usage } from '../wire/index.ts';
import type { Bucket, ModelRate, Ratio } from './types.ts';
import { available, walk } from './burn-down.ts';
import { estimateRate, rateEstimate, rateUsage, tokenParts } from './rate.ts';
import { q, qCeil, qFloor, Q0, Q1, type Q } from './rational.ts';

// ---- reference: rating with one reduction per step, on bigints only
function refGcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}
function refQ(num: bigint | number, den: bigint | number = 1n): Q {
  const n = BigInt(num);
  const d = BigInt(den);
  assert.ok(d > 0n);
  const g = refGcd(n, d);
  return g > 1n ? { num: n / g, den: d / g } : { num: n, den: d };
}
const refAdd = (a: Q, b: Q): Q => (a.den === b.den ? refQ(a.num + b.num, a.den) : refQ(a.num * b.den + b.num * a.den, a.den * b.den));
const refMulInt = (a: Q, n: number): Q => refQ(a.num * BigInt(n), a.den);
const ratioQ = (r: Ratio): Q => refQ(r.num, r.den);

function refCoins(rate: ModelRate, p: ReturnType<typeof tokenParts>): Q {
  const cw = rate.coinsPerTokenCacheWrite ?? rate.coinsPerTokenInput;
  const rs = rate.coinsPerTokenReasoning ?? rate.coinsPerTokenOutput;
  let sum = refQ(0);
  sum = refAdd(sum, refMulInt(ratioQ(rate.coinsPerTokenInput), p.input));
  sum = refAdd(sum, refMulInt(ratioQ(rate.coinsPerTokenCachedInput), p.cachedInput));
  sum = refAdd(sum, refMulInt(ratioQ(cw), p.cacheWrite));
  sum = refAdd(sum, refMulInt(ratioQ(rate.coinsPerTokenOutput), p.output));
  sum = refAdd(sum, refMulInt(ratioQ(rs), p.reasoning));
  return sum;
}

function refMoney(rate: ModelRate, p: ReturnType<typeof tokenParts>, minor: number): Q | null {
  if (rate.priceMicrosPerMillionInput === undefined || rate.priceMicrosPerMillionOutput === undefined) return null;
  const pin = rate.priceMicrosPerMillionInput;
  const pout = rate.priceMicrosPerMillionOutput;
  const pcached = rate.priceMicrosPerMillionCachedInput ?? pin;
  const pcw = rate.priceMicrosPerMillionCacheWrite ?? pin;
  const prs = rate.priceMicrosPerMillionReasoning ?? pout;
  const micros =
    BigInt(p.input) * BigInt(pin) +
    BigInt(p.cachedInput) * BigInt(pcached) +
    BigInt(p.cacheWrite) * BigInt(pcw) +
    BigInt(p.output) * BigInt(pout) +
    BigInt(p.reasoning) * BigInt(prs);
  return refQ(micros * BigInt(minor), 1_000_000_000_000n);
}

// ---- generators: mostly realistic, sometimes huge (past 2^53 once multiplied), sometimes at the safe limit
const bigInt = fc.oneof(
  { weight: 6, arbitrary: fc.nat(20) },
  { weight: 4, arbitrary: fc.nat(100_000) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 2 ** 26, 2 ** 27 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1) },
);
const den = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 1_000_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) },
);
const ratio: fc.Arbitrary<Ratio> = fc.record({ num: bigInt, den });
const price = fc.oneof({ weight: 5, arbitrary: fc.nat(10_000_000) }, { weight: 1, arbitrary: bigInt });
const rateArb: fc.Arbitrary<ModelRate> = fc.record(
  {
    coinsPerTokenInput: ratio,
    coinsPerTokenOutput: ratio,
    coinsPerTokenCachedInput: ratio,
    coinsPerTokenCacheWrite: fc.option(ratio, { nil: undefined }),
    coinsPerTokenReasoning: fc.option(ratio, { nil: undefined }),
    priceMicrosPerMillionInput: fc.option(price, { nil: undefined }),
    priceMicrosPerMillionOutput: fc.option(price, { nil: undefined }),
    priceMicrosPerMillionCachedInput: fc.option(price, { nil: undefined }),
    priceMicrosPerMillionCacheWrite: fc.option(price, { nil: undefined }),
    priceMicrosPerMillionReasoning: fc.option(price, { nil: undefined }),
    perRequestCharge: fc.option(fc.nat(5), { nil: undefined }),
  },
  { requiredKeys: ['coinsPerTokenInput', 'coinsPerTokenOutput', 'coinsPerTokenCachedInput'] },
);
const tokens = fc.oneof({ weight: 6, arbitrary: fc.nat(5_000) }, { weight: 2, arbitrary: fc.nat(2_000_000) }, { weight: 1, arbitrary: bigInt });
const usageArb: fc.Arbitrary<Usage> = fc.record({
  tokensInput: tokens,
  tokensOutput: tokens,
  tokensCachedInput: tokens,
  tokensCacheWrite: tokens,
  tokensReasoning: tokens,
});
const minor = fc.oneof(fc.constantFrom(1, 100, 1000), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));

type Outcome = { ok: true; value: string } | { ok: false; error: string };
const show = (v: Q | null): string => (v === null ? 'null' : `${v.num}/${v.den}`);
function outcome(f: () => string): Outcome {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    return { ok: false, error: (e as Error).constructor.name };
  }
}

describe('rating: the fast path and the bigint path give the reference result exactly', () => {
  test('rateUsage', () => {
    fc.assert(
      fc.property(rateArb, usageArb, minor, (rate, u, m) => {
        const got = outcome(() => {
          const c = rateUsage(rate, u, m);
          return `${show(c.coins)} ${show(c.moneyMinor)} ${c.requests}`;
        });
        const want = outcome(() => {
          const p = tokenParts(u);
          return `${show(refCoins(rate, p))} ${show(refMoney(rate, p, m))} ${rate.perRequestCharge ?? null}`;
        });
        assert.deepEqual(got, want);
      }),
      { numRuns: 20_000, seed: 20260201 },
    );
  });

  test('rateEstimate (the reserve and extend path)', () => {
    fc.assert(
      fc.property(rateArb, tokens, tokens, minor, (rate, tin, tout, m) => {
        const got = outcome(() => {
          const c = rateEstimate(rate, tin, tout, m);
          return `${show(c.coins)} ${show(c.moneyMinor)}`;
        });
        const want = outcome(() => {
          const e = estimateRate(rate); // unchanged code: only the rating of its parts is under test
          const p = { input: tin, cachedInput: 0, cacheWrite: 0, output: tout, reasoning: 0 };
          return `${show(refCoins(e, p))} ${show(refMoney(e, p, m))}`;
        });
        assert.deepEqual(got, want);
      }),
      { numRuns: 20_000, seed: 20260202 },
    );
  });

  test('invalid ratios and counts fail as the reference does', () => {
    const bad = fc.constantFrom(1.5, -1, 0, Number.MAX_SAFE_INTEGER + 1, 2 ** 60);
    fc.assert(
      fc.property(rateArb, usageArb, bad, fc.nat(5), (rate, u, v, where) => {
        const r: ModelRate = { ...rate, coinsPerTokenInput: { ...rate.coinsPerTokenInput } };
        if (where === 0) r.coinsPerTokenInput.den = v;
        else if (where === 1) r.coinsPerTokenInput.num = v;
        else if (where === 2) r.priceMicrosPerMillionInput = v;
        else if (where === 3) r.priceMicrosPerMillionOutput = v;
        const m = where === 4 ? v : 100;
        const got = outcome(() => {
          const c = rateUsage(r, u, m);
          return `${show(c.coins)} ${show(c.moneyMinor)}`;
        });
        const want = outcome(() => {
          const p = tokenParts(u);
          return `${show(refCoins(r, p))} ${show(refMoney(r, p, m))}`;
        });
        // The reference asserts with node:assert; the code under test with its own AssertionError: compare failing, not the class.
        assert.equal(got.ok, want.ok);
        if (got.ok && want.ok) assert.equal(got.value, want.value);
      }),
      { numRuns: 5_000, seed: 20260203 },
    );
  });
});

describe('rationals', () => {
  test('q reduces to the unique lowest terms, as the reference does', () => {
    const n = fc.oneof(fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }), fc.bigInt({ min: -100n, max: 100n }));
    const d = fc.oneof(fc.bigInt({ min: 1n, max: 2n ** 80n }), fc.bigInt({ min: 1n, max: 100n }), fc.constant(1n));
    fc.assert(
      fc.property(n, d, (a, b) => {
        const got = q(a, b);
        const want = refQ(a, b);
        assert.equal(got.num, want.num);
        assert.equal(got.den, want.den);
      }),
      { numRuns: 20_000, seed: 20260204 },
    );
  });

  test('qCeil and qFloor (whole numbers take a shortcut) match the reference division', () => {
    const n = fc.oneof(fc.bigInt({ min: -(2n ** 52n), max: 2n ** 52n }), fc.bigInt({ min: -100n, max: 100n }));
    const d = fc.oneof(fc.constant(1n), fc.bigInt({ min: 1n, max: 1000n }));
    fc.assert(
      fc.property(n, d, (a, b) => {
        const v = q(a, b);
        const floor = a / b - (a % b !== 0n && a < 0n ? 1n : 0n);
        const ceil = a / b + (a % b !== 0n && a > 0n ? 1n : 0n);
        assert.equal(qCeil(v), Number(ceil));
        assert.equal(qFloor(v), Number(floor));
      }),
      { numRuns: 20_000, seed: 20260206 },
    );
  });

  test('ceil and floor of exact values', () => {
    assert.equal(qCeil(Q0), 0);
    assert.equal(qCeil(q(7, 2)), 4);
    assert.equal(qFloor(q(7, 2)), 3);
    assert.equal(qCeil(q(-7, 2)), -3);
    assert.equal(qFloor(q(-7, 2)), -4);
    assert.throws(() => qCeil(q(2n ** 60n)));
  });
});

describe('burn-down walk', () => {
  test('the whole-request shortcut (fraction Q1: no product for the first bucket) takes what the general path takes', () => {
    const bucketArb: fc.Arbitrary<Bucket> = fc
      .record({
        unit: fc.constantFrom('tokens' as const, 'money' as const, 'requests' as const),
        amount: fc.nat(3000),
        consumed: fc.nat(500),
      })
      .map(({ unit, amount, consumed }) => ({
        id: 'bkt',
        accountId: 'acct_1',
        memberId: null,
        unit,
        currency: unit === 'money' ? 'CNY' : null,
        kind: 'addon',
        amount: amount + consumed,
        consumed,
        held: 0,
        forfeited: 0,
        floor: 0,
        effectiveAtMs: 0,
        expiresAtMs: null,
        priority: 30,
        models: null,
        rollover: false,
        sourceRef: 'r',
        scheduleId: null,
        cycleIndex: null,
        createdAtMs: 0,
      }));
    fc.assert(
      fc.property(fc.array(bucketArb, { maxLength: 5 }), rateArb, usageArb, (buckets, rate, u) => {
        const sorted = buckets.map((b, k) => ({ ...b, id: `bkt_${k}` }));
        const cost = rateUsage(rate, u, 100);
        const run = (fraction: Q) =>
          outcome(() => {
            const r = walk(sorted, cost, fraction, available);
            return `${r.takes.map((t) => `${t.bucket.id}:${t.amount}`).join(',')} left ${show(r.left)}`;
          });
        // equal value, not the constant: no shortcut (a cost past 2^53 fails in both)
        assert.deepEqual(run(Q1), run({ num: 1n, den: 1n }));
      }),
      { numRuns: 5_000, seed: 20260207 },
    );
  });
});
