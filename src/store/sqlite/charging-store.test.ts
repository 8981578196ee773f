import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, SeededRandom, createIdGenerator } from '../../core/index.ts';
import { auditAccount, createChargingEngine } from '../../charging/index.ts';
import { reserveInput, sampleRates, settleInput, usage, T0 } from '../../charging/test-fixtures.ts';
import { chargingStoreContract } from '../contract/charging-store.contract.ts';
import { openSqliteChargingStore } from './charging-store.ts';

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
    assert.equal(!denied.ok && denied.code, 'insufficient_quota', 'A sees B\'s spending, not its stale cache');
    await b.engine.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 10, sourceRef: 'pay_1' });
    const paid = await a.engine.reserve(reserveInput('req_4', { tokensInputEstimate: 50, tokensOutputMax: 50 }));
    assert.ok(paid.ok, 'A sees B\'s top-up');
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
  await assert.rejects(store.runAccountOp({ accountId: 'acct_1', nowMs: T0 }, (view) => {
    const b = view.buckets[0]!;
    return { result: null, mutation: { bucketsCreate: [], bucketDeltas: [{ bucketId: b.id, held: 100 }, { bucketId: 'bkt_missing', held: 1 }],
      schedulesUpdate: [], reservationUpsert: null, memberUsageDeltas: [], usageRecord: null, ledger: [], events: [], policyUpsert: null, memberCapUpsert: null } };
  }));
  const r = await engine.reserve(reserveInput('req_1', { tokensInputEstimate: 100, tokensOutputMax: 200 }));
  assert.ok(r.ok);
  assert.equal(r.value.tokensOutputGranted, 200, 'the failed hold of 100 did not stick in the cache');
  assert.equal((await store.listBuckets('acct_1'))[0]!.held, 300);
});

test('a reservation read after a restart (no cache) is exactly what the engine wrote: closes update columns, extensions the document', async () => {
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
  const extended = await a.store.getReservation(s.value.reservationId);
  clock.advance(1_000);
  await a.engine.void(v.value.reservationId);
  const voided = await a.store.getReservation(v.value.reservationId);
  const record = await a.engine.settle(settleInput(s.value.reservationId, 'req_s', usage(100, 5000)));
  const settled = await a.store.getReservation(s.value.reservationId);
  assert.equal(extended?.extensions, 1);
  assert.equal(settled?.state, 'settled');
  assert.equal(settled?.closedAtMs, T0 + 2_000);
  assert.deepEqual({ ...settled, state: 'open', closedAtMs: null }, extended, 'settle changed nothing but state and closing time');
  assert.equal(voided?.state, 'voided');
  assert.equal(voided?.closedAtMs, T0 + 2_000);
  // A new store on the same connection has an empty cache: every read comes from the rows.
  const b = engineOn(db, clock, 5);
  assert.deepEqual(await b.store.getReservation(s.value.reservationId), settled);
  assert.deepEqual(await b.store.getReservation(v.value.reservationId), voided);
  assert.deepEqual((await b.store.listOpenReservations('acct_1')).map((r) => r.id), [t.value.reservationId]);
  assert.deepEqual(await b.engine.settle(settleInput(s.value.reservationId, 'req_s', usage(100, 5000))), record, 'settle replay returns the stored record');
  const late = await b.engine.settle(settleInput(v.value.reservationId, 'req_v', usage(10, 10)));
  assert.equal(late.costCoins, 20, 'a settle after void is charged at the reservation\'s rate');
  assert.deepEqual(await b.store.getReservation(v.value.reservationId), { ...voided, state: 'settled' }, 'a settle after void moves only the state');
  assert.deepEqual((await auditAccount(b.store, 'acct_1')).problems, []);
});

test('rows written before the closed_at_ms column (V1) read back from their document', async () => {
  const db = new Database(':memory:');
  const clock = new ManualClock(T0);
  const a = engineOn(db, clock, 6);
  await a.engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p1' });
  const r = await a.engine.reserve(reserveInput('req_1'));
  assert.ok(r.ok);
  await a.engine.settle(settleInput(r.value.reservationId, 'req_1', usage(10, 10)));
  const expected = await a.store.getReservation(r.value.reservationId);
  // What a V1 close wrote: the whole document, no closed_at_ms column value.
  db.prepare('UPDATE charging_reservations SET data = ?, closed_at_ms = NULL WHERE id = ?').run(JSON.stringify(expected), r.value.reservationId);
  const b = engineOn(db, clock, 7);
  assert.deepEqual(await b.store.getReservation(r.value.reservationId), expected);
});
