import { randomBytes } from 'node:crypto';

/** Randomness is a port so routing choices and ids are reproducible in tests. */
export interface Random {
  /** Uniform in [0, 1). */
  float(): number;
  /** n random bytes (crypto-strength only from cryptoRandom). */
  bytes(n: number): Buffer;
}

/** Crypto-strength bytes served from a pooled buffer: one randomBytes call per 4 KiB instead of per id. */
const POOL_BYTES = 4096;
let pool = randomBytes(POOL_BYTES);
let poolOffset = 0;
function pooledBytes(n: number): Buffer {
  if (n > POOL_BYTES / 4) return randomBytes(n);
  if (poolOffset + n > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  // A copy, so a caller that keeps the bytes (a key) never shares memory with later callers (copy() spares the
  // view that subarray() would allocate).
  const out = Buffer.allocUnsafe(n);
  pool.copy(out, 0, poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

export const cryptoRandom: Random = {
  float: () => pooledBytes(4).readUInt32BE(0) / 0x1_0000_0000,
  bytes: pooledBytes,
};

/** Deterministic PRNG (mulberry32) for tests and simulations. Never for secrets. */
export class SeededRandom implements Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  float(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.float() * 256);
    return b;
  }
}
