/**
 * Bad input on the billing admin API: each case answers a 4xx with a clear message, and nothing changes
 * (orders, subscriptions, balances are the same before and after).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { ManualClock } from '../../src/core/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const CATALOG = `
version: bad-input
currency: CNY
limits: { topupMax: "5000.00" }
defaults: { channel: phone_bill }
offers:
  big: { name: Big, type: plan, price: "50.00", cycle: month, allowance: { tokens: 100000 }, members: 10 }
  small: { name: Small, type: plan, price: "10.00", cycle: month, allowance: { tokens: 10 }, members: 10 }
  solo: { name: Solo, type: plan, price: "5.00", cycle: month, allowance: { tokens: 1000000 }, members: 1 }
  trial: { name: Trial, type: trial, allowance: { tokens: 1000 }, validityDays: 7 }
  pack: { name: Pack, type: pack, price: "5.99", allowance: { tokens: 2000 }, validityDays: 30 }
`;

const clock = new ManualClock('2026-03-10T00:00:00Z');
let srv: TestServer;
let n = 0;

before(async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, CATALOG);
  srv = await startTestServer({ clock, env: { TOKENGRID_OFFERS_FILE: file } });
});
after(() => srv.close());

async function call(method: string, path: string, body?: unknown, key: string | null = `bad-${++n}`): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${srv.adminKey}` };
  if (key !== null) headers['idempotency-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

async function account(name: string): Promise<string> {
  return (await call('POST', '/admin/accounts', { name }, null)).body.id;
}

/** Everything an order could change, for before/after comparison. */
async function snapshot(accountId: string): Promise<unknown> {
  const [orders, subs, balance, points] = await Promise.all([
    call('GET', `/admin/orders?account=${accountId}`, undefined, null),
    call('GET', `/admin/subscriptions?account=${accountId}`, undefined, null),
    call('GET', `/admin/accounts/${accountId}/balance`, undefined, null),
    call('GET', `/admin/accounts/${accountId}/points`, undefined, null),
  ]);
  return {
    orders: orders.body.data,
    subs: subs.body.data.map((s: any) => ({ ...s, updatedAt: null })),
    buckets: balance.body.buckets,
    points: points.body.points,
  };
}

async function refused(accountId: string, status: number, pattern: RegExp, attempt: () => Promise<{ status: number; body: any }>): Promise<void> {
  const before = await snapshot(accountId);
  const r = await attempt();
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.match(r.body.error.message, pattern);
  assert.deepEqual(await snapshot(accountId), before, 'nothing changed');
}

test('an unknown offer is a 404 that names the offers on sale', async () => {
  const a = await account('unknown offer');
  await refused(a, 404, /Unknown offer nope\. Offers on sale: big, small/, () => call('POST', '/admin/subscriptions', { accountId: a, offerId: 'nope' }));
  await refused(a, 404, /Unknown offer nope/, () => call('POST', `/admin/accounts/${a}/addons`, { offerId: 'nope' }));
});

test('a second trial is refused', async () => {
  const a = await account('trial twice');
  assert.equal((await call('POST', '/admin/subscriptions', { accountId: a, offerId: 'trial' })).status, 201);
  await refused(a, 422, /already took the trial trial .*offered once/, () => call('POST', '/admin/subscriptions', { accountId: a, offerId: 'trial' }));
});

test('a downgrade is refused while this cycle already used more than the new allowance, or members exceed it', async () => {
  const a = await account('downgrade');
  const created = await call('POST', '/admin/subscriptions', { accountId: a, offerId: 'big' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const sub = created.body;
  const key = (await call('POST', '/admin/keys', { accountId: a }, null)).body.key;
  await new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({
    model: 'deepseek-v3.2',
    max_tokens: 30,
    messages: [{ role: 'user', content: 'Tell me a story' }],
  });
  await refused(a, 422, /Cannot downgrade to small: this cycle already used \d+ tokens, more than the 10 it allows/, () =>
    call('POST', `/admin/subscriptions/${sub.id}/change`, { offerId: 'small' }),
  );
  await call('POST', `/admin/accounts/${a}/members`, { name: 'A' }, null);
  await call('POST', `/admin/accounts/${a}/members`, { name: 'B' }, null);
  await refused(a, 422, /has 2 members and solo allows 1/, () => call('POST', `/admin/subscriptions/${sub.id}/change`, { offerId: 'solo' }));
});

test('negative, malformed and absurd top-ups are refused', async () => {
  const a = await account('top-ups');
  assert.equal((await call('POST', '/admin/orders/topup', { accountId: a, amount: '10.00' })).status, 201);
  await refused(a, 400, /positive/, () => call('POST', '/admin/orders/topup', { accountId: a, amount: '-5.00' }));
  await refused(a, 400, /positive/, () => call('POST', '/admin/orders/topup', { accountId: a, amountMinor: 0 }));
  await refused(a, 400, /at most 2 places/, () => call('POST', '/admin/orders/topup', { accountId: a, amount: '1.234' }));
  await refused(a, 400, /like "10\.00"/, () => call('POST', '/admin/orders/topup', { accountId: a, amount: 'lots' }));
  await refused(a, 400, /exactly one of amount/, () => call('POST', '/admin/orders/topup', { accountId: a, amount: '1.00', amountMinor: 100 }));
  await refused(a, 422, /over the 5000\.00 CNY limit/, () => call('POST', '/admin/orders/topup', { accountId: a, amount: '100000000.00' }));
  await refused(a, 400, /amountMinor/, () => call('POST', '/admin/orders/topup', { accountId: a, amountMinor: 1.5 }));
});

test('reused, forged and malformed redemption codes are refused', async () => {
  const a = await account('codes A');
  const b = await account('codes B');
  const codes = (await call('POST', '/admin/codes', { offerId: 'pack', count: 1 })).body.codes;
  assert.equal((await call('POST', `/admin/accounts/${a}/redeem`, { code: codes[0] }, null)).status, 201);
  await refused(a, 422, /already redeemed .* by this account/, () => call('POST', `/admin/accounts/${a}/redeem`, { code: codes[0] }, null));
  await refused(b, 422, /already redeemed/, () => call('POST', `/admin/accounts/${b}/redeem`, { code: codes[0].toLowerCase() }, null));
  const forged = codes[0].slice(0, -1) + (codes[0].endsWith('Z') ? 'Y' : 'Z');
  await refused(b, 422, /not a valid redemption code/, () => call('POST', `/admin/accounts/${b}/redeem`, { code: forged }, null));
  await refused(b, 422, /not a valid redemption code/, () => call('POST', `/admin/accounts/${b}/redeem`, { code: 'ABCD-EFGH-JKMN-PQRS' }, null));
  await refused(b, 400, /16 letters and digits/, () => call('POST', `/admin/accounts/${b}/redeem`, { code: 'hello' }, null));
  const selfKey = (await call('POST', '/admin/keys', { accountId: b }, null)).body.key;
  const self = await fetch(`${srv.url}/self/redeem`, {
    method: 'POST',
    headers: { authorization: `Bearer ${selfKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ code: codes[0] }),
  });
  assert.equal(self.status, 422);
});

test('an order replayed with a different body under the same Idempotency-Key is refused; without a key too', async () => {
  const a = await account('replay');
  const first = await call('POST', '/admin/orders/topup', { accountId: a, amount: '10.00' }, 'same-key');
  assert.equal(first.status, 201);
  await refused(a, 409, /already used with a different request/, () => call('POST', '/admin/orders/topup', { accountId: a, amount: '20.00' }, 'same-key'));
  await refused(a, 409, /already used with a different request/, () => call('POST', '/admin/subscriptions', { accountId: a, offerId: 'small' }, 'same-key'));
  const replay = await call('POST', '/admin/orders/topup', { accountId: a, amount: '10.00' }, 'same-key');
  assert.equal(replay.body.order.id, first.body.order.id);
  await refused(a, 400, /Idempotency-Key/, () => call('POST', '/admin/subscriptions', { accountId: a, offerId: 'small' }, null));
});

test('a bill run for a month that has not ended, or a malformed month, is refused', async () => {
  assert.equal((await call('POST', '/admin/bills/run', { period: '2026-03' }, null)).status, 422);
  assert.equal((await call('POST', '/admin/bills/run', { period: 'March' }, null)).status, 400);
});
