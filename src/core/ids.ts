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

/** Number#toString(32)'s digits, for the in-millisecond counter. */
const BASE32 = '0123456789abcdefghijklmnopqrstuv';
const ALPHABET_CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
const BASE32_CODES = Uint8Array.from(BASE32, (c) => c.charCodeAt(0));
const FAST_PREFIX = /^[\x21-\x7e]{1,64}$/;

export function createIdGenerator(clock: Clock, random: Random): IdGenerator {
  let lastMs = -1;
  let lastTime = '';
  let counter = 0;
  // An id is written into this buffer and read out as one flat string: several ids are made per request, and
  // the template below builds about ten intermediate strings per id.
  const scratch = Buffer.allocUnsafe(64 + 1 + 10 + 3 + 6);
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
      if (counter >= 32 * 32 * 32 || !FAST_PREFIX.test(prefix)) {
        let tail = '';
        for (let i = 0; i < rnd.length; i++) tail += ALPHABET[rnd[i]! % 32];
        return `${prefix}_${lastTime}${counter.toString(32).padStart(3, '0')}${tail}`;
      }
      // The same characters as above, for a printable ASCII prefix and a three-digit counter.
      let n = scratch.write(prefix, 0, 'latin1');
      scratch[n++] = 0x5f; // _
      n += scratch.write(lastTime, n, 'latin1');
      scratch[n++] = BASE32_CODES[counter >> 10]!;
      scratch[n++] = BASE32_CODES[(counter >> 5) & 31]!;
      scratch[n++] = BASE32_CODES[counter & 31]!;
      for (let i = 0; i < 6; i++) scratch[n++] = ALPHABET_CODES[rnd[i]! % 32]!;
      return scratch.toString('latin1', 0, n);
    },
  };
}
