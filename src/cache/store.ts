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
 * The in-process cache: least recently used entries go first once `maxBytes` is reached; an entry expires at its
 * `expiresAtMs` on the injected clock. Entries are stored serialized, so a caller can never mutate a cached answer.
 */
export class MemoryResponseCache implements ResponseCachePort {
  readonly #map = new Map<string, string>();
  #bytes = 0;
  constructor(
    readonly clock: Clock,
    readonly maxBytes: number,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#map.size;
  }

  async get(accountId: string, hash: string): Promise<CachedAnswer | undefined> {
    const key = `${accountId}:${hash}`;
    const text = this.#map.get(key);
    if (text === undefined) return undefined;
    const e = decodeEntry(text);
    if (e === undefined || e.expiresAtMs <= this.clock.nowMs()) {
      this.#delete(key, text);
      return undefined;
    }
    // Most recently used last.
    this.#map.delete(key);
    this.#map.set(key, text);
    return e;
  }

  async set(accountId: string, hash: string, entry: CachedAnswer): Promise<void> {
    const key = `${accountId}:${hash}`;
    const text = encodeEntry(entry);
    if (text.length > this.maxBytes) return;
    const old = this.#map.get(key);
    if (old !== undefined) this.#delete(key, old);
    this.#map.set(key, text);
    this.#bytes += text.length;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.maxBytes) break;
      this.#delete(k, v);
    }
  }

  #delete(key: string, text: string): void {
    this.#map.delete(key);
    this.#bytes -= text.length;
  }
}
