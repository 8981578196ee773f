/**
 * For tests over the real Redis (127.0.0.1:6379, or TOKENGRID_TEST_REDIS_URL): a connection and a random key
 * prefix per test file, and the cleanup. Without a reachable Redis the tests skip with a message, except under CI
 * (`CI=true`), where a missing service fails the run (docs in /work/shared/services.md: `.ci/run` starts it).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { connectRedis } from './connect.ts';

export const TEST_REDIS_URL = process.env.TOKENGRID_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestRedis {
  url: string;
  prefix: string;
  connect(): Promise<Redis>;
  /** Deletes every key under the prefix and closes the connections opened by connect(). */
  cleanup(): Promise<void>;
}

/** The test Redis, or a skip reason (a string) when it is not reachable outside CI. */
export async function testRedis(): Promise<TestRedis | string> {
  let probe: Redis;
  try {
    probe = await connectRedis(TEST_REDIS_URL, { commandTimeoutMs: 2_000 });
  } catch (e) {
    const why = `Redis is not reachable at ${TEST_REDIS_URL} (${(e as Error).message})`;
    if (process.env.CI === 'true') throw new Error(`${why}: CI needs it (.ci/run starts it)`);
    return `${why}; start it (see .ci/run) to run these tests`;
  }
  const prefix = `tgtest${randomBytes(6).toString('hex')}:`;
  const opened: Redis[] = [probe];
  return {
    url: TEST_REDIS_URL,
    prefix,
    async connect() {
      const r = await connectRedis(TEST_REDIS_URL, { commandTimeoutMs: 2_000 });
      opened.push(r);
      return r;
    },
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await probe.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await probe.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      for (const r of opened) r.disconnect();
    },
  };
}
