/**
 * Attacks on the many-node engine (issue 15 review): two nodes (two apps in this process) on one PostgreSQL schema of
 * their own. A client retrying with the same Idempotency-Key on another node, a tenant admin sending the same order to
 * two nodes at once, and an operator's bad database URL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PG_TEST_URL, skipWithoutPostgres, testSchemaName } from '../../src/store/postgres/test-support.ts';
import { connectPostgres } from '../../src/store/postgres/db.ts';
import { testRedis } from '../../src/store/redis/test-kit.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const skip = await skipWithoutPostgres();
const redis = await testRedis();

async function usageCount(srv: TestServer, accountId: string): Promise<number> {
  return (await srv.app.chargingStore.listUsage(accountId, 0, Date.now() + 86_400_000)).length;
}

describe('two nodes on one PostgreSQL schema, attacked', { skip }, () => {
  const schema = testSchemaName();
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    const env = { TOKENGRID_DATABASE_URL: `${PG_TEST_URL}?schema=${schema}` };
    a = await startTestServer({ env });
    b = await startTestServer({ env });
  });
  after(async () => {
    await b?.close();
    await a?.close();
    const db = await connectPostgres(PG_TEST_URL, { schema });
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.close();
  });

  const infer = (srv: TestServer, idem: string, body: Record<string, unknown>) =>
    fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.demoKey}`, 'content-type': 'application/json', 'idempotency-key': idem },
      body: JSON.stringify(body),
    });

  test('a request retried with the same Idempotency-Key on another node is replayed, not run and charged again', async () => {
    const body = { model: 'deepseek-v3.2', max_tokens: 20, messages: [{ role: 'user', content: 'hello there' }] };
    const before = await usageCount(a, a.demoAccountId);
    const first = await infer(a, 'atk-retry-1', body);
    assert.equal(first.status, 200, await first.clone().text());
    const firstBody = await first.text();
    const retry = await infer(b, 'atk-retry-1', body); // the load balancer sent the client's retry to the other node
    assert.equal(retry.status, 200);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(await retry.text(), firstBody, 'the retry replays the first answer byte for byte');
    assert.equal(await usageCount(a, a.demoAccountId), before + 1, 'one usage record for one logical request');
    const other = await infer(b, 'atk-retry-1', { ...body, messages: [{ role: 'user', content: 'something else' }] });
    assert.equal(other.status, 409);
    assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'idempotency_key_reused', 'another body: 409 on any node');
  });

  test('a duplicate sent to node B while node A still runs the request waits for it and replays its answer', async () => {
    // slow-stream answers a non-streamed request after its last chunk would have streamed (~20 ms a token).
    const body = { model: 'slow-stream', max_tokens: 40, messages: [{ role: 'user', content: 'once only, across nodes' }] };
    const before = await usageCount(a, a.demoAccountId);
    const [one, two] = await Promise.all([
      infer(a, 'atk-concurrent-1', body),
      new Promise((r) => setTimeout(r, 150)).then(() => infer(b, 'atk-concurrent-1', body)),
    ]);
    assert.equal(one.status, 200, await one.clone().text());
    assert.equal(two.status, 200, await two.clone().text());
    assert.equal(two.headers.get('idempotent-replayed'), 'true', 'node B waited for node A and replayed');
    assert.equal(await two.text(), await one.text());
    assert.equal(await usageCount(a, a.demoAccountId), before + 1, 'charged once');
  });

  test('a streamed duplicate on node B while node A streams gets 409 idempotency_in_progress', async () => {
    const body = { model: 'slow-stream', stream: true, max_tokens: 30, messages: [{ role: 'user', content: 'stream once' }] };
    const first = await infer(a, 'atk-stream-1', body);
    assert.equal(first.status, 200);
    const reader = first.body!.getReader();
    await reader.read(); // node A's stream is running
    const dup = await infer(b, 'atk-stream-1', body);
    assert.equal(dup.status, 409);
    assert.equal(((await dup.json()) as { error: { code: string } }).error.code, 'idempotency_in_progress');
    while (!(await reader.read()).done) {}
    const after = await infer(b, 'atk-stream-1', body);
    assert.equal(after.status, 409, 'a completed stream is not replayed');
    assert.equal(((await after.json()) as { error: { code: string } }).error.code, 'idempotency_key_reused');
  });

  test('the same top-up order sent to both nodes at once is made once; both answers name the same order', async () => {
    const order = (srv: TestServer) =>
      fetch(`${srv.url}/admin/orders/topup`, {
        method: 'POST',
        headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'atk-topup-race' },
        body: JSON.stringify({ accountId: a.demoAccountId, amount: '1.00' }),
      });
    const walletBefore = (await a.app.chargingStore.listBuckets(a.demoAccountId)).find((x) => x.kind === 'wallet')?.amount ?? 0;
    const answers = await Promise.all([order(a), order(b), order(a), order(b)]);
    const bodies = await Promise.all(answers.map(async (r) => ({ status: r.status, body: (await r.json()) as { id?: string; error?: unknown } })));
    for (const x of bodies) assert.ok(x.status === 201 || x.status === 200, JSON.stringify(x));
    assert.equal(new Set(bodies.map((x) => x.body.id)).size, 1, JSON.stringify(bodies));
    const walletAfter = (await b.app.chargingStore.listBuckets(a.demoAccountId)).find((x) => x.kind === 'wallet')?.amount ?? 0;
    assert.equal(walletAfter - walletBefore, 100, 'credited once');
  });

  for (const [schema, why] of [
    ['Bad-Name', /bad PostgreSQL schema name "Bad-Name"/],
    ['information_schema', /PostgreSQL's own/],
    ['pg_catalog', /PostgreSQL's own/],
  ] as const) {
    test(`a database URL with ?schema=${schema} stops the start with one clear line (a ConfigError), creating nothing`, async () => {
      await assert.rejects(
        startTestServer({ env: { TOKENGRID_DATABASE_URL: `${PG_TEST_URL}?schema=${schema}` } }),
        (e: Error) => e.name === 'ConfigError' && /TOKENGRID_DATABASE_URL/.test(e.message) && why.test(e.message),
      );
    });
  }
});

describe('a node that could not reach Redis at start, next to one that did (same PostgreSQL)', {
  skip: skip || (typeof redis === 'string' ? redis : false),
}, () => {
  const schema = testSchemaName();
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    if (typeof redis === 'string') return;
    const db = `${PG_TEST_URL}?schema=${schema}`;
    a = await startTestServer({ env: { TOKENGRID_DATABASE_URL: db, TOKENGRID_REDIS_URL: redis.url, TOKENGRID_REDIS_PREFIX: redis.prefix } });
    // Redis was down when B started (port 1: refused): B runs with the PostgreSQL feed.
    b = await startTestServer({ env: { TOKENGRID_DATABASE_URL: db, TOKENGRID_REDIS_URL: 'redis://127.0.0.1:1', TOKENGRID_REDIS_PREFIX: redis.prefix } });
  });
  after(async () => {
    await b?.close();
    await a?.close();
    if (typeof redis !== 'string') await redis.cleanup();
    const db = await connectPostgres(PG_TEST_URL, { schema });
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.close();
  });

  test('a key revoked on the Redis node is refused by the other within a second', async () => {
    const chat = (srv: TestServer, key: string) =>
      fetch(`${srv.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'deepseek-v3.2', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
      });
    assert.equal((await chat(b, a.demoKey)).status, 200);
    const keyId = (await a.admin('GET', `/admin/keys?account=${a.demoAccountId}`)).body.data[0].id as string;
    assert.equal((await a.admin('POST', `/admin/keys/${keyId}/revoke`)).status, 200);
    const t0 = performance.now();
    while ((await chat(b, a.demoKey)).status !== 401) {
      assert.ok(performance.now() - t0 < 1500, 'B still accepts the key revoked on A after 1.5 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
