/**
 * Console sign-in with a phone number and a one-time code (issue 16): codes go through the SMS sender (the
 * development sender writes <dataDir>/sms-outbox.log), expire, allow a few attempts, and are throttled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../../src/core/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const clock = new ManualClock('2026-12-01T09:00:00Z');
let srv: TestServer;
let key: string;
let accountId: string;
before(async () => {
  srv = await startTestServer({ clock });
  accountId = (await srv.admin('POST', '/admin/accounts', { name: 'Phone user' })).body.id;
  key = (await srv.admin('POST', '/admin/keys', { accountId })).body.key;
});
after(() => srv.close());

async function post(path: string, body: unknown, bearer?: string, method = 'POST'): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(srv.url + path, { method, headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json(), headers: r.headers };
}
const outbox = (): string => (existsSync(join(srv.dataDir, 'sms-outbox.log')) ? readFileSync(join(srv.dataDir, 'sms-outbox.log'), 'utf8') : '');
const lastCode = (phone: string): string => [...outbox().matchAll(new RegExp(`${phone.replace('+', '\\+')} .*code: (\\d{6})`, 'g'))].at(-1)![1]!;

test('an unknown number gets the same answer and no text; only the account owner links a number', async () => {
  const r = await post('/console/api/otp', { phone: '+8613900000001' });
  assert.equal(r.status, 202);
  assert.equal(outbox(), '');
  assert.equal((await post('/console/api/otp', { phone: 'call me' })).status, 400);
  const m = (await srv.admin('POST', `/admin/accounts/${accountId}/members`, { name: 'Kid' })).body.id;
  const kidKey = (await srv.admin('POST', '/admin/keys', { accountId, memberId: m })).body.key;
  assert.equal((await post('/self/phone', { phone: '+8613900000002' }, kidKey, 'PUT')).status, 403);
  const linked = await post('/self/phone', { phone: '+86 139-0000-0002' }, key, 'PUT');
  assert.deepEqual(linked.body.phones, ['+8613900000002']);
  const other = (await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId })).body.key;
  assert.equal((await post('/self/phone', { phone: '+8613900000002' }, other, 'PUT')).status, 409, 'a number signs in to one account');
});

test('a code signs in once, with a key that reads the account; wrong codes use up the attempts', async () => {
  assert.equal((await post('/console/api/otp', { phone: '+8613900000002' })).status, 202);
  const code = lastCode('+8613900000002');
  const wrong = code === '000000' ? '000001' : '000000';
  const bad = await post('/console/api/otp/verify', { phone: '+8613900000002', code: wrong });
  assert.equal(bad.status, 401);
  assert.equal(bad.body.error.code, 'otp_invalid');
  assert.match(bad.body.error.message, /4 attempt\(s\) left/);
  const ok = await post('/console/api/otp/verify', { phone: '+8613900000002', code });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.accountId, accountId);
  assert.equal(ok.body.expiresAt, '2026-12-01T21:00:00.000Z');
  const bal = await fetch(`${srv.url}/self/balance`, { headers: { authorization: `Bearer ${ok.body.key}` } });
  assert.equal(bal.status, 200);
  assert.equal((await post('/console/api/otp/verify', { phone: '+8613900000002', code })).status, 401, 'a code works once');

  clock.advance(61_000);
  await post('/console/api/otp', { phone: '+8613900000002' });
  const code2 = lastCode('+8613900000002');
  for (let i = 0; i < 5; i++) assert.equal((await post('/console/api/otp/verify', { phone: '+8613900000002', code: code2 === '123456' ? '654321' : '123456' })).status, 401);
  assert.equal((await post('/console/api/otp/verify', { phone: '+8613900000002', code: code2 })).status, 401, 'after 5 wrong attempts the right code is refused too');
});

test('codes expire after 5 minutes and are throttled to one a minute and five an hour', async () => {
  clock.advance(61_000);
  assert.equal((await post('/console/api/otp', { phone: '+8613900000002' })).status, 202);
  const again = await post('/console/api/otp', { phone: '+8613900000002' });
  assert.equal(again.status, 429);
  assert.equal(again.body.error.code, 'otp_throttled');
  assert.ok(Number(again.headers.get('retry-after')) > 0);
  const code = lastCode('+8613900000002');
  clock.advance(5 * 60_000 + 1);
  assert.equal((await post('/console/api/otp/verify', { phone: '+8613900000002', code })).status, 401, 'expired');
  for (let i = 0; i < 2; i++) { clock.advance(61_000); assert.equal((await post('/console/api/otp', { phone: '+8613900000002' })).status, 202); }
  clock.advance(61_000);
  const hourly = await post('/console/api/otp', { phone: '+8613900000002' });
  assert.equal(hourly.status, 429, 'the sixth code within an hour');
  assert.match(hourly.body.error.message, /At most 5 codes an hour/);
});

test('SMS alerts: switched on, crossing 80 % of an allowance texts the linked number once; 50 % was not asked for', async () => {
  const other = (await srv.admin('POST', '/admin/accounts', { name: 'No phone' })).body;
  const otherKey = (await srv.admin('POST', '/admin/keys', { accountId: other.id })).body.key;
  const refused = await post('/self/notifications', { sms: true, thresholds: [80], memberCaps: false }, otherKey, 'PUT');
  assert.equal(refused.status, 422, 'no linked number, no texts');

  const on = await post('/self/notifications', { sms: true, thresholds: [100, 80], memberCaps: false }, key, 'PUT');
  assert.equal(on.status, 200);
  assert.deepEqual(on.body, { sms: true, thresholds: [80, 100], memberCaps: false, phones: ['+8613900000002'] });
  await srv.admin('POST', `/admin/accounts/${accountId}/grants`, { amount: 200 });
  const chat = () => fetch(`${srv.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'deepseek-v3.2', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }) });
  const before = outbox().split('\n').length;
  let used = 0;
  for (let i = 0; i < 20 && used < 170; i++) {
    const r = await chat();
    if (r.status !== 200) break;
    used += ((await r.json()) as { usage: { total_tokens: number } }).usage.total_tokens;
  }
  assert.ok(used >= 160, `used ${used} of 200 coins`);
  const run = await srv.admin('POST', '/console/api/alerts/run');
  assert.equal(run.status, 200);
  const texts = outbox().split('\n').slice(before - 1).filter((l) => l.includes('allowance is used'));
  assert.ok(texts.some((l) => /^\S+ \+8613900000002 TokenGrid: 80% of your allowance is used/.test(l)), texts.join('\n'));
  assert.ok(!texts.some((l) => l.includes(' 50% ')), 'the 50 % threshold was not asked for');
  assert.equal((await srv.admin('POST', '/console/api/alerts/run')).body.sent, 0, 'each event is texted once');
});
