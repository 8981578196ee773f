/**
 * Issue 12 item 9: the audit trail. Every admin write records its actor, role, action, target, before/after,
 * request id, source address and time; failed admin authentications are recorded and logged; the log is
 * hash-chained, and `tokengrid audit verify` finds a row edited directly in SQLite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startTestServer, type TestServer } from '../support/server.ts';
import { runCli, type CliIo } from '../../src/cli/main.ts';

let srv: TestServer;
const logLines: any[] = [];
let n = 0;

before(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) logLines.push(JSON.parse(l));
      cb();
    },
  });
  srv = await startTestServer({ logger: pino({ level: 'info' }, sink) });
});
after(() => srv.close());

async function as(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; requestId: string | null }> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'idempotency-key': `audit-${++n}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined, requestId: r.headers.get('x-request-id') };
}

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: {},
    cwd: process.cwd(),
    fetch: globalThis.fetch,
    nowMs: () => Date.now(),
    uuid: () => `u-${++n}`,
  };
  const code = await runCli([...argv, '--url', srv.url, '--admin-key', srv.adminKey], io);
  return { code, stdout, stderr };
}

const auditOf = async (query: string) => (await as(srv.adminKey, 'GET', `/admin/audit?${query}`)).body.data as any[];

describe('every admin write records who did it', () => {
  let acct: string;
  let member: string;
  let entKeyId: string;
  let entKey: string;

  test('grants, top-ups, credit lines, keys, revocations, suspensions and caps each leave one entry with actor, role, before/after, request id and source', async () => {
    acct = (await as(srv.adminKey, 'POST', '/admin/accounts', { name: 'Audited', kind: 'team' })).body.id;
    member = (await as(srv.adminKey, 'POST', `/admin/accounts/${acct}/members`, { name: 'Mia' })).body.id;
    const writes: [string, string, string, unknown, string][] = [
      ['POST', `/admin/accounts/${acct}/grants`, 'bucket.grant', { amount: 5000, reference: 'promo-1' }, 'bucket'],
      ['POST', `/admin/accounts/${acct}/topups`, 'wallet.topup', { amountMinor: 1234, currency: 'CNY' }, 'bucket'],
      ['PUT', `/admin/accounts/${acct}/policy`, 'policy.set', { overage: 'postpaid', creditLimitMinor: 5000, currency: 'CNY' }, 'policy'],
      ['POST', `/admin/accounts/${acct}/keys`, 'key.create', { name: 'ci' }, 'key'],
      ['PUT', `/admin/accounts/${acct}/members/${member}/cap`, 'member.cap', { tokensPerCycle: 100 }, 'cap'],
      ['PATCH', `/admin/accounts/${acct}`, 'account.update', { status: 'suspended' }, 'account'],
    ];
    const requestIds = new Map<string, string>();
    let keyId = '';
    let keySecret = '';
    for (const [method, path, action, body] of writes) {
      const r = await as(srv.adminKey, method, path, body);
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      requestIds.set(action, r.requestId!);
      if (action === 'key.create') {
        keyId = r.body.id;
        keySecret = r.body.key;
      }
    }
    const revoke = await as(srv.adminKey, 'POST', `/admin/keys/${keyId}/revoke`);
    requestIds.set('key.revoke', revoke.requestId!);

    const entries = await auditOf(`account=${acct}`);
    for (const [action, requestId] of requestIds) {
      const e = entries.find((x) => x.action === action);
      assert.ok(e, `an entry for ${action}`);
      assert.equal(e.actor, 'root');
      assert.equal(e.role, 'operator');
      assert.equal(e.accountId, acct);
      assert.equal(e.requestId, requestId, `${action}: the response's x-request-id`);
      assert.match(e.source, /127\.0\.0\.1/);
      assert.ok(Date.parse(e.at) > 0);
      assert.ok(e.outcome >= 200 && e.outcome < 300);
    }
    const grant = entries.find((x) => x.action === 'bucket.grant');
    assert.equal(grant.after.amount, 5000);
    assert.equal(grant.after.reference, 'promo-1');
    const suspend = entries.find((x) => x.action === 'account.update');
    assert.deepEqual([suspend.before.status, suspend.after.status], ['active', 'suspended']);
    const rev = entries.find((x) => x.action === 'key.revoke');
    assert.equal(rev.target, keyId);
    assert.equal(rev.before.revokedAt, null);
    assert.ok(rev.after.revokedAt);
    const keyEntry = entries.find((x) => x.action === 'key.create');
    assert.equal(keyEntry.target, keyId);
    assert.ok(keySecret.length > 20);
    assert.equal(JSON.stringify(entries).includes(keySecret), false, 'the key itself is never recorded');
  });

  test("an enterprise admin's writes carry its admin key id, and a denied attempt is recorded with 403", async () => {
    const created = await as(srv.adminKey, 'POST', '/admin/admin-keys', { name: 'Tenant', role: 'enterprise', accountIds: [acct] });
    entKeyId = created.body.id;
    entKey = created.body.key;
    const adminKeyEntry = (await auditOf('action=admin-key.create'))[0];
    assert.equal(adminKeyEntry.target, entKeyId);
    assert.equal(JSON.stringify(adminKeyEntry).includes(entKey), false);
    assert.equal((await as(entKey, 'POST', `/admin/accounts/${acct}/members`, { name: 'Ned' })).status, 201);
    assert.equal((await as(entKey, 'POST', `/admin/accounts/${acct}/grants`, { amount: 1e15 })).status, 403);
    const mine = await auditOf(`actor=${entKeyId}`);
    assert.deepEqual(
      mine.map((e) => [e.action, e.role, e.outcome]),
      [
        ['bucket.grant', 'enterprise', 403],
        ['member.add', 'enterprise', 201],
      ],
    );
  });

  test('a failed admin authentication is recorded (never the key) and logged', async () => {
    const r = await as('tgadmin-wrong-guess', 'POST', `/admin/accounts/${acct}/grants`, { amount: 1 });
    assert.equal(r.status, 401);
    const e = (await auditOf('action=auth.failed'))[0];
    assert.equal(e.actor, 'anonymous');
    assert.equal(e.requestId, r.requestId);
    assert.equal(e.target, `POST /admin/accounts/${acct}/grants`);
    assert.match(e.source, /127\.0\.0\.1/);
    assert.equal(JSON.stringify(e).includes('wrong-guess'), false);
    const line = logLines.find((l) => l.msg === 'admin authentication failed' && l.requestId === r.requestId);
    assert.ok(line, 'one warning line per failed admin authentication');
    assert.equal(JSON.stringify(line).includes('wrong-guess'), false);
  });

  test('GET /admin/audit filters by account, actor, action, time and limit; enterprise admins see only their accounts', async () => {
    const all = await auditOf('limit=1000');
    assert.ok(all.length >= 10);
    assert.ok(
      all.every((e, i) => i === 0 || all[i - 1].seq > e.seq),
      'newest first',
    );
    assert.equal((await auditOf('limit=2')).length, 2);
    const t = all[3].at;
    assert.ok((await auditOf(`since=${encodeURIComponent(t)}&limit=1000`)).every((e) => e.at >= t));
    assert.ok((await auditOf(`until=${encodeURIComponent(t)}&limit=1000`)).every((e) => e.at < t));
    assert.ok((await auditOf('action=bucket.grant')).every((e) => e.action === 'bucket.grant'));
    assert.equal((await as(entKey, 'GET', `/admin/audit?account=${acct}`)).status, 200);
    assert.equal((await as(entKey, 'GET', '/admin/audit')).status, 400);
    assert.equal((await as(entKey, 'GET', `/admin/audit?account=${srv.demoAccountId}`)).status, 403);
    assert.equal((await as(srv.adminKey, 'GET', '/admin/audit?since=yesterday')).status, 400);
  });

  test('tokengrid audit --account ID --json prints the entries; without --json a table', async () => {
    const j = await cli('audit', '--account', acct, '--json');
    assert.equal(j.code, 0, j.stderr);
    const data = JSON.parse(j.stdout).data;
    assert.ok(data.length > 0 && data.every((e: any) => e.accountId === acct));
    const h = await cli('audit', '--account', acct);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /bucket\.grant/);
    assert.match(h.stdout, /root/);
  });
});

describe('the audit log is append-only and hash-chained', () => {
  test('audit verify passes on the untouched chain', async () => {
    const v = await as(srv.adminKey, 'GET', '/admin/audit/verify');
    assert.equal(v.body.ok, true);
    assert.ok(v.body.entries >= 10);
    const c = await cli('audit', 'verify');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /intact/);
  });

  test('SQLite refuses UPDATE and DELETE on the table', () => {
    assert.throws(() => srv.app.db!.prepare("UPDATE audit_log SET actor = 'someone' WHERE seq = 1").run(), /append-only/);
    assert.throws(() => srv.app.db!.prepare('DELETE FROM audit_log WHERE seq = 1').run(), /append-only/);
  });

  test('a row edited directly in SQLite (triggers dropped) is found by tokengrid audit verify', async () => {
    const grant = (await auditOf('action=bucket.grant')).at(-1);
    const db = srv.app.db!; // the SQLite engine (the default)
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare('UPDATE audit_log SET after_json = ? WHERE seq = ?').run(JSON.stringify({ ...grant.after, amount: 50 }), grant.seq);
    const v = await as(srv.adminKey, 'GET', '/admin/audit/verify');
    assert.equal(v.body.ok, false);
    assert.equal(v.body.brokenAt, grant.seq);
    const c = await cli('audit', 'verify');
    assert.equal(c.code, 1);
    assert.match(c.stderr, new RegExp(`broken at entry ${grant.seq}`));
  });
});
