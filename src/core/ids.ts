import type { Clock } from './clock.ts';
import type { Random } from './random.ts';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

/** Prefixed, time-sortable ids: `acct_`, `key_`, `req_`, `rsv_`, `bkt_`, ... */
export interface IdGenerator {
  next(prefix: string): string;
}

function encodeTime(ms: number): string {
  let out = '';
  let t = Math.floor(ms);
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

export function createIdGenerator(clock: Clock, random: Random): IdGenerator {
  let lastMs = -1;
  let lastTime = '';
  let counter = 0;
  return {
    next(prefix: string): string {
      const ms = clock.nowMs();
      // A counter keeps ids strictly increasing within one millisecond.
      if (ms === lastMs) {
        counter++;
      } else {
        counter = 0;
        lastMs = ms;
        lastTime = encodeTime(ms);
      }
      const rnd = random.bytes(6);
      let tail = '';
      for (let i = 0; i < rnd.length; i++) tail += ALPHABET[rnd[i]! % 32];
      return `${prefix}_${lastTime}${counter.toString(32).padStart(3, '0')}${tail}`;
    },
  };
}
