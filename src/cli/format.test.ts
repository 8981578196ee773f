import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeBucket, formatMoney, formatTable, formatTokens, formatWhen, spendableSummary, toCsv, type BucketView } from './format.ts';

const NOW = Date.parse('2026-11-25T12:00:00Z');
const bucket = (over: Partial<BucketView>): BucketView => ({
  id: 'bkt_1',
  unit: 'tokens',
  currency: null,
  kind: 'trial',
  memberId: null,
  granted: 30_000_000,
  used: 0,
  reserved: 0,
  remaining: 30_000_000,
  effectiveAt: '2026-11-01T00:00:00.000Z',
  expiresAt: null,
  expired: false,
  models: null,
  ...over,
});

describe('plain-term amounts', () => {
  test('token counts use K/M/B and never round a balance up', () => {
    assert.equal(formatTokens(950), '950');
    assert.equal(formatTokens(12_345_678), '12.3M');
    assert.equal(formatTokens(30_000_000), '30M');
    assert.equal(formatTokens(29_999_999), '29.9M');
    assert.equal(formatTokens(1_500), '1.5K');
    assert.equal(formatTokens(150_000_000), '150M');
    assert.equal(formatTokens(2_000_000_000), '2B');
  });

  test('money is minor units shown with the currency scale', () => {
    assert.equal(formatMoney(850, 'CNY'), '8.50 CNY');
    assert.equal(formatMoney(5, 'CNY'), '0.05 CNY');
    assert.equal(formatMoney(1200, 'JPY'), '1200 JPY');
  });

  test('a midnight-UTC instant is shown as a day, any other as day and minute', () => {
    assert.equal(formatWhen('2026-12-25T00:00:00.000Z'), '2026-12-25');
    assert.equal(formatWhen('2026-12-25T14:30:00.000Z'), '2026-12-25 14:30 UTC');
    assert.equal(formatWhen(null), '-');
  });
});

describe('bucket lines', () => {
  test('a token bucket says how much of how much is left and until when', () => {
    const b = bucket({ remaining: 12_300_000, used: 17_700_000, expiresAt: '2026-12-25T00:00:00.000Z' });
    assert.equal(describeBucket(b, NOW), '12.3M of 30M tokens left, expires 2026-12-25');
  });

  test('a wallet says what is left in money, without a pointless "never expires"', () => {
    const b = bucket({ unit: 'money', currency: 'CNY', kind: 'wallet', granted: 1000, remaining: 850, used: 150 });
    assert.equal(describeBucket(b, NOW), '8.50 CNY left');
  });

  test('holds, model restrictions, future starts and expiry are spelled out', () => {
    const b = bucket({ reserved: 200_000, models: ['glm-5'], effectiveAt: '2026-12-01T00:00:00.000Z' });
    assert.equal(describeBucket(b, NOW), '30M of 30M tokens left, starts 2026-12-01, 200K tokens held by requests in flight, only for glm-5');
    assert.equal(
      describeBucket(bucket({ expired: true, remaining: 0, expiresAt: '2026-11-01T00:00:00.000Z' }), NOW),
      '0 of 30M tokens left, expired 2026-11-01',
    );
  });

  test('the spendable summary adds live buckets per unit and skips expired or future ones', () => {
    const buckets = [
      bucket({ remaining: 10_000_000 }),
      bucket({ remaining: 2_300_000, kind: 'addon' }),
      bucket({ remaining: 5_000_000, expired: true }),
      bucket({ remaining: 5_000_000, effectiveAt: '2027-01-01T00:00:00.000Z' }),
      bucket({ unit: 'money', currency: 'CNY', kind: 'wallet', remaining: 850, granted: 850 }),
    ];
    assert.equal(spendableSummary(buckets, NOW), '12.3M tokens and 8.50 CNY');
    assert.equal(spendableSummary([], NOW), 'nothing');
  });
});

describe('tables and CSV', () => {
  test('table columns are padded to the widest cell with no trailing blanks', () => {
    assert.equal(
      formatTable(
        ['ID', 'NAME'],
        [
          ['a', 'x'],
          ['long-id', 'y'],
        ],
      ),
      'ID       NAME\na        x\nlong-id  y',
    );
  });

  test('CSV quotes fields with commas, quotes and line breaks', () => {
    assert.equal(
      toCsv(
        ['a', 'b'],
        [
          ['x,y', 'say "hi"'],
          [1, null],
        ],
      ),
      'a,b\r\n"x,y","say ""hi"""\r\n1,\r\n',
    );
  });
});
