import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { testRedis, type TestRedis } from '../../src/store/redis/test-kit.ts';

// The same behaviour with the per-node limiter and with limits shared on Redis (TOKENGRID_REDIS_URL, issue 15).
const redisEnv = await testRedis();
const variants: { name: string; skip: string | false; env: () => Record<string, string> }[] = [
  { name: 'per-node limiter', skip: false, env: () => ({}) },
  {
    name: 'limits shared on Redis',
    skip: typeof redisEnv === 'string' ? redisEnv : false,
    env: () => ({ TOKENGRID_REDIS_URL: (redisEnv as TestRedis).url, TOKENGRID_REDIS_PREFIX: (redisEnv as TestRedis).prefix }),
  },
];

for (const variant of variants)
  describe(variant.name, { skip: variant.skip }, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ env: variant.env() });
    });
    after(async () => {
      await srv.close();
      if (variant.env().TOKENGRID_REDIS_URL !== undefined) await (redisEnv as TestRedis).cleanup();
    });

    function chat(key: string, model = 'deepseek-v3.2', stream = false): Promise<Response> {
      return fetch(`${srv.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
      });
    }

    test('a key over its requests-per-minute limit gets 429 rate_limited with retry-after, and nothing is charged', async () => {
      const k = await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId, limits: { requestsPerMinute: 2 } });
      assert.equal((await chat(k.body.key)).status, 200);
      assert.equal((await chat(k.body.key)).status, 200);
      const before = srv.app.emulator!.stats().requests;
      const third = await chat(k.body.key);
      assert.equal(third.status, 429);
      const body = (await third.json()) as any;
      assert.equal(body.error.code, 'rate_limited');
      assert.match(body.error.message, /2 requests per minute/);
      assert.ok(Number(third.headers.get('retry-after')) >= 1);
      assert.equal(srv.app.emulator!.stats().requests, before, 'refused before any upstream call');
      assert.equal((await chat(srv.demoKey)).status, 200, 'other keys of the account are not limited');
    });

    test("a plan's concurrency limit is shared by all keys of the account", async () => {
      const acct = (await srv.admin('POST', '/admin/accounts', { name: 'plan limits' })).body;
      const topup = await fetch(`${srv.url}/admin/orders/topup`, {
        method: 'POST',
        body: JSON.stringify({ accountId: acct.id, amount: '50.00' }),
        headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'rl-topup' },
      });
      assert.equal(topup.status, 201, await topup.clone().text());
      const sub = await fetch(`${srv.url}/admin/subscriptions`, {
        method: 'POST',
        body: JSON.stringify({ accountId: acct.id, offerId: 'ct-personal-light' }),
        headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'rl-sub' },
      });
      assert.equal(sub.status, 201, await sub.clone().text());
      const k1 = (await srv.admin('POST', '/admin/keys', { accountId: acct.id })).body.key;
      const k2 = (await srv.admin('POST', '/admin/keys', { accountId: acct.id })).body.key;
      await srv.app.refreshPlanLimits();
      // The plan allows 4 concurrent requests: hold 4 slow streams open across two keys.
      const open = await Promise.all([
        chat(k1, 'slow-stream', true),
        chat(k1, 'slow-stream', true),
        chat(k2, 'slow-stream', true),
        chat(k2, 'slow-stream', true),
      ]);
      for (const r of open) assert.equal(r.status, 200, r.status === 200 ? '' : await r.text());
      const fifth = await chat(k2, 'slow-stream', true);
      assert.equal(fifth.status, 429);
      assert.match(((await fifth.json()) as any).error.message, /concurrent/);
      await Promise.all(open.map((r) => r.text()));
      const after = await chat(k2, 'slow-stream', true);
      assert.equal(after.status, 200, after.status === 200 ? '' : await after.text());
      after.body?.cancel();
    });
  });
