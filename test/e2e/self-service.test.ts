/**
 * Self-service for key holders: balance per bucket in plain terms, usage by day and model, bills (JSON, CSV),
 * code redemption, and the legacy OpenAI billing endpoints chat front-ends call to show a balance.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { ManualClock } from '../../src/core/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const clock = new ManualClock('2026-05-10T09:00:00Z');
let srv: TestServer;
before(async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8').replace(/package-basic|package-developer/g, 'basic'));
  srv = await startTestServer({ clock, env: { TOKENGRID_OFFERS_FILE: file } });
});
after(() => srv.close());

async function admin(method: string, path: string, body?: unknown, key?: string): Promise<any> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${srv.adminKey}`,
    ...(key ? { 'idempotency-key': key } : {}),
    ...(body ? { 'content-type': 'application/json' } : {}),
  };
  const r = await fetch(srv.url + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}

async function self(key: string, path: string): Promise<{ status: number; body: any; text: string }> {
  const r = await fetch(srv.url + path, { headers: { authorization: `Bearer ${key}` } });
  const text = await r.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: r.status, body, text };
}

test("a family member sees the shared package in plain terms and usage by day and model; the bills are the owner's", async () => {
  const fam = (await admin('POST', '/admin/accounts', { name: 'The Lis', kind: 'family' })).id;
  const member = (await admin('POST', `/admin/accounts/${fam}/members`, { name: 'Grandma' })).id;
  await admin('POST', '/admin/subscriptions', { accountId: fam, offerId: 'family-share' }, 'fam-1');
  await admin('POST', '/admin/orders/topup', { accountId: fam, amount: '20.00' }, 'fam-2');
  const key = (await admin('POST', '/admin/keys', { accountId: fam, memberId: member })).key;

  const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: key, maxRetries: 0 });
  const res = await client.chat.completions.create({ model: 'deepseek-v3.2', max_tokens: 40, messages: [{ role: 'user', content: 'Hello' }] });
  const used = res.usage!.total_tokens;

  const bal = (await self(key, '/self/balance')).body;
  assert.equal(bal.plan.offerId, 'family-share');
  const pool = bal.buckets.find((b: any) => b.kind === 'plan_allowance');
  assert.equal(pool.used, used);
  assert.equal(pool.left, 100_000_000 - used);
  assert.equal(pool.renewsAt, '2026-06-10T09:00:00.000Z');
  assert.match(pool.text, /M token coins left of 100M token coins; renews on 2026-06-10 with 100M token coins \(unused amount is cleared\)/);
  assert.match(bal.pastCap, /refused .* until it renews; buy an add-on/, 'family-share blocks past the cap');
  assert.match(
    bal.summary,
    /^You have [\d.]+M token coins, 20\.00 CNY in the wallet \(not used for requests: this package blocks past the cap\) left; the first allowance renews on 2026-06-10\.$/,
  );

  const usage = (await self(key, '/self/usage')).body;
  assert.deepEqual(
    usage.data.map((r: any) => [r.day, r.model, r.requests, r.tokens]),
    [['2026-05-10', 'deepseek-v3.2', 1, used]],
  );

  // What a chat front-end shows: hard_limit_usd - total_usage / 100 = what is left, valued at the wallet price.
  const sub = (await self(key, '/v1/dashboard/billing/subscription')).body;
  const usg = (await self(key, '/v1/dashboard/billing/usage?start_date=2026-05-01&end_date=2026-05-11')).body;
  assert.equal(sub.object, 'billing_subscription');
  assert.equal(sub.plan.id, 'family-share');
  assert.equal(sub.access_until, Date.parse('2026-06-10T09:00:00Z') / 1000);
  assert.equal(usg.object, 'list');
  const left = Math.round((sub.hard_limit_usd - usg.total_usage / 100) * 100) / 100;
  assert.equal(left, Math.round(((100_000_000 - used) / 400_000 + 20) * 100) / 100);
  assert.equal(usg.daily_costs.length, 1);
  assert.equal(usg.daily_costs[0].line_items[0].name, 'deepseek-v3.2');

  clock.set('2026-06-01T00:00:00Z');
  await admin('POST', '/admin/bills/run', { period: '2026-05' });
  // A member does not read the account's bills (payment channels and amounts of the whole family: F10); the owner does.
  assert.equal((await self(key, '/self/bills')).status, 403);
  const owner = (await admin('POST', '/admin/keys', { accountId: fam })).key;
  const bills = (await self(owner, '/self/bills')).body.data;
  assert.equal(bills.length, 1);
  assert.equal(bills[0].totalMinor, 59_90);
  assert.equal(bills[0].phoneBillMinor, 59_90, 'the carrier default: charged to the phone bill');
  assert.equal((await self(key, `/self/bills/${bills[0].id}.csv`)).status, 403);
  const csv = await self(owner, `/self/bills/${bills[0].id}.csv`);
  assert.equal(csv.status, 200);
  assert.match(csv.text, /,subscription,"Family share plan, 2026-05-10 to 2026-06-10",1,59\.90,CNY,phone_bill,/);
  const preview = (await self(owner, '/self/bills/preview')).body;
  assert.equal(preview.period, '2026-06');

  const stranger = (await admin('POST', '/admin/keys', { accountId: srv.demoAccountId })).key;
  assert.equal((await self(stranger, `/self/bills/${bills[0].id}`)).status, 404, "another account's bill does not exist for you");
  assert.equal((await self('tg-not-a-real-key-aaaaaaaaaaaaaaaa', '/self/balance')).status, 401);
});
