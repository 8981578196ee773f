import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from './errors.ts';
import { futureInstant, isoInstant, moneyAmount, nameList, period, positiveInt, tokenCount } from './validate.ts';

const usage = (fn: () => unknown, re: RegExp): void => assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message));

describe('amounts are parsed exactly or refused with a clear message', () => {
  test('a decimal amount becomes minor units without float rounding', () => {
    assert.equal(moneyAmount('amount', '10.00', 'CNY'), 1000);
    assert.equal(moneyAmount('amount', '0.1', 'CNY'), 10);
    assert.equal(moneyAmount('amount', '19.99', 'CNY'), 1999);
    assert.equal(moneyAmount('amount', '500', 'JPY'), 500);
  });

  test('negative, zero, over-precise, non-numeric and absurd amounts are usage errors', () => {
    usage(() => moneyAmount('amount', '-5', 'CNY'), /more than 0/);
    usage(() => moneyAmount('amount', '0.00', 'CNY'), /more than 0/);
    usage(() => moneyAmount('amount', '1.234', 'CNY'), /more decimals/);
    usage(() => moneyAmount('amount', '1.5', 'JPY'), /more decimals/);
    usage(() => moneyAmount('amount', 'ten', 'CNY'), /decimal amount/);
    usage(() => moneyAmount('amount', '1e3', 'CNY'), /decimal amount/);
    usage(() => moneyAmount('amount', '99999999999', 'CNY'), /limit/);
  });

  test('token counts accept K/M/B suffixes and stay whole', () => {
    assert.equal(tokenCount('tokens', '30000000'), 30_000_000);
    assert.equal(tokenCount('tokens', '30M'), 30_000_000);
    assert.equal(tokenCount('tokens', '1.5m'), 1_500_000);
    assert.equal(tokenCount('tokens', '500K'), 500_000);
    assert.equal(tokenCount('tokens', '30_000_000'), 30_000_000);
    usage(() => tokenCount('tokens', '1.5'), /whole number/);
    usage(() => tokenCount('tokens', '0'), /more than 0/);
    usage(() => tokenCount('tokens', '-1M'), /more than 0/);
  });

  test('positive integers refuse fractions, zero and values over the limit', () => {
    assert.equal(positiveInt('count', '10,000', 100_000), 10_000);
    usage(() => positiveInt('count', '1.5', 10), /whole number/);
    usage(() => positiveInt('count', '0', 10), /more than 0/);
    usage(() => positiveInt('count', '11', 10), /at most 10/);
  });
});

describe('dates and lists', () => {
  test('a date means 00:00 UTC; a date-time needs an offset', () => {
    assert.equal(isoInstant('expires', '2026-12-25'), '2026-12-25T00:00:00.000Z');
    assert.equal(isoInstant('expires', '2026-12-25T18:00:00+08:00'), '2026-12-25T10:00:00.000Z');
    usage(() => isoInstant('expires', '2026-12-25T18:00'), /offset/);
    usage(() => isoInstant('expires', 'tomorrow'), /date/);
    usage(() => isoInstant('expires', '2026-13-45'), /date/);
    usage(() => isoInstant('expires', '2026-02-30'), /date/);
  });

  test('an expiry in the past is refused', () => {
    usage(() => futureInstant('expires', '2020-01-01', Date.parse('2026-01-01T00:00:00Z')), /in the past/);
  });

  test('periods are calendar months and lists drop blanks', () => {
    assert.equal(period('period', '2026-11'), '2026-11');
    usage(() => period('period', '2026-13'), /month/);
    usage(() => period('period', '2026-11-01'), /month/);
    assert.deepEqual(nameList('models', 'glm-5, deepseek-v3.2,'), ['glm-5', 'deepseek-v3.2']);
    usage(() => nameList('models', ' , '), /at least one/);
  });
});
