/**
 * The server on PostgreSQL (TOKENGRID_DATABASE_URL): two nodes (two apps in this process, each with its own data
 * folder, as two machines would have) on one database, once with PostgreSQL alone (changes by LISTEN/NOTIFY) and
 * once with Redis too (limits and changes on Redis). A key made on one node serves on the other, a request charged
 * on one is seen by the other, an order made on one shows on the other, and a key revoked on one is refused by the
 * other within a second. The multi-process test with real processes is another helper's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditAccount } from '../../src/charging/index.ts';
import { PG_TEST_URL, skipWithoutPostgres, testSchemaName } from '../../src/store/postgres/test-support.ts';
import { connectPostgres } from '../../src/store/postgres/db.ts';
import { testRedis } from '../../src/store/redis/test-kit.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const skip = await skipWithoutPostgres();
const redis = await testRedis();

async function chat(srv: TestServer, key: string): Promise<Response> {
  return fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'deepseek-v3.2', max_tokens: 20, messages: [{ role: 'user', content: 'hello there' }] }),
  });
}

function twoNodes(label: string, skipReason: string | false, extraEnv: () => Record<string, string>, redisKeyPrefix?: string): void {
  describe(`two nodes on one PostgreSQL database (${label})`, { skip: skipReason }, () => {
    const schema = testSchemaName();
    let a: TestServer;
    let b: TestServer;
    before(async () => {
      const env = { TOKENGRID_DATABASE_URL: `${PG_TEST_URL}?schema=${schema}`, ...extraEnv() };
      const o = redisKeyPrefix === undefined ? { env } : { env, redisKeyPrefix };
      a = await startTestServer(o);
      b = await startTestServer(o); // a second node's first start: its data folder is new, the database is not
    });
    after(async () => {
      await b?.close();
      await a?.close();
      const db = await connectPostgres(PG_TEST_URL, { schema });
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    });

    test('the app runs on PostgreSQL: no SQLite database is opened for its stores', () => {
      assert.equal(a.app.db, undefined);
    });

    test('the demo account is created once per database, not once per node', async () => {
      assert.notEqual(a.demoKey, '');
      assert.equal(b.demoKey, '', 'node B joined an existing database');
      const accounts = await b.admin('GET', '/admin/accounts');
      assert.equal(accounts.body.data.filter((x: { name: string }) => x.name === 'Demo account').length, 1);
    });

    test('an unreachable database stops the start with one line naming it (a ConfigError, password hidden)', async () => {
      await assert.rejects(
        startTestServer({ env: { TOKENGRID_DATABASE_URL: 'postgres://tg:s3cret@127.0.0.1:1/tokengrid' } }),
        (e: Error) =>
          e.name === 'ConfigError' &&
          /Cannot reach the PostgreSQL database postgres:\/\/tg:\*\*\*@127\.0\.0\.1:1\/tokengrid/.test(e.message) &&
          !e.message.includes('s3cret'),
      );
    });

    test('a key created on node A serves on node B, and B’s charge shows in A’s balance', async () => {
      const res = await chat(b, a.demoKey);
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
      const bal = await a.admin('GET', `/admin/accounts/${a.demoAccountId}/balance`);
      const used = bal.body.buckets.reduce((s: number, x: { used: number }) => s + x.used, 0);
      assert.equal(used, body.usage.prompt_tokens + body.usage.completion_tokens);
      assert.deepEqual((await auditAccount(a.app.chargingStore, a.demoAccountId)).problems, []);
      // The hot path's counters are in /metrics: node B charged through PostgreSQL, and no optimistic decision was
      // refused for another reason than a stale version (a backstop is a bug to look at).
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      const count = (kind: string): number => Number(new RegExp(`^tokengrid_pg_charging_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? -1);
      assert.ok(
        count('ops') > 0 && count('round_trips') >= count('ops'),
        metrics
          .split('\n')
          .filter((l) => l.includes('pg_charging'))
          .join('\n'),
      );
      assert.equal(count('backstop'), 0);
    });

    test('a top-up ordered on node A (one billing transaction with its wallet credit) shows on node B with the credited wallet', async () => {
      const order = async (srv: TestServer) =>
        fetch(`${srv.url}/admin/orders/topup`, {
          method: 'POST',
          headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'pg-topup-1' },
          body: JSON.stringify({ accountId: a.demoAccountId, amount: '12.34' }),
        });
      const first = await order(a);
      assert.equal(first.status, 201, await first.clone().text());
      const listed = await b.admin('GET', `/admin/orders?account=${a.demoAccountId}`);
      assert.ok(
        listed.body.data.some((o: { idempotencyKey: string; amountMinor: number }) => o.idempotencyKey === 'pg-topup-1' && o.amountMinor === 1234),
        'node B lists the order',
      );
      const wallet = (await b.app.chargingStore.listBuckets(a.demoAccountId)).find((x) => x.kind === 'wallet');
      assert.equal(wallet?.amount, 1000 + 1234, 'the demo 10.00 plus 12.34, in fen');
    });

    test('a key revoked on node A is refused by node B within a second', async () => {
      const k = await a.admin('POST', '/admin/keys', { accountId: a.demoAccountId });
      assert.equal(k.status, 201);
      // B learns of the new key through the change feed too.
      let status = 0;
      for (let i = 0; i < 20 && status !== 200; i++) {
        status = (await chat(b, k.body.key)).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 200, 'the new key serves on B');
      assert.equal((await a.admin('POST', `/admin/keys/${k.body.id}/revoke`)).status, 200);
      const t0 = performance.now();
      while ((await chat(b, k.body.key)).status !== 401) {
        assert.ok(performance.now() - t0 < 1000, 'B still accepts the revoked key after a second');
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

twoNodes('LISTEN/NOTIFY', skip, () => ({}));
twoNodes(
  'with Redis',
  skip || (typeof redis === 'string' ? redis : false),
  (): Record<string, string> => {
    if (typeof redis === 'string') return {};
    return { TOKENGRID_REDIS_URL: redis.url, TOKENGRID_REDIS_PREFIX: redis.prefix };
  },
  typeof redis === 'string' ? undefined : redis.prefix,
);
after(async () => {
  if (typeof redis !== 'string') await redis.cleanup();
});
