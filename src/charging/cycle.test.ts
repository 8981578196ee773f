import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cycleIndexAt, cycleStartMs } from './cycle.ts';

const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

describe('cycles', () => {
  test('a monthly cycle anchored on the 31st renews on the last day of short months and returns to the 31st', () => {
    const a = Date.UTC(2026, 0, 31);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => iso(cycleStartMs(a, 'month', i))),
      ['2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30'],
    );
  });

  test('leap years: Jan 31 -> Feb 29 in 2028; a yearly cycle anchored on Feb 29 renews on Feb 28', () => {
    assert.equal(iso(cycleStartMs(Date.UTC(2028, 0, 31), 'month', 1)), '2028-02-29');
    const leap = Date.UTC(2028, 1, 29);
    assert.deepEqual(
      [0, 1, 4].map((i) => iso(cycleStartMs(leap, 'year', i))),
      ['2028-02-29', '2029-02-28', '2032-02-29'],
    );
  });

  test('the time of day of the anchor is kept', () => {
    const a = Date.UTC(2026, 0, 15, 8, 30);
    assert.equal(cycleStartMs(a, 'month', 1), Date.UTC(2026, 1, 15, 8, 30));
    assert.equal(cycleStartMs(a, 'day', 2), Date.UTC(2026, 0, 17, 8, 30));
  });

  test('cycleIndexAt is the cycle whose window contains the instant (start inclusive)', () => {
    const a = Date.UTC(2026, 0, 31);
    for (let i = -3; i < 30; i++) {
      const s = cycleStartMs(a, 'month', i);
      assert.equal(cycleIndexAt(a, 'month', s), i);
      assert.equal(cycleIndexAt(a, 'month', s - 1), i - 1);
    }
    assert.equal(cycleIndexAt(Date.UTC(2028, 1, 29), 'year', Date.UTC(2029, 1, 27)), 0);
    assert.equal(cycleIndexAt(Date.UTC(2028, 1, 29), 'year', Date.UTC(2029, 1, 28)), 1);
    assert.equal(cycleIndexAt(0, 'day', -1), -1);
  });
});
