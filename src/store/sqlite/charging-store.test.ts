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
