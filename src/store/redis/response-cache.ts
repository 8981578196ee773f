/**
 * The exact response cache in Redis (issue 17 item 4), for many gateway nodes: one string per answer under
 * `<prefix>{<accountId>}:cache:<sha256>` (prefix TOKENGRID_REDIS_PREFIX, default `tg:`) (the account is the Cluster hash tag, so one tenant's keys share a slot), set
 * with PX = the time left to its expiry. Redis bounds the memory (maxmemory with an LRU policy); an entry above
 * `maxEntryBytes` is not stored. The entry also carries its expiry, checked against the gateway's clock on read.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../core/index.ts';
import { decodeEntry, encodeEntry, type CachedAnswer, type ResponseCachePort } from '../../cache/index.ts';

export interface RedisResponseCacheOptions {
  redis: Redis;
  clock: Clock;
  /** TOKENGRID_REDIS_PREFIX, normalized (`normalizePrefix`; default `tg:`), as the limiter's and change feed's keys. */
  prefix?: string;
  /** Entries larger than this are not stored (default 1 MiB). */
  maxEntryBytes?: number;
}

export const responseCacheKeyOf = (accountId: string, hash: string, prefix = 'tg:'): string => `${prefix}{${accountId}}:cache:${hash}`;

export class RedisResponseCache implements ResponseCachePort {
  readonly #redis: Redis;
  readonly #clock: Clock;
  readonly #maxEntryBytes: number;
  readonly #prefix: string;
  constructor(o: RedisResponseCacheOptions) {
    this.#redis = o.redis;
    this.#clock = o.clock;
    this.#maxEntryBytes = o.maxEntryBytes ?? 1024 * 1024;
    this.#prefix = o.prefix ?? 'tg:';
  }

  async get(accountId: string, hash: string): Promise<CachedAnswer | undefined> {
    const text = await this.#redis.get(responseCacheKeyOf(accountId, hash, this.#prefix));
    if (text === null) return undefined;
    const e = decodeEntry(text);
    return e === undefined || e.expiresAtMs <= this.#clock.nowMs() ? undefined : e;
  }

  async set(accountId: string, hash: string, entry: CachedAnswer): Promise<void> {
    const ttl = entry.expiresAtMs - this.#clock.nowMs();
    const text = encodeEntry(entry);
    if (ttl <= 0 || Buffer.byteLength(text) > this.#maxEntryBytes) return;
    await this.#redis.set(responseCacheKeyOf(accountId, hash, this.#prefix), text, 'PX', Math.ceil(ttl));
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
