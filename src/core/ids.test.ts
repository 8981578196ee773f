import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';
import { SeededRandom } from './random.ts';
import { createIdGenerator } from './ids.ts';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** The id as the generator's template spells it (prefix _ time counter random), built the plain way. */
function reference(prefix: string, ms: number, counter: number, rnd: Buffer): string {
  let time = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let tail = '';
  for (const b of rnd) tail += ALPHABET[b % 32];
  return `${prefix}_${time}${counter.toString(32).padStart(3, '0')}${tail}`;
}

test('ids written through the scratch buffer equal the template spelling, over counters, prefixes and time', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 26));
  const ids = createIdGenerator(clock, new SeededRandom(7));
  const mirror = new SeededRandom(7); // draws the same random bytes as the generator
  const prefixes = ['req', 'rsv', 'evt', 'a-very_long.prefix~0123456789', 'ünicode', 'with space'];
  let counter = 0;
  let lastMs = -1;
  for (let i = 0; i < 40_000; i++) {
    if (i % 35_000 === 0) clock.advance(1); // 35,000 ids in one millisecond: counters past the three-digit fast path
    const ms = clock.nowMs();
    counter = ms === lastMs ? counter + 1 : 0;
    lastMs = ms;
    const prefix = prefixes[i % prefixes.length]!;
    assert.equal(ids.next(prefix), reference(prefix, ms, counter, mirror.bytes(6)));
  }
});
