/**
 * `tokengrid migrate` end to end: a single-node install built through the real server (demo account, a family
 * account with a member, a member cap, keys, grants, a top-up, requests through /v1, a stored response, audited
 * admin writes) is copied into a fresh PostgreSQL schema; the copy is compared with the source through the store
 * list APIs of both engines (not only counts), the audit chain verifies on PostgreSQL, and the refusals hold: a
 * second run, a served data folder, rows PostgreSQL has no table for, an open hold (voided, its balance freed).
 */
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { pino } from 'pino';
import { createApp, rateTableFromCatalog } from '../../src/app.ts';
import { verifyChain } from '../../src/audit/index.ts';
import { runMigrateCommand } from '../../src/app/migrate-command.ts';
import { connectPostgres, type PgDb } from '../../src/store/postgres/db.ts';
import { openPostgresAccountStore } from '../../src/store/postgres/accounts-store.ts';
import { openPostgresAuditStore } from '../../src/store/postgres/audit-store.ts';
import { openPostgresBillingStore } from '../../src/store/postgres/billing-store.ts';
import { openPostgresChargingStore } from '../../src/store/postgres/charging-store.ts';
import { openPostgresResponseStore } from '../../src/store/postgres/response-store.ts';
import { PG_TEST_URL, testSchemaName } from '../../src/store/postgres/test-support.ts';
import { lockDataDir, openSqlite } from '../../src/store/sqlite/db.ts';
import { openSqliteAccountStore } from '../../src/store/sqlite/accounts-store.ts';
import { openSqliteAuditStore } from '../../src/store/sqlite/audit-store.ts';
import { openSqliteBillingStore } from '../../src/store/sqlite/billing-store.ts';
import { openSqliteChargingStore } from '../../src/store/sqlite/charging-store.ts';
import { openSqliteResponseStore } from '../../src/store/sqlite/response-store.ts';
import { startTestServer, TEST_CONFIG } from '../support/server.ts';
import { createIdGenerator, cryptoRandom, systemClock } from '../../src/core/index.ts';
import { createChargingEngine, defaultChargingConfig } from '../../src/charging/index.ts';
import { loadConfigFile, resolveConfig } from '../../src/config/index.ts';
import { zeroUsage } from '../../src/wire/index.ts';

const root = mkdtempSync(join(tmpdir(), 'tg-migrate-'));
const dataDir = join(root, 'data');
const schemas: string[] = [];
let demoKey = '';
let memberKey = '';
let responseId = '';
let orderId = '';
const accountIds: string[] = [];
/** GET /admin/accounts/:id/balance of each account when the SQLite server stopped. */
const balances = new Map<string, unknown>();

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runMigrateCommand(args, {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    env: {},
    nowMs: () => Date.UTC(2026, 11, 7, 12),
  });
  return { code, out, err };
}

function schema(): string {
  const s = testSchemaName();
  schemas.push(s);
  return s;
}

before(async () => {
  const srv = await startTestServer({ dataDir });
  try {
    demoKey = srv.demoKey;
    accountIds.push(srv.demoAccountId);
    const fam = await srv.admin('POST', '/admin/accounts', { name: 'Family', kind: 'family' });
    assert.equal(fam.status, 201);
    accountIds.push(fam.body.id);
    const member = await srv.admin('POST', `/admin/accounts/${fam.body.id}/members`, { name: 'Kid', role: 'member' });
    assert.equal(member.status, 201);
    assert.equal((await srv.admin('POST', `/admin/accounts/${fam.body.id}/grants`, { amount: 50_000, kind: 'trial' })).status, 201);
    assert.equal((await srv.admin('PUT', `/admin/accounts/${fam.body.id}/members/${member.body.id}/cap`, { tokensPerCycle: 20_000 })).status, 200);
    assert.equal((await srv.admin('POST', `/admin/accounts/${fam.body.id}/topups`, { currency: 'CNY', amountMinor: 500 })).status, 201);
    const k = await srv.admin('POST', `/admin/accounts/${fam.body.id}/keys`, { memberId: member.body.id, name: 'kid' });
    assert.equal(k.status, 201);
    memberKey = k.body.key;
    for (const key of [demoKey, demoKey, memberKey]) {
      const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: key, maxRetries: 0 });
      const r = await client.chat.completions.create({ model: 'deepseek-v3.2', max_tokens: 30, messages: [{ role: 'user', content: 'Say hi' }] });
      assert.ok(r.usage!.total_tokens > 0);
    }
    const resp = await fetch(`${srv.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'deepseek-v3.2', input: 'hello', max_output_tokens: 20 }),
    });
    assert.equal(resp.status, 200);
    responseId = ((await resp.json()) as { id: string }).id;
    const top = await fetch(`${srv.url}/admin/orders/topup`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': 'migrate-topup' },
      body: JSON.stringify({ accountId: srv.demoAccountId, amount: '12.00' }),
    });
    assert.equal(top.status, 201, await top.clone().text());
    orderId = ((await top.json()) as { order: { id: string } }).order.id;
    for (const id of accountIds) balances.set(id, (await srv.admin('GET', `/admin/accounts/${id}/balance`)).body);
  } finally {
    await srv.close();
  }
});

after(async () => {
  const db = await connectPostgres(PG_TEST_URL, { max: 1 });
  try {
    for (const s of schemas) await db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await db.close();
  }
  rmSync(root, { recursive: true, force: true });
});

/** The same rows, whatever order an engine lists them in. */
const byId = <T extends object>(rows: T[], key: keyof T): T[] => [...rows].sort((a, b) => String(a[key]).localeCompare(String(b[key])));

async function withPg<T>(s: string, fn: (db: PgDb) => Promise<T>): Promise<T> {
  const db = await connectPostgres(PG_TEST_URL, { schema: s, max: 2 });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

test('migrate copies the install faithfully: every store lists the same rows on PostgreSQL, the audit chain verifies', async () => {
  const s = schema();
  const r = await run(['--from', dataDir, '--to', PG_TEST_URL, '--schema', s, '--json']);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out);
  assert.ok(report.checks.every((c: { ok: boolean }) => c.ok));
  assert.match(r.err, /copy charging_usage_records: 4\/4/);
  assert.equal(report.tables.find((t: { table: string }) => t.table === 'charging_usage_records').target, 4);
  assert.equal(report.voidedHolds, 0);

  const sqlite = openSqlite(join(dataDir, 'tokengrid.db'));
  try {
    const sAcc = openSqliteAccountStore(sqlite);
    const sChg = openSqliteChargingStore(sqlite);
    const sAud = openSqliteAuditStore(sqlite);
    const sRsp = openSqliteResponseStore(sqlite);
    const sBil = openSqliteBillingStore(sqlite);
    await withPg(s, async (db) => {
      const pAcc = openPostgresAccountStore(db);
      const pChg = openPostgresChargingStore(db);
      const pAud = openPostgresAuditStore(db);
      const pRsp = openPostgresResponseStore(db);
      const pBil = openPostgresBillingStore(db);
      assert.deepEqual(byId(await pAcc.listAccounts(), 'id'), byId(await sAcc.listAccounts(), 'id'));
      assert.deepEqual(byId(await pAcc.listKeys(), 'id'), byId(await sAcc.listKeys(), 'id'));
      let usage = 0;
      for (const id of accountIds) {
        assert.deepEqual(byId(await pAcc.listMembers(id), 'id'), byId(await sAcc.listMembers(id), 'id'));
        assert.deepEqual(byId(await pChg.listBuckets(id), 'id'), byId(await sChg.listBuckets(id), 'id'), `buckets of ${id}`);
        const records = await sChg.listUsage(id, 0, Number.MAX_SAFE_INTEGER);
        usage += records.length;
        assert.deepEqual(byId(await pChg.listUsage(id, 0, Number.MAX_SAFE_INTEGER), 'requestId'), byId(records, 'requestId'), `usage of ${id}`);
        assert.deepEqual(byId(await pChg.listLedger(id), 'id'), byId(await sChg.listLedger(id), 'id'), `ledger of ${id}`);
        assert.deepEqual(await pChg.listEvents(id, null, 1000), await sChg.listEvents(id, null, 1000), `events of ${id}`);
        assert.deepEqual(await pChg.listOpenReservations(id), []);
        // The charging view a reserve reads (policy, member cap) is the same on both engines.
        const [sView, pView] = await Promise.all([
          sChg.runAccountOp({ accountId: id, nowMs: Date.now() }, (v) => ({ mutation: null, result: v })),
          pChg.runAccountOp({ accountId: id, nowMs: Date.now() }, (v) => ({ mutation: null, result: v })),
        ]);
        assert.deepEqual(pView.policy, sView.policy);
        assert.deepEqual(pView.schedules, sView.schedules);
      }
      const orders = await sBil.listOrders({ accountId: accountIds[0]! });
      assert.equal(orders.length, 1);
      assert.deepEqual(await pBil.listOrders({ accountId: accountIds[0]! }), orders);
      assert.deepEqual(await pBil.listPayments({ accountId: accountIds[0]! }), await sBil.listPayments({ accountId: accountIds[0]! }));
      assert.equal(await pBil.accountVersion(accountIds[0]!), await sBil.accountVersion(accountIds[0]!));
      assert.equal(usage, 4, 'three chats and one /v1/responses');
      const sEntries = await sAud.all();
      assert.ok(sEntries.length >= 5, `admin writes were audited (${sEntries.length})`);
      const pEntries = await pAud.all();
      assert.deepEqual(pEntries, sEntries);
      assert.equal(verifyChain(pEntries).ok, true);
      const nowMs = Date.now();
      assert.deepEqual(await pRsp.get(accountIds[0]!, responseId, nowMs), await sRsp.get(accountIds[0]!, responseId, nowMs));
      assert.ok(await pRsp.get(accountIds[0]!, responseId, nowMs));
      // The daily rollup was rebuilt from the records.
      const daily = await db.query<{ n: number }>('SELECT COALESCE(SUM(requests), 0)::int AS n FROM charging_usage_daily');
      assert.equal(daily.rows[0]!.n, 4);
      // The records sit in their months' partitions (created by migrate), not in the default one.
      const stray = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM charging_usage_records_default');
      assert.equal(stray.rows[0]!.n, 0);
    });
  } finally {
    sqlite.close();
  }

  // Billing: the order, its payment and its Idempotency-Key answer are on PostgreSQL.
  for (const t of ['billing_orders', 'billing_payments', 'billing_idempotency']) {
    const row = report.tables.find((x: { table: string }) => x.table === t);
    assert.ok(row.target >= 1 && row.target === row.source, `${t}: ${JSON.stringify(row)}`);
  }

  // The server started on the copy (TOKENGRID_DATABASE_URL, the same data folder for its admin key file).
  const app = await createApp({
    configPath: TEST_CONFIG,
    dataDir,
    port: 0,
    env: { TOKENGRID_DATABASE_URL: `${PG_TEST_URL}?schema=${s}` },
    logger: pino({ level: 'silent' }),
    timers: false,
  });
  try {
    assert.equal(app.db, undefined, 'the stores are on PostgreSQL');
    const { url } = await app.listen();
    const adminKey = readFileSync(join(dataDir, 'admin-key'), 'utf8').trim();
    const admin = async (path: string): Promise<any> => {
      const res = await fetch(url + path, { headers: { authorization: `Bearer ${adminKey}` } });
      assert.equal(res.status, 200, path);
      return res.json();
    };
    for (const id of accountIds) assert.deepEqual(await admin(`/admin/accounts/${id}/balance`), balances.get(id), `balance of ${id}`);
    const verified = await admin('/admin/audit/verify');
    assert.equal(verified.ok, true, JSON.stringify(verified));
    const orders = await admin(`/admin/orders?account=${accountIds[0]}`);
    assert.deepEqual(
      orders.data.map((o: { id: string }) => o.id),
      [orderId],
    );
    // The same keys authenticate and are charged on PostgreSQL.
    for (const key of [demoKey, memberKey]) {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
      const r = await client.chat.completions.create({ model: 'deepseek-v3.2', max_tokens: 20, messages: [{ role: 'user', content: 'again' }] });
      assert.ok(r.usage!.total_tokens > 0);
    }
    const after = await admin(`/admin/accounts/${accountIds[0]}/usage?detail=records&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z`);
    assert.equal(after.data.length, 4, 'three copied records of the demo account and one new');
  } finally {
    await app.close(500);
  }

  // Twice: refused, and nothing changed.
  const again = await run(['--from', dataDir, '--to', PG_TEST_URL, '--schema', s]);
  assert.equal(again.code, 1);
  assert.match(again.err, /already holds TokenGrid data/);
  await withPg(s, async (db) => {
    const n = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM charging_usage_records');
    assert.equal(n.rows[0]!.n, 6, 'the four copied and the two served on PostgreSQL');
  });
});

test('a data folder a server holds is refused (stop the server first), nothing is written', async () => {
  const release = lockDataDir(dataDir);
  const s = schema();
  try {
    const r = await run(['--from', dataDir, '--to', PG_TEST_URL, '--schema', s]);
    assert.equal(r.code, 1);
    assert.match(r.err, /Stop the TokenGrid server on .* first/);
  } finally {
    release();
  }
});

test('rows PostgreSQL has no table for stop the migration before anything is committed', async () => {
  const dir = join(root, 'billing-rows');
  const srv = await startTestServer({ dataDir: dir });
  await srv.close();
  const db = openSqlite(join(dir, 'tokengrid.db'));
  db.exec(`CREATE TABLE IF NOT EXISTS gadgets (id TEXT PRIMARY KEY); INSERT INTO gadgets VALUES ('g1')`);
  db.close();
  const s = schema();
  const r = await run(['--from', dir, '--to', PG_TEST_URL, '--schema', s]);
  assert.equal(r.code, 1);
  assert.match(r.err, /no table for gadgets \(1 rows\)/);
  await withPg(s, async (pg) => {
    const n = await pg.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
    assert.equal(n.rows[0]!.n, 0, 'nothing committed');
  });
});

test('an open hold left on disk is copied voided and its balance is free on PostgreSQL', async () => {
  const dir = join(root, 'open-hold');
  const srv = await startTestServer({ dataDir: dir });
  const account = srv.demoAccountId;
  await srv.close();
  const db = openSqlite(join(dir, 'tokengrid.db'));
  const bucket = db.prepare("SELECT id FROM charging_buckets WHERE account_id = ? AND unit = 'tokens'").get(account) as { id: string };
  const rsv = {
    id: 'rsv_req_crashed',
    requestId: 'req_crashed',
    accountId: account,
    memberId: null,
    keyId: 'key_x',
    state: 'open',
    allocations: [{ bucketId: bucket.id, amount: 700 }],
    validUntilMs: Date.UTC(2026, 0, 1),
    closedAtMs: null,
  };
  db.prepare(
    "INSERT INTO charging_reservations (id, request_id, account_id, member_id, state, valid_until_ms, created_at_ms, data) VALUES (?, ?, ?, NULL, 'open', ?, 0, ?)",
  ).run(rsv.id, rsv.requestId, account, rsv.validUntilMs, JSON.stringify(rsv));
  db.prepare('UPDATE charging_buckets SET held = 700 WHERE id = ?').run(bucket.id);
  db.close();
  const s = schema();
  const r = await run(['--from', dir, '--to', PG_TEST_URL, '--schema', s, '--json']);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).voidedHolds, 1);
  await withPg(s, async (pg) => {
    const chg = openPostgresChargingStore(pg);
    const got = await chg.getReservation('rsv_req_crashed');
    assert.equal(got?.state, 'voided');
    assert.equal(got?.closedAtMs, Date.UTC(2026, 11, 7, 12));
    const b = (await chg.listBuckets(account)).find((x) => x.id === bucket.id)!;
    assert.equal(b.held, 0);
  });
});

test('bad command lines exit 2 with the reason', async () => {
  assert.equal((await run(['--from', dataDir])).code, 2);
  const bad = await run(['--from', dataDir, '--to', 'mysql://x']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /postgres:\/\//);
  assert.equal((await run(['--frm', dataDir])).code, 2);
});

test('thousands of usage records cross the batch size: every record and its consume entries arrive, in order of the store lists', async () => {
  const dir = join(root, 'many');
  const sqlite = openSqlite(join(dir, 'tokengrid.db'));
  const store = openSqliteChargingStore(sqlite);
  const config = resolveConfig(loadConfigFile(TEST_CONFIG), {}, { dataDir: dir });
  const rates = rateTableFromCatalog(config.catalog, 400_000);
  const ids = createIdGenerator(systemClock, cryptoRandom);
  const charging = createChargingEngine({ store, clock: systemClock, ids, rates: () => rates, config: defaultChargingConfig });
  const accounts = ['acct_many_a', 'acct_many_b', 'acct_many_c'];
  const now = systemClock.nowMs();
  for (const accountId of accounts) {
    // Account c's allowance runs past 50 % and 80 %: threshold events (a serial column on PostgreSQL).
    const g = await charging.grantBucket({
      accountId,
      unit: 'tokens',
      amount: accountId === 'acct_many_c' ? 45_000 : 1e12,
      kind: 'plan_allowance',
      effectiveAtMs: now,
      expiresAtMs: now + 86_400_000,
      sourceRef: 'plan',
    });
    assert.ok(g.ok);
  }
  const N = 2_500;
  for (let i = 0; i < N; i++) {
    const requestId = ids.next('req');
    const r = await charging.reserve({
      requestId,
      accountId: accounts[i % 3]!,
      memberId: null,
      keyId: 'key_x',
      model: 'deepseek-v3.2',
      tokensInputEstimate: 40,
      tokensOutputMax: 64,
      stream: false,
    });
    assert.ok(r.ok);
    await charging.settle({
      reservationId: r.value.reservationId,
      requestId,
      usage: { ...zeroUsage(), tokensInput: 30 + (i % 7), tokensOutput: 10 + (i % 11) },
      usageEstimated: false,
      status: 'ok',
      provider: 'mock',
      upstreamModel: 'deepseek-v3.2',
      region: 'local',
      deploymentId: 'mock/deepseek-v3.2@local',
      latencyMs: 1,
      ttftMs: null,
    });
  }
  sqlite.close();

  const s = schema();
  const r = await run(['--from', dir, '--to', `${PG_TEST_URL}?schema=${s}`, '--json']);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out);
  assert.equal(report.tables.find((t: { table: string }) => t.table === 'charging_usage_records').target, N);
  assert.match(r.err, /copy charging_usage_records: 1000\/2500\n/, 'progress per batch');

  const again = openSqlite(join(dir, 'tokengrid.db'));
  try {
    const sChg = openSqliteChargingStore(again);
    await withPg(s, async (db) => {
      const pChg = openPostgresChargingStore(db);
      for (const id of accounts) {
        assert.deepEqual(
          byId(await pChg.listUsage(id, 0, Number.MAX_SAFE_INTEGER), 'requestId'),
          byId(await sChg.listUsage(id, 0, Number.MAX_SAFE_INTEGER), 'requestId'),
        );
        assert.deepEqual(byId(await pChg.listLedger(id), 'id'), byId(await sChg.listLedger(id), 'id'));
        assert.deepEqual(byId(await pChg.listBuckets(id), 'id'), byId(await sChg.listBuckets(id), 'id'));
        assert.deepEqual(await pChg.listEvents(id, null, 100), await sChg.listEvents(id, null, 100));
      }
      const events = await sChg.listEvents('acct_many_c', null, 100);
      assert.ok(events.length >= 2, `threshold events were written (${events.length})`);
      // The serial continues after the copied values: a new event gets the next number.
      const next = await db.query<{ n: number; max: number }>(
        "SELECT nextval(pg_get_serial_sequence('charging_events', 'seq'))::int AS n, (SELECT max(seq) FROM charging_events)::int AS max",
      );
      assert.equal(next.rows[0]!.n, next.rows[0]!.max + 1);
    });
  } finally {
    again.close();
  }
});

test('the tokengrid binary sends migrate to the offline command (no server needed)', () => {
  const bin = new URL('../../bin/tokengrid.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [bin, 'migrate', '--help'], { env: { ...process.env, TOKENGRID_CLI_FROM_SOURCE: '1' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: tokengrid migrate --from <data-dir> --to <postgres-url>/);
  const bad = spawnSync(process.execPath, [bin, 'migrate', '--from', root], {
    env: { ...process.env, TOKENGRID_CLI_FROM_SOURCE: '1', TOKENGRID_DATABASE_URL: '' },
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--to <postgres-url> is required/);
});
