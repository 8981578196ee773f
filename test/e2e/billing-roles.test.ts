/** Admin roles: operator (everything), enterprise (only its accounts and their sub-accounts), finance (read-only). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
let n = 0;
before(async () => {
  srv = await startTestServer();
});
after(() => srv.close());

async function as(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'idempotency-key': `role-${++n}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

test('enterprise admins manage only their accounts; finance reads everything and writes nothing; keys can be revoked', async () => {
  const op = srv.adminKey;
  const mine = (await as(op, 'POST', '/admin/accounts', { name: 'Enterprise HQ', kind: 'team' })).body.id;
  const other = (await as(op, 'POST', '/admin/accounts', { name: 'Someone else' })).body.id;

  assert.equal((await as(op, 'POST', '/admin/admin-keys', { name: 'bad', role: 'enterprise' })).status, 400, 'an enterprise key needs accountIds');
  const ent = await as(op, 'POST', '/admin/admin-keys', { name: 'HQ admin', role: 'enterprise', accountIds: [mine] });
  assert.equal(ent.status, 201);
  assert.match(ent.body.key, /^tgadmin-/);
  assert.equal(ent.body.hash, undefined, 'the hash is never shown');
  const fin = (await as(op, 'POST', '/admin/admin-keys', { name: 'Finance', role: 'finance' })).body.key;
  const e = ent.body.key;

  assert.equal((await as(e, 'POST', '/admin/subscriptions', { accountId: mine, offerId: 'unicom-trial-30m' })).status, 201);
  const sub = (await as(e, 'POST', '/admin/accounts', { name: 'HQ branch', parentId: mine })).body.id;
  assert.equal((await as(e, 'GET', `/admin/accounts/${sub}`)).status, 200, 'sub-accounts are theirs too');
  assert.equal(
    (await as(e, 'POST', '/admin/orders/topup', { accountId: sub, amount: '5.00' })).status,
    403,
    'a top-up paid externally creates value: operator-only (SECURITY.md)',
  );
  assert.equal((await as(e, 'POST', '/admin/subscriptions', { accountId: other, offerId: 'unicom-trial-30m' })).status, 403);
  assert.equal((await as(e, 'GET', `/admin/bills?account=${other}`)).status, 403);
  assert.equal((await as(e, 'GET', `/admin/orders?account=${other}`)).status, 403);
  assert.equal((await as(e, 'GET', `/admin/orders?account=${mine}`)).status, 200);
  assert.equal((await as(e, 'POST', '/admin/codes', { offerId: 'bj-mobile-once', count: 1 })).status, 403, "codes are the operator's");
  assert.equal((await as(e, 'GET', '/admin/reports/margin')).status, 403);
  assert.equal((await as(e, 'POST', '/admin/bills/run', { period: '2020-01' })).status, 403);
  assert.equal((await as(e, 'POST', '/admin/admin-keys', { name: 'x', role: 'finance' })).status, 403);

  assert.equal((await as(fin, 'GET', '/admin/reports/margin')).status, 200);
  assert.equal((await as(fin, 'GET', '/admin/reports/vendor-settlement')).status, 200);
  assert.equal((await as(fin, 'GET', '/admin/bills')).status, 200);
  assert.equal((await as(fin, 'GET', `/admin/orders?account=${other}`)).status, 200);
  assert.equal((await as(fin, 'POST', '/admin/subscriptions', { accountId: other, offerId: 'unicom-trial-30m' })).status, 403, 'finance is read-only');
  assert.equal((await as(fin, 'POST', '/admin/orders/topup', { accountId: other, amount: '1.00' })).status, 403);

  const list = (await as(op, 'GET', '/admin/admin-keys')).body.data;
  assert.deepEqual(list.map((k: any) => k.role).sort(), ['enterprise', 'finance']);
  assert.equal((await as(op, 'POST', `/admin/admin-keys/${ent.body.id}/revoke`)).status, 200);
  assert.equal((await as(e, 'GET', `/admin/orders?account=${mine}`)).status, 401, 'a revoked admin key stops working');
});
