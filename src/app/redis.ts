/**
 * Redis for many nodes (issue 15 item 2), wired when TOKENGRID_REDIS_URL is set: the shared `RedisLimiter` (its
 * fallback is this node's own `RateLimiter`) and the pub/sub `RedisChangeFeed`. Redis is not the system of record:
 * when it cannot be reached at start the node starts with per-node limits and the in-process feed (logged at
 * error), and the periodic refreshes remain the backstop.
 */
import type { Redis } from 'ioredis';
import type { Clock, ChangeFeed } from '../core/index.ts';
import { MemoryChangeFeed } from '../core/index.ts';
import { RateLimiter, type Limiter } from '../gateway/index.ts';
import { connectRedis, normalizePrefix, RedisChangeFeed, RedisLimiter } from '../store/redis/index.ts';

export interface RedisServices {
  limiter: Limiter;
  changeFeed: ChangeFeed;
  /** True when both run on Redis (false: Redis was unreachable at start, per-node fallbacks). */
  shared: boolean;
  close(): Promise<void>;
}

export async function openRedisServices(opts: {
  url: string;
  prefix: string | undefined;
  nodeId: string;
  clock: Clock;
  /** A Redis failure sent requests to the per-node limiter (count it, warn). */
  onFallback: (err: unknown) => void;
  log: (level: 'warn' | 'error', obj: object, msg: string) => void;
}): Promise<RedisServices> {
  const prefix = normalizePrefix(opts.prefix);
  let commands: Redis;
  let subscriber: Redis;
  try {
    commands = await connectRedis(opts.url, { name: `tokengrid:${opts.nodeId}` });
    subscriber = await connectRedis(opts.url, { name: `tokengrid:${opts.nodeId}:changes`, commandTimeoutMs: 5_000 });
  } catch (e) {
    opts.log('error', { err: e }, 'Redis unreachable at start: rate limits are per node and changes are not shared until restart');
    return { limiter: new RateLimiter(), changeFeed: new MemoryChangeFeed(opts.nodeId), shared: false, close: async () => {} };
  }
  const limiter = new RedisLimiter({ redis: commands, clock: opts.clock, prefix, onFallback: opts.onFallback });
  const changeFeed = await RedisChangeFeed.open({
    publisher: commands,
    subscriber,
    nodeId: opts.nodeId,
    prefix,
    onError: (err) => opts.log('warn', { err }, 'change feed: a handler failed or a message was malformed'),
  });
  return {
    limiter,
    changeFeed,
    shared: true,
    async close() {
      limiter.close();
      await changeFeed.close();
      subscriber.disconnect();
      commands.disconnect();
    },
  };
}
