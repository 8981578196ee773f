import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthThrottle } from './auth-throttle.ts';

test('a source is blocked from its limit-th failure until its window ends; a burst is announced once', () => {
  const t = new AuthThrottle(3, 60_000);
  assert.equal(t.idle, true);
  assert.deepEqual(
    [1, 2, 3, 4].map(() => t.fail('a', 1000).burstStarted),
    [false, false, true, false],
  );
  assert.equal(t.blockedForS('a', 1000), 60);
  assert.equal(t.blockedForS('a', 31_000), 30);
  assert.equal(t.blockedForS('b', 1000), 0, 'another address is not affected');
  assert.equal(t.blockedForS('a', 61_000), 0, 'the window ended');
  assert.equal(t.fail('a', 61_000).failures, 1, 'a new window starts from zero');
});

test('the table stays bounded under failures from many addresses', () => {
  const t = new AuthThrottle(20, 60_000, 1000);
  for (let i = 0; i < 10_000; i++) t.fail(`10.0.${i >> 8}.${i & 255}`, i);
  t.fail('last', 10_000);
  assert.ok(t.blockedForS('last', 10_000) === 0);
  // Internals are private; the bound shows as old sources being forgotten.
  assert.equal(t.fail('10.0.0.0', 10_001).failures, 1);
});
