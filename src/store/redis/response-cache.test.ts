import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CachedAnswer } from '../../cache/index.ts';
import { ManualClock } from '../../core/index.ts';
import { RedisResponseCache } from './response-cache.ts';
import { testRedis } from './test-kit.ts';

const redis = await testRedis();
const skip = typeof redis === 'string' ? redis : false;

const entry = (text: string, expiresAtMs: number): CachedAnswer => ({
  answer: {
    id: 'a',
    model: 'm',
    createdS: 0,
    content: [{ type: 'text', text }],
    finishReason: 'stop',
    usage: { tokensInput: 1, tokensOutput: 1, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 },
  },
  vendorCostMicros: 7,
  expiresAtMs,
});

describe('the Redis response cache', { skip }, () => {
  after(async () => {
    if (typeof redis !== 'string') await redis.cleanup();
  });

  test('keeps its entries under TOKENGRID_REDIS_PREFIX, so two deployments sharing one Redis never share answers', async () => {
    if (typeof redis === 'string') return;
    const r = await redis.connect();
    const clock = new ManualClock(1_000);
    const staging = new RedisResponseCache({ redis: r, clock, prefix: `${redis.prefix}staging:` });
    const prod = new RedisResponseCache({ redis: r, clock, prefix: `${redis.prefix}prod:` });
    await staging.set('acct_same', 'h1', entry('staging answer', 60_000));
    assert.equal((await staging.get('acct_same', 'h1'))?.answer.content[0]?.type, 'text');
    assert.equal(await prod.get('acct_same', 'h1'), undefined, "another deployment's prefix does not see the entry");
    assert.deepEqual(await r.keys(`${redis.prefix}staging:{acct_same}:cache:*`), [`${redis.prefix}staging:{acct_same}:cache:h1`]);
    assert.deepEqual(await r.keys('tg:{acct_same}:*'), [], 'nothing written outside the prefix');
  });
});
