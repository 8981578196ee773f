/**
 * Issue 12 item 11 (hostile input): deep JSON, duplicate keys in admin bodies, made-up currencies, grants that
 * name members, models or periods that do not exist, and authentication failures throttled per source.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ManualClock } from '../../src/core/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
const clock = new ManualClock(Date.UTC(2026, 11, 1, 8));
const logLines: any[] = [];

before(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) logLines.push(JSON.parse(l));
      cb();
    },
  });
  srv = await startTestServer({ clock, logger: pino({ level: 'info' }, sink) });
});
after(() => srv.close());

async function raw(key: string, method: string, path: string, body?: string): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(srv.url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': `h-${Math.random()}` },
    body,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined, headers: r.headers };
}
const admin = (method: string, path: string, body?: unknown) => raw(srv.adminKey, method, path, body === undefined ? undefined : JSON.stringify(body));
const nested = (depth: number) => `{"model":"deepseek-v3.2","messages":[{"role":"user","content":"hi"}],"metadata":${'['.repeat(depth)}${']'.repeat(depth)}}`;

describe('JSON nested 20,000 levels deep', () => {
  test("is a 400 invalid_json in each API family's format, with no error or stack trace in the log", async () => {
    const before = logLines.length;
    const o = await raw(srv.demoKey, 'POST', '/v1/chat/completions', nested(20_000));
    assert.equal(o.status, 400);
    assert.equal(o.body.error.code, 'invalid_json');
    assert.equal(o.body.error.type, 'invalid_request_error');
    assert.match(o.body.error.message, /deeper than 400 levels/);
    const a = await raw(srv.demoKey, 'POST', '/v1/messages', nested(20_000));
    assert.equal(a.status, 400);
    assert.equal(a.body.type, 'error');
    assert.equal(a.body.error.type, 'invalid_request_error');
    const d = await raw(srv.adminKey, 'POST', '/admin/accounts', `{"name":"x","kind":${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
    assert.equal(d.status, 400);
    assert.equal(d.body.error.code, 'invalid_json');
    const fresh = logLines.slice(before);
    assert.deepEqual(
      fresh.filter((l) => l.level >= 50),
      [],
      'no error-level log line',
    );
    assert.equal(JSON.stringify(fresh).includes('stack'), false, 'no stack trace logged');
  });

  test('400 levels are still parsed (the limit is the depth, not the size)', async () => {
    const ok = await raw(srv.demoKey, 'POST', '/v1/chat/completions', nested(399));
    assert.notEqual(ok.body?.error?.code, 'invalid_json', JSON.stringify(ok.body));
    const over = await raw(srv.demoKey, 'POST', '/v1/chat/completions', nested(400));
    assert.equal(over.body.error.code, 'invalid_json');
  });
});

describe('admin bodies', () => {
  let acct: string;
  before(async () => {
    acct = (await admin('POST', '/admin/accounts', { name: 'Hostile', kind: 'team' })).body.id;
  });

  test('a duplicate key in a money field is refused (400), not "last one wins"', async () => {
    const g = await raw(srv.adminKey, 'POST', `/admin/accounts/${acct}/grants`, '{"amount":1,"amount":1000000000000000}');
    assert.equal(g.status, 400);
    assert.equal(g.body.error.code, 'invalid_json');
    assert.match(g.body.error.message, /repeats the key "amount"/);
    const t = await raw(srv.adminKey, 'POST', `/admin/accounts/${acct}/topups`, '{"amountMinor":100,"currency":"CNY","amountMinor":100000000000}');
    assert.equal(t.status, 400);
    const escaped = await raw(srv.adminKey, 'POST', `/admin/accounts/${acct}/grants`, '{"amount":1,"\\u0061mount":5}');
    assert.equal(escaped.status, 400, 'an escaped spelling of the same key is the same key');
    assert.deepEqual((await admin('GET', `/admin/accounts/${acct}/balance`)).body.buckets, []);
    // The same key in two different objects is fine.
    assert.equal((await raw(srv.adminKey, 'POST', `/admin/accounts/${acct}/keys`, '{"name":"k","limits":{"requestsPerMinute":5}}')).status, 201);
  });

  test('currencies must be ISO 4217 codes', async () => {
    assert.equal((await admin('POST', `/admin/accounts/${acct}/grants`, { unit: 'money', amount: 100, currency: 'XYZ' })).status, 400);
    assert.equal((await admin('POST', `/admin/accounts/${acct}/topups`, { amountMinor: 100, currency: 'ABC' })).status, 400);
    assert.equal((await admin('PUT', `/admin/accounts/${acct}/policy`, { overage: 'wallet', currency: 'ZZZ' })).status, 400);
    assert.equal((await admin('POST', '/admin/orders/topup', { accountId: acct, amount: '1.00', currency: 'FOO' })).status, 400);
    const usd = await admin('POST', `/admin/accounts/${acct}/topups`, { amountMinor: 100, currency: 'USD' });
    assert.equal(usd.status, 201, JSON.stringify(usd.body));
  });

  test('a grant names a member of the account, models that exist and a non-empty period', async () => {
    const other = (await admin('POST', '/admin/accounts', { name: 'Other', kind: 'team' })).body.id;
    const stranger = (await admin('POST', `/admin/accounts/${other}/members`, { name: 'Stranger' })).body.id;
    const m = await admin('POST', `/admin/accounts/${acct}/grants`, { amount: 100, memberId: stranger });
    assert.equal(m.status, 404);
    assert.equal(m.body.error.param, 'memberId');
    assert.equal((await admin('POST', `/admin/accounts/${acct}/grants`, { amount: 100, memberId: 'mem_made_up' })).status, 404);
    const model = await admin('POST', `/admin/accounts/${acct}/grants`, { amount: 100, models: ['deepseek-v3.2', 'gpt-9-ultra'] });
    assert.equal(model.status, 404);
    assert.equal(model.body.error.code, 'model_not_found');
    assert.match(model.body.error.message, /gpt-9-ultra/);
    const period = await admin('POST', `/admin/accounts/${acct}/grants`, {
      amount: 100,
      effectiveAt: '2026-12-10T00:00:00Z',
      expiresAt: '2026-12-09T00:00:00Z',
    });
    assert.equal(period.status, 400);
    assert.equal(period.body.error.param, 'expiresAt');
    const good = await admin('POST', `/admin/accounts/${acct}/grants`, { amount: 100, models: ['deepseek-v3.2'] });
    assert.equal(good.status, 201, JSON.stringify(good.body));
  });
});

describe('authentication failures from one address', () => {
  test('are throttled after 20 a minute (429 with Retry-After, even for a valid key), counted in /metrics, logged once per burst', async () => {
    for (let i = 0; i < 20; i++) {
      const r = i % 2 === 0 ? await raw('tgadmin-guess-' + i, 'GET', '/admin/accounts') : await raw('tg-guess-' + i, 'POST', '/v1/chat/completions', nested(1));
      assert.equal(r.status, 401, `failure ${i + 1} is an ordinary 401`);
    }
    const blocked = await raw('tgadmin-guess-21', 'GET', '/admin/accounts');
    assert.equal(blocked.status, 429);
    assert.equal(blocked.body.error.code, 'rate_limited');
    assert.equal(blocked.headers.get('retry-after'), '60');
    const valid = await raw(srv.adminKey, 'GET', '/admin/accounts');
    assert.equal(valid.status, 429, 'a guesser that found a key learns nothing until the window ends');
    const client = await raw(srv.demoKey, 'POST', '/v1/chat/completions', nested(1));
    assert.equal(client.status, 429);
    assert.equal(logLines.filter((l) => /throttled/.test(l.msg ?? '')).length, 1, 'one log line for the burst');
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /tokengrid_auth_failures_total\{kind="admin"\} 10/);
    assert.match(metrics, /tokengrid_auth_failures_total\{kind="key"\} 10/);
    assert.match(metrics, /tokengrid_auth_throttled_total 1/);

    clock.advance(30_000);
    assert.equal((await raw(srv.adminKey, 'GET', '/admin/accounts')).headers.get('retry-after'), '30');
    clock.advance(30_000);
    assert.equal((await raw(srv.adminKey, 'GET', '/admin/accounts')).status, 200, 'the window ended');
  });
});
