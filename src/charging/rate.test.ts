import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rateEstimate, rateUsage, validateRateTable } from './rate.ts';
import { qCeil } from './rational.ts';
import { sampleRates, usage } from './test-fixtures.ts';

const rates = sampleRates();

describe('rating', () => {
  test('token coins are exact per direction: uncached input, cached input, output, reasoning', () => {
    const c = rateUsage(rates.models.pricey!, usage(1000, 300, { tokensCachedInput: 400, tokensReasoning: 100 }), 100);
    // (1000-400)*2 + 400*1/2 + (300-100)*8 + 100*8 = 1200 + 200 + 1600 + 800
    assert.equal(qCeil(c.coins), 3800);
    assert.equal(c.coins.den, 1n);
  });

  test('fractional multipliers are summed exactly and rounded up once per request', () => {
    const c = rateUsage(rates.models.third!, usage(1, 1), 100);
    // 1/3 + 2/3 = 1 exactly: no double rounding (per-direction rounding would give 2)
    assert.equal(qCeil(c.coins), 1);
    const d = rateUsage(rates.models.third!, usage(2, 0), 100);
    assert.equal(qCeil(d.coins), 1, '2/3 rounds up to 1');
  });

  test('money is micros per million tokens converted to minor units, exact, rounded up once', () => {
    // pricey: 2 CNY/M in, 8 CNY/M out: 1M in + 1M out = 10 CNY = 1000 fen
    assert.equal(qCeil(rateUsage(rates.models.pricey!, usage(1_000_000, 1_000_000), 100).moneyMinor!), 1000);
    // 1 input token = 2e-6 CNY = 0.0002 fen: rounds up to 1 fen (bias < 1 minor unit per request)
    assert.equal(qCeil(rateUsage(rates.models.pricey!, usage(1, 0), 100).moneyMinor!), 1);
    assert.equal(rateUsage(rates.models.third!, usage(1, 0), 100).moneyMinor, null, 'no money price: null');
  });

  test('cache write defaults to the input rate and cached subsets are clamped to the input', () => {
    const c = rateUsage(rates.models.ref!, usage(10, 0, { tokensCachedInput: 50, tokensCacheWrite: 5 }), 100);
    // cached clamped to 10 -> 10 * 1/10 = 1
    assert.equal(qCeil(c.coins), 1);
  });

  test('the estimate is an upper bound of any usage with the same token counts', () => {
    const m = rates.models.pricey!;
    const est = qCeil(rateEstimate(m, 500, 200, 100).coins);
    for (const u of [usage(500, 200), usage(500, 200, { tokensCachedInput: 500 }), usage(500, 200, { tokensReasoning: 200 })]) {
      assert.ok(qCeil(rateUsage(m, u, 100).coins) <= est);
    }
  });

  test('per-request charge is reported for request-count plans', () => {
    assert.equal(rateUsage(rates.models.coder!, usage(10, 10), 100).requests, 1);
    assert.equal(rateUsage(rates.models.ref!, usage(10, 10), 100).requests, null);
  });

  test('validateRateTable rejects zero denominators, negative prices and half money prices', () => {
    assert.deepEqual(validateRateTable(rates), []);
    const bad = {
      version: 'x',
      models: {
        m: {
          coinsPerTokenInput: { num: 1, den: 0 },
          coinsPerTokenOutput: { num: 1, den: 1 },
          coinsPerTokenCachedInput: { num: 1, den: 1 },
          priceMicrosPerMillionInput: -1,
        },
      },
    };
    assert.equal(validateRateTable(bad).length, 3);
  });
});
