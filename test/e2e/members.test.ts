import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../support/server.ts';

test("a family plan's member limit is enforced when members are added, with a clear 422", async () => {
  const srv = await startTestServer();
  try {
    const acct = (await srv.admin('POST', '/admin/accounts', { name: 'The Lis', kind: 'family' })).body;
    const sub = await fetch(`${srv.url}/admin/subscriptions`, {
      method: 'POST',
      body: JSON.stringify({ accountId: acct.id, offerId: 'ct-personal-light' }),
      headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'family-1' },
    });
    assert.equal(sub.status, 201, await sub.clone().text());
    for (const name of ['Mum', 'Dad', 'Xiaoming']) assert.equal((await srv.admin('POST', `/admin/accounts/${acct.id}/members`, { name })).status, 201);
    const fourth = await srv.admin('POST', `/admin/accounts/${acct.id}/members`, { name: 'Grandma' });
    assert.equal(fourth.status, 422);
    assert.match(fourth.body.error.message, /allows 3 members/);
    assert.equal((await srv.admin('GET', `/admin/accounts/${acct.id}`)).body.members.length, 3, 'nothing was added');
    // An account without a plan has no member limit.
    const free = (await srv.admin('POST', '/admin/accounts', { name: 'no plan', kind: 'family' })).body;
    for (let i = 0; i < 4; i++) assert.equal((await srv.admin('POST', `/admin/accounts/${free.id}/members`, { name: `m${i}` })).status, 201);
  } finally {
    await srv.close();
  }
});
