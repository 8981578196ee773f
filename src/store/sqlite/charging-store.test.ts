import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, SeededRandom, createIdGenerator } from '../../core/index.ts';
import { auditAccount, createChargingEngine } from '../../charging/index.ts';
import { reserveInput, sampleRates, settleInput, usage, T0 } from '../../charging/test-fixtures.ts';
import { chargingStoreContract } from '../contract/charging-store.contract.ts';
import { openSqliteChargingStore } from './charging-store.ts';
import { lockDataDir } from './db.ts';

chargingStoreContract('sqlite', () => openSqliteChargingStore(new Database(':memory:')));

function engineOn(db: Database.Database, clock: ManualClock, seed: number) {
  const store = openSqliteChargingStore(db);
  const rates = sampleRates();
  return { store, engine: createChargingEngine({ store, clock, ids: createIdGenerator(clock, new SeededRandom(seed)), rates: () => rates }) };
}

test('the in-process cache stays exact when another connection (another process, the CLI) writes the same file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokengrid-charging-'));
  const path = join(dir, 'tokengrid.db');
  const dbA = new Database(path);
  dbA.pragma('journal_mode = WAL');
  const dbB = new Database(path);
  try {
    const clock = new ManualClock(T0);
    const a = engineOn(dbA, clock, 1);
    const b = engineOn(dbB, clock, 2);
    await a.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 300, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
    const r1 = await a.engine.reserve(reserveInput('req_1', { tokensInputEstimate: 100, tokensOutputMax: 100 }));
    assert.ok(r1.ok);
    await a.engine.settle(settleInput(r1.value.reservationId, 'req_1', usage(100, 100))); // A now caches acct_1: 100 left
    // B (another connection) spends from the same account and grants more.
    const r2 = await b.engine.reserve(reserveInput('req_2', { tokensInputEstimate: 50, tokensOutputMax: 50 }));
    assert.ok(r2.ok);
    await b.engine.settle(settleInput(r2.value.reservationId, 'req_2', usage(50, 50)));
    const denied = await a.engine.reserve(reserveInput('req_3', { tokensInputEstimate: 50, tokensOutputMax: 50 }));
    assert.equal(!denied.ok && denied.code, 'insufficient_quota', "A sees B's spending, not its stale cache");
    await b.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 10, sourceRef: 'pay_1' });
    const paid = await a.engine.reserve(reserveInput('req_4', { tokensInputEstimate: 50, tokensOutputMax: 50 }));
    assert.ok(paid.ok, "A sees B's top-up");
    await a.engine.settle(settleInput(paid.value.reservationId, 'req_4', usage(50, 50)));
    assert.deepEqual((await auditAccount(a.store, 'acct_1')).problems, []);
  } finally {
    dbA.close();
    dbB.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a rolled-back operation leaves neither the database nor the cache changed', async () => {
  const db = new Database(':memory:');
  const clock = new ManualClock(T0);
  const { store, engine } = engineOn(db, clock, 3);
  await engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 300, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
  await assert.rejects(
    store.runAccountOp({ accountId: 'acct_1', nowMs: T0 }, (view) => {
      const b = view.buckets[0]!;
      return {
        result: null,
        mutation: {
          bucketsCreate: [],
          bucketDeltas: [
            { bucketId: b.id, held: 100 },
            { bucketId: 'bkt_missing', held: 1 },
          ],
          schedulesUpdate: [],
          reservationUpsert: null,
          memberUsageDeltas: [],
          usageRecord: null,
          ledger: [],
          events: [],
          policyUpsert: null,
          memberCapUpsert: null,
        },
      };
    }),
  );
  const r = await engine.reserve(reserveInput('req_1', { tokensInputEstimate: 100, tokensOutputMax: 200 }));
  assert.ok(r.ok);
  assert.equal(r.value.tokensOutputGranted, 200, 'the failed hold of 100 did not stick in the cache');
  assert.equal((await store.listBuckets('acct_1'))[0]!.held, 300);
});

test('holds live in memory: rows never carry them, a restart releases them and charges nothing; closes leave their trace', async () => {
  const db = new Database(':memory:');
  const clock = new ManualClock(T0);
  const a = engineOn(db, clock, 4);
  await a.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 100_000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
  const s = await a.engine.reserve(reserveInput('req_s', { stream: true, tokensOutputMax: 20_000 }));
  const v = await a.engine.reserve(reserveInput('req_v'));
  const t = await a.engine.reserve(reserveInput('req_t'));
  assert.ok(s.ok && v.ok && t.ok);
  clock.advance(1_000);
  const more = await a.engine.extend({ reservationId: s.value.reservationId, tokensOutputMore: 4096 });
  assert.ok(more.ok);
  assert.equal((await a.store.getReservation(s.value.reservationId))?.extensions, 1);
  clock.advance(1_000);
  await a.engine.void(v.value.reservationId);
  const voided = await a.store.getReservation(v.value.reservationId);
  const record = await a.engine.settle(settleInput(s.value.reservationId, 'req_s', usage(100, 5000)));
  const rowHeld = (): number => db.prepare('SELECT SUM(held) FROM charging_buckets').pluck().get() as number;
  const tHold = (await a.store.getReservation(t.value.reservationId))!.allocations[0]!.amount;
  assert.equal(rowHeld(), 0, 'no hold is written to the rows');
  assert.equal((await a.store.listBuckets('acct_1'))[0]!.held, tHold, 'but every read shows the open hold');
  assert.deepEqual(
    (await a.store.listOpenReservations('acct_1')).map((r) => r.id),
    [t.value.reservationId],
  );
  assert.equal(db.prepare("SELECT COUNT(*) FROM charging_reservations WHERE state = 'open'").pluck().get(), 0);
  assert.equal(voided?.state, 'voided');
  assert.equal(voided?.closedAtMs, T0 + 2_000);
  assert.equal(await a.store.getReservation(s.value.reservationId), null, 'a settled hold leaves its usage record, not a row');
  assert.deepEqual(await a.store.getUsageRecord('req_s'), record);
  assert.deepEqual((await auditAccount(a.store, 'acct_1')).problems, []);

  // A restart: a new store on the same database has no memory holds.
  const b = engineOn(db, clock, 5);
  assert.deepEqual(await b.store.listOpenReservations('acct_1'), [], 'the open hold of the crashed process is gone');
  const [bucket] = await b.store.listBuckets('acct_1');
  assert.deepEqual([bucket!.held, bucket!.consumed], [0, record.costCoins], 'released, and only the settled request was charged');
  assert.deepEqual(await b.store.getReservation(v.value.reservationId), voided, 'a voided hold keeps its row');
  assert.deepEqual(await b.engine.settle(settleInput(s.value.reservationId, 'req_s', usage(100, 5000))), record, 'settle replay returns the stored record');
  const again = await b.engine.reserve(reserveInput('req_s'));
  assert.equal(!again.ok && again.code, 'duplicate_request', 'a settled request id is never reserved again');
  const late = await b.engine.settle(settleInput(v.value.reservationId, 'req_v', usage(10, 10)));
  assert.equal(late.costCoins, 20, "a settle after void is charged at the reservation's rate");
  assert.deepEqual(await b.store.getReservation(v.value.reservationId), { ...voided, state: 'settled' }, 'a settle after void moves only the state');
  assert.deepEqual((await auditAccount(b.store, 'acct_1')).problems, []);
});

test('an open reservation row written by an older version (its hold in the rows) settles and releases from the rows', async () => {
  const db = new Database(':memory:');
  const clock = new ManualClock(T0);
  const a = engineOn(db, clock, 8);
  await a.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
  const r = await a.engine.reserve(reserveInput('req_1'));
  assert.ok(r.ok);
  const open = (await a.store.getReservation(r.value.reservationId))!;
  const hold = open.allocations[0]!;
  // What the previous version wrote for an open hold: the row and the bucket's held column.
  db.prepare(`INSERT INTO charging_reservations (id, request_id, account_id, member_id, state, valid_until_ms, created_at_ms, data, closed_at_ms)
    VALUES (?, ?, ?, NULL, 'open', ?, ?, ?, NULL)`).run(open.id, open.requestId, open.accountId, open.validUntilMs, open.createdAtMs, JSON.stringify(open));
  db.prepare('UPDATE charging_buckets SET held = held + ? WHERE id = ?').run(hold.amount, hold.bucketId);
  const b = engineOn(db, clock, 9); // the new version starts on that file
  assert.deepEqual(
    (await b.store.listOpenReservations('acct_1')).map((x) => x.id),
    [open.id],
  );
  const rec = await b.engine.settle(settleInput(open.id, 'req_1', usage(10, 10)));
  const [bucket] = await b.store.listBuckets('acct_1');
  assert.deepEqual([bucket!.held, bucket!.consumed], [0, rec.costCoins]);
  assert.equal(db.prepare('SELECT held FROM charging_buckets').pluck().get(), 0);
  assert.equal((await b.store.getReservation(open.id))?.state, 'settled');
  assert.deepEqual((await auditAccount(b.store, 'acct_1')).problems, []);
});

test('memory holds roll back with a failed batch: the good operation is re-run alone and counted once', async () => {
  const db = new Database(':memory:');
  const clock = new ManualClock(T0);
  const { store, engine } = engineOn(db, clock, 10);
  await engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
  const bucket = (await store.listBuckets('acct_1'))[0]!;
  const hold = (id: string) => ({
    id: `rsv_${id}`,
    requestId: id,
    accountId: 'acct_1',
    memberId: null,
    keyId: 'key_1',
    model: 'ref',
    stream: false,
    state: 'open' as const,
    rateVersion: 'v1',
    rate: { coinsPerTokenInput: { num: 1, den: 1 }, coinsPerTokenOutput: { num: 1, den: 1 }, coinsPerTokenCachedInput: { num: 1, den: 1 } },
    currency: 'CNY',
    minorUnitsPerMajor: 100,
    tokensInputEstimate: 10,
    tokensOutputMax: 10,
    tokensOutputGranted: 10,
    allocations: [{ bucketId: bucket.id, unit: 'tokens' as const, amount: 20 }],
    capHeld: 0,
    capCycleIndex: null,
    extensions: 0,
    createdAtMs: T0,
    validUntilMs: T0 + 60_000,
    closedAtMs: null,
  });
  const empty = {
    bucketsCreate: [],
    schedulesUpdate: [],
    memberUsageDeltas: [],
    usageRecord: null,
    ledger: [],
    events: [],
    policyUpsert: null,
    memberCapUpsert: null,
  };
  // Submitted in the same turn: one batch. The second one fails inside it (a bucket that does not exist).
  const good = store.runAccountOp({ accountId: 'acct_1', nowMs: T0 }, () => ({
    result: 'good',
    mutation: { ...empty, reservationUpsert: hold('req_a'), bucketDeltas: [{ bucketId: bucket.id, held: 20 }] },
  }));
  const bad = store.runAccountOp({ accountId: 'acct_1', nowMs: T0 }, () => ({
    result: 'bad',
    mutation: {
      ...empty,
      reservationUpsert: hold('req_b'),
      bucketDeltas: [
        { bucketId: bucket.id, held: 20 },
        { bucketId: 'bkt_missing', held: 1 },
      ],
    },
  }));
  assert.equal(await good, 'good');
  await assert.rejects(bad);
  assert.equal((await store.listBuckets('acct_1'))[0]!.held, 20, 'the good hold counted once, the failed one not at all');
  assert.deepEqual(
    (await store.listOpenReservations('acct_1')).map((r) => r.id),
    ['rsv_req_a'],
  );
  assert.deepEqual((await auditAccount(store, 'acct_1')).problems, []);
});

test('rows written before the closed_at_ms column (V1) read back from their document', async () => {
  const db = new Database(':memory:');
  const clock = new ManualClock(T0);
  const a = engineOn(db, clock, 6);
  await a.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
  const r = await a.engine.reserve(reserveInput('req_1'));
  assert.ok(r.ok);
  await a.engine.void(r.value.reservationId);
  const expected = await a.store.getReservation(r.value.reservationId);
  // What a V1 close wrote: the whole document, no closed_at_ms column value.
  db.prepare('UPDATE charging_reservations SET data = ?, closed_at_ms = NULL WHERE id = ?').run(JSON.stringify(expected), r.value.reservationId);
  const b = engineOn(db, clock, 7);
  assert.deepEqual(await b.store.getReservation(r.value.reservationId), expected);
});

test("one process per data folder: a live owner is refused with its pid; a dead owner's lock, or our pid from a previous run, is taken over", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokengrid-lock-'));
  try {
    const release = lockDataDir(dir);
    assert.throws(() => lockDataDir(dir), new RegExp(`in use by process ${process.pid}`));
    release();
    assert.equal(existsSync(join(dir, 'tokengrid.lock')), false, 'released');
    writeFileSync(join(dir, 'tokengrid.lock'), '2147483646\n'); // no such process
    const again = lockDataDir(dir);
    assert.equal(readFileSync(join(dir, 'tokengrid.lock'), 'utf8').trim(), String(process.pid));
    again();
    // Our pid in a lock we do not hold: a previous incarnation (a container restarted with the same pid).
    writeFileSync(join(dir, 'tokengrid.lock'), `${process.pid}\n`);
    const third = lockDataDir(dir);
    third();
    third();
    assert.equal(existsSync(join(dir, 'tokengrid.lock')), false, 'releasing twice is harmless');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a settle's consume entries live in its usage record: no ledger row, listed as before, never twice", async () => {
  const db = new Database(':memory:');
  const clock = new ManualClock(T0);
  const { store, engine } = engineOn(db, clock, 11);
  await engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
  const r = await engine.reserve(reserveInput('req_1'));
  assert.ok(r.ok);
  const rec = await engine.settle(settleInput(r.value.reservationId, 'req_1', usage(10, 10)));
  assert.equal(db.prepare("SELECT COUNT(*) FROM charging_ledger WHERE op = 'consume'").pluck().get(), 0, 'no consume row is written');
  const consume = (await store.listLedger('acct_1')).filter((e) => e.op === 'consume');
  assert.deepEqual(consume, [
    {
      id: `consume:req_1:${rec.charges[0]!.bucketId}`,
      accountId: 'acct_1',
      op: 'consume',
      debit: `bucket:${rec.charges[0]!.bucketId}`,
      credit: 'house:revenue',
      unit: 'tokens',
      currency: null,
      amount: rec.costCoins,
      requestId: 'req_1',
      atMs: rec.settledAtMs,
    },
  ]);
  // A database written before this change has the consume row too: it is listed once.
  const e = consume[0]!;
  db.prepare(
    'INSERT INTO charging_ledger (account_id, id, op, debit, credit, unit, currency, amount, request_id, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(e.accountId, e.id, e.op, e.debit, e.credit, e.unit, e.currency, e.amount, e.requestId, e.atMs);
  assert.equal((await store.listLedger('acct_1')).filter((x) => x.op === 'consume').length, 1);
  assert.deepEqual((await auditAccount(store, 'acct_1')).problems, []);
});
