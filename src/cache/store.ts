import type { Clock } from '../core/index.ts';
import type { ChatResponse } from '../wire/index.ts';

/** One cached answer: the canonical answer (its usage the one charged), its vendor cost, and when it expires. */
export interface CachedAnswer {
  answer: ChatResponse;
  /** What the vendor charged for the original answer (micros): the saving of each hit. */
  vendorCostMicros: number;
  expiresAtMs: number;
}

/**
 * Where cached answers live (port): in-process by default (MemoryResponseCache), Redis when configured for many
 * nodes (store/redis/response-cache.ts). Keys are per account; `hash` is responseCacheKey's. A backend that fails
 * is a miss, never an error to the client (the stage catches).
 */
export interface ResponseCachePort {
  get(accountId: string, hash: string): Promise<CachedAnswer | undefined>;
  set(accountId: string, hash: string, entry: CachedAnswer): Promise<void>;
  close?(): Promise<void>;
}

/** Serialized once; the size bound counts these bytes (UTF-16 length is close enough to bound memory). */
export function encodeEntry(e: CachedAnswer): string {
  return JSON.stringify(e);
}

export function decodeEntry(text: string): CachedAnswer | undefined {
  try {
    const v = JSON.parse(text) as CachedAnswer;
    return typeof v === 'object' && v !== null && typeof v.expiresAtMs === 'number' && typeof v.answer === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The in-process cache: once `maxBytes` is reached, the least recently used entry of the account holding the most
 * bytes goes first (with one account, plain LRU; with many, a tenant filling the cache evicts its own answers, not
 * everyone's); an entry expires at its `expiresAtMs` on the injected clock. Entries are stored serialized, so a
 * caller can never mutate a cached answer.
 */
export class MemoryResponseCache implements ResponseCachePort {
  /** Per account: hash -> serialized entry, least recently used first. */
  readonly #accounts = new Map<string, { entries: Map<string, string>; bytes: number }>();
  #bytes = 0;
  #size = 0;
  constructor(
    readonly clock: Clock,
    readonly maxBytes: number,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#size;
  }

  async get(accountId: string, hash: string): Promise<CachedAnswer | undefined> {
    const a = this.#accounts.get(accountId);
    const text = a?.entries.get(hash);
    if (a === undefined || text === undefined) return undefined;
    const e = decodeEntry(text);
    if (e === undefined || e.expiresAtMs <= this.clock.nowMs()) {
      this.#delete(accountId, a, hash, text);
      return undefined;
    }
    // Most recently used last.
    a.entries.delete(hash);
    a.entries.set(hash, text);
    return e;
  }

  async set(accountId: string, hash: string, entry: CachedAnswer): Promise<void> {
    const text = encodeEntry(entry);
    if (text.length > this.maxBytes) return;
    let a = this.#accounts.get(accountId);
    if (a === undefined) this.#accounts.set(accountId, (a = { entries: new Map(), bytes: 0 }));
    const old = a.entries.get(hash);
    if (old !== undefined) this.#delete(accountId, a, hash, old);
    if (!this.#accounts.has(accountId)) this.#accounts.set(accountId, a);
    a.entries.set(hash, text);
    a.bytes += text.length;
    this.#bytes += text.length;
    this.#size++;
    while (this.#bytes > this.maxBytes) {
      let heaviest: string | undefined;
      let most = -1;
      for (const [id, x] of this.#accounts) {
        if (x.bytes > most) {
          most = x.bytes;
          heaviest = id;
        }
      }
      const h = this.#accounts.get(heaviest!)!;
      const [k, v] = h.entries.entries().next().value as [string, string];
      this.#delete(heaviest!, h, k, v);
    }
  }

  #delete(accountId: string, a: { entries: Map<string, string>; bytes: number }, hash: string, text: string): void {
    a.entries.delete(hash);
    a.bytes -= text.length;
    this.#bytes -= text.length;
    this.#size--;
    if (a.entries.size === 0) this.#accounts.delete(accountId);
  }
}
