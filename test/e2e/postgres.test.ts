/**
 * The server on PostgreSQL (TOKENGRID_DATABASE_URL): two nodes (two apps in this process, each with its own data
 * folder, as two machines would have) on one database. A key made on one node serves on the other, a request
 * charged on one is seen by the other, and a key revoked on one is refused by the other within a second
 * (LISTEN/NOTIFY). The multi-process test with real processes is test/multinode (another helper's).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditAccount } from '../../src/charging/index.ts';
import { PG_TEST_URL, testSchemaName } from '../../src/store/postgres/test-support.ts';
import { connectPostgres } from '../../src/store/postgres/db.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const schema = testSchemaName();
const env = { TOKENGRID_DATABASE_URL: `${PG_TEST_URL}?schema=${schema}` };
let a: TestServer;
let b: TestServer;
before(async () => {
  a = await startTestServer({ env });
  b = await startTestServer({ env }); // a second node's first start: its data folder is new, the database is not
});
after(async () => {
  await b?.close();
  await a?.close();
  const db = await connectPostgres(PG_TEST_URL, { schema });
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.close();
});

async function chat(srv: TestServer, key: string): Promise<Response> {
  return fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'deepseek-v3.2', max_tokens: 20, messages: [{ role: 'user', content: 'hello there' }] }),
  });
}

describe('two nodes on one PostgreSQL database', () => {
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
