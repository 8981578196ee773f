export { connectRedis, normalizePrefix, type RedisConnectOptions } from './connect.ts';
export { RedisLimiter, type RedisLimiterOptions } from './limiter.ts';
export { RedisChangeFeed, type RedisChangeFeedOptions } from './change-feed.ts';
