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
import { lastSmsCode } from '../support/sms.ts';

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
  const r = await fetch(srv.url + path, {
    method,
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json(), headers: r.headers };
}
const outbox = (): string => (existsSync(join(srv.dataDir, 'sms-outbox.log')) ? readFileSync(join(srv.dataDir, 'sms-outbox.log'), 'utf8') : '');
const lastCode = (phone: string): string => lastSmsCode(srv.dataDir, phone, 'sign-in');
const phonesOf = async (bearer: string): Promise<string[]> =>
  ((await (await fetch(`${srv.url}/self/notifications`, { headers: { authorization: `Bearer ${bearer}` } })).json()) as { phones: string[] }).phones;

test('an unknown number gets the same answer and no text; only the account owner links a number', async () => {
  const r = await post('/console/api/otp', { phone: '+8613900000001' });
  assert.equal(r.status, 202);
  assert.equal(outbox(), '');
  assert.equal((await post('/console/api/otp', { phone: 'call me' })).status, 400);
  const m = (await srv.admin('POST', `/admin/accounts/${accountId}/members`, { name: 'Kid' })).body.id;
  const kidKey = (await srv.admin('POST', '/admin/keys', { accountId, memberId: m })).body.key;
  assert.equal((await post('/self/phone', { phone: '+8613900000002' }, kidKey, 'PUT')).status, 403);
  // Linking proves the number is yours (issue 12): the first call texts a link code, the second links with it.
  const sent = await post('/self/phone', { phone: '+86 139-0000-0002' }, key, 'PUT');
  assert.equal(sent.status, 202);
  assert.deepEqual(sent.body, { sent: true, expiresInSeconds: 300 });
  assert.match(outbox(), new RegExp(`\\+8613900000002 TokenGrid link code: \\d{6}\\. Enter it to link this number to TokenGrid account ${accountId} `));
  assert.deepEqual(await phonesOf(key), [], 'not linked before the code comes back');
  const linkCode = lastSmsCode(srv.dataDir, '+8613900000002', 'link');
  const wrong = await post('/self/phone', { phone: '+8613900000002', code: linkCode === '000000' ? '000001' : '000000' }, key, 'PUT');
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.error.code, 'otp_invalid');
  assert.deepEqual(await phonesOf(key), []);
  const linked = await post('/self/phone', { phone: '+86 139-0000-0002', code: linkCode }, key, 'PUT');
  assert.equal(linked.status, 200);
  assert.deepEqual(linked.body, { accountId, phones: ['+8613900000002'] });
  const other = (await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId })).body.key;
  const texts = outbox().split('\n').length;
  const taken = await post('/self/phone', { phone: '+8613900000002' }, other, 'PUT');
  assert.equal(taken.status, 409, 'a number signs in to one account');
  assert.equal(outbox().split('\n').length, texts, 'the 409 comes before any text is sent');
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
  for (let i = 0; i < 5; i++)
    assert.equal((await post('/console/api/otp/verify', { phone: '+8613900000002', code: code2 === '123456' ? '654321' : '123456' })).status, 401);
  assert.equal(
    (await post('/console/api/otp/verify', { phone: '+8613900000002', code: code2 })).status,
    401,
    'after 5 wrong attempts the right code is refused too',
  );
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
  for (let i = 0; i < 2; i++) {
    clock.advance(61_000);
    assert.equal((await post('/console/api/otp', { phone: '+8613900000002' })).status, 202);
  }
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
  const chat = () =>
    fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'deepseek-v3.2', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }),
    });
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
  const texts = outbox()
    .split('\n')
    .slice(before - 1)
    .filter((l) => l.includes('allowance is used'));
  assert.ok(
    texts.some((l) => /^\S+ \+8613900000002 TokenGrid: 80% of your allowance is used/.test(l)),
    texts.join('\n'),
  );
  assert.ok(!texts.some((l) => l.includes(' 50% ')), 'the 50 % threshold was not asked for');
  assert.equal((await srv.admin('POST', '/console/api/alerts/run')).body.sent, 0, 'each event is texted once');
});

test('a number cannot be linked without the code texted to it, and a code sent for one account does not link it to another', async () => {
  const victim = (await srv.admin('POST', '/admin/accounts', { name: 'Victim' })).body.id;
  const victimKey = (await srv.admin('POST', '/admin/keys', { accountId: victim })).body.key;
  const attacker = (await srv.admin('POST', '/admin/accounts', { name: 'Attacker' })).body.id;
  const attackerKey = (await srv.admin('POST', '/admin/keys', { accountId: attacker })).body.key;
  const phone = '+8613900000077';
  // Before the fix: PUT /self/phone { phone } linked any number at once (200), squatting it and opening its phone bill.
  const guess = await post('/self/phone', { phone, code: '123456' }, attackerKey, 'PUT');
  assert.equal(guess.status, 401, 'no code was sent, so none links');
  assert.equal(guess.body.error.code, 'otp_invalid');
  assert.equal((await post('/self/phone', { phone }, victimKey, 'PUT')).status, 202);
  const code = lastSmsCode(srv.dataDir, phone, 'link');
  assert.match(outbox(), new RegExp(`TokenGrid account ${victim} `));
  const stolen = await post('/self/phone', { phone, code }, attackerKey, 'PUT');
  assert.equal(stolen.status, 401, "the victim's code does not link the number to another account");
  assert.equal(stolen.body.error.code, 'otp_invalid');
  assert.deepEqual(await phonesOf(attackerKey), []);
  assert.equal((await post('/self/phone', { phone }, attackerKey, 'PUT')).status, 429, 'link codes to one number are throttled whichever account asks');
  assert.equal((await post('/console/api/otp/verify', { phone, code })).status, 401, 'a link code does not sign in');
  const topup = await fetch(`${srv.url}/self/topup`, {
    method: 'POST',
    headers: { authorization: `Bearer ${attackerKey}`, 'content-type': 'application/json', 'idempotency-key': 'attacker-topup' },
    body: JSON.stringify({ amount: '10.00' }),
  });
  assert.equal(topup.status, 402, 'no phone-bill channel for the attacker');
  const ok = await post('/self/phone', { phone, code }, victimKey, 'PUT');
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, { accountId: victim, phones: [phone] });
  assert.equal((await post('/self/phone', { phone, code }, victimKey, 'PUT')).status, 200, 'linking again to the same account is a no-op');
  assert.equal((await post('/self/phone', { phone, code }, attackerKey, 'PUT')).status, 409);

  // A link code expires after 5 minutes like a sign-in code.
  clock.advance(61_000);
  const later = '+8613900000078';
  assert.equal((await post('/self/phone', { phone: later }, attackerKey, 'PUT')).status, 202);
  const old = lastSmsCode(srv.dataDir, later, 'link');
  clock.advance(5 * 60_000 + 1);
  assert.equal((await post('/self/phone', { phone: later, code: old }, attackerKey, 'PUT')).status, 401, 'expired');
  assert.deepEqual(await phonesOf(attackerKey), []);
});
