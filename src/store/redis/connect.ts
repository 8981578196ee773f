import { Redis } from 'ioredis';

export interface RedisConnectOptions {
  /** Longest wait for one command before it fails (and the caller falls back); default 500 ms. */
  commandTimeoutMs?: number;
  /** A name shown by CLIENT LIST (e.g. `tokengrid:<node>:limits`). */
  name?: string;
}

/**
 * One ioredis connection for TokenGrid: commands fail at once while the server is unreachable (no offline queue,
 * so a request never waits for a reconnect: the caller falls back), reconnects forever with a short backoff, and
 * resolves once connected (rejects if the first connection fails).
 */
export async function connectRedis(url: string, opts: RedisConnectOptions = {}): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs ?? 500,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(50 * times, 1_000),
    ...(opts.name === undefined ? {} : { connectionName: opts.name }),
  });
  // Errors surface on the commands (and are counted there); an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw e;
  }
  return redis;
}

/** A key prefix as given, or `tg:`; it must end with ':' so that `<prefix>{<id>}:…` stays readable. */
export function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return 'tg:';
  return prefix.endsWith(':') ? prefix : `${prefix}:`;
}
