/**
 * The SQLite store skips the reservation and usage-record lookups of a reserve whose request id sorts above every
 * id it has seen (charging-store.ts, #highWater). These tests reuse request ids in every way that must still be
 * refused: after a restart, below the high-water mark, non-ASCII, voided, and written by another connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, SeededRandom, createIdGenerator } from '../../core/index.ts';
import { createChargingEngine } from '../../charging/index.ts';
import { reserveInput, sampleRates, settleInput, usage, T0 } from '../../charging/test-fixtures.ts';
import { openSqliteChargingStore } from './charging-store.ts';
import { openSqlite } from './db.ts';

function engineOn(db: Database.Database, clock: ManualClock, seed: number) {
  const store = openSqliteChargingStore(db);
  const rates = sampleRates();
  return createChargingEngine({ store, clock, ids: createIdGenerator(clock, new SeededRandom(seed)), rates: () => rates });
}

type Engine = ReturnType<typeof engineOn>;

async function spend(engine: Engine, requestId: string): Promise<void> {
  const r = await engine.reserve(reserveInput(requestId, { tokensInputEstimate: 10, tokensOutputMax: 10 }));
  assert.ok(r.ok, `reserve ${requestId}`);
  await engine.settle(settleInput(r.value.reservationId, requestId, usage(10, 10)));
}

async function refused(engine: Engine, requestId: string): Promise<void> {
  const r = await engine.reserve(reserveInput(requestId, { tokensInputEstimate: 10, tokensOutputMax: 10 }));
  assert.equal(r.ok ? 'ok' : r.code, 'duplicate_request', `reusing ${requestId}`);
}

function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-highwater-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const grant = {
  accountId: 'acct_1',
  unit: 'tokens' as const,
  amount: 1_000_000,
  effectiveAtMs: T0,
  expiresAtMs: null,
  kind: 'addon' as const,
  sourceRef: 'p1',
};

test('request ids settled before a restart, above or below the others, are refused after it', () =>
  withDir(async (dir) => {
    const path = join(dir, 'tokengrid.db');
    const clock = new ManualClock(T0);
    const first = openSqlite(path, { exclusive: true });
    const a = engineOn(first, clock, 1);
    await a.grantBucket(grant);
    for (const id of ['req_m', 'client-zzz', 'client-aaa', 'req_b']) await spend(a, id);
    await refused(a, 'client-aaa'); // below the mark, in the same process
    await refused(a, 'client-zzz'); // the mark itself
    first.close();

    const second = openSqlite(path, { exclusive: true });
    const b = engineOn(second, clock, 2);
    for (const id of ['req_m', 'client-zzz', 'client-aaa', 'req_b']) await refused(b, id);
    await spend(b, 'req_n'); // new ids still work, below and above the mark
    await spend(b, 'zzzz');
    await refused(b, 'zzzz');
    second.close();
  }));

test('a voided request id and a non-ASCII one are refused when reused', () =>
  withDir(async (dir) => {
    const db = openSqlite(join(dir, 'tokengrid.db'), { exclusive: true });
    const e = engineOn(db, new ManualClock(T0), 3);
    await e.grantBucket(grant);
    const r = await e.reserve(reserveInput('zz-voided', { tokensInputEstimate: 10, tokensOutputMax: 10 }));
    assert.ok(r.ok);
    await e.void(r.value.reservationId);
    await refused(e, 'zz-voided');
    await spend(e, 'ünïcode-😀');
    await refused(e, 'ünïcode-😀');
    // An open hold (no row) with a high id: a second reserve of it returns the same hold, never a second one.
    const open = await e.reserve(reserveInput('zzz-open', { tokensInputEstimate: 10, tokensOutputMax: 10 }));
    const again = await e.reserve(reserveInput('zzz-open', { tokensInputEstimate: 10, tokensOutputMax: 10 }));
    assert.ok(open.ok && again.ok);
    assert.equal(again.value.reservationId, open.value.reservationId);
    db.close();
  }));

/** Two connections on one WAL file, as two processes (or the gateway and the CLI) would have. */
function withTwoConnections(fn: (a: Engine, b: Engine) => Promise<void>): Promise<void> {
  return withDir(async (dir) => {
    const path = join(dir, 'tokengrid.db');
    const dbA = new Database(path);
    dbA.pragma('journal_mode = WAL');
    const dbB = new Database(path);
    const clock = new ManualClock(T0);
    try {
      await fn(engineOn(dbA, clock, 4), engineOn(dbB, clock, 5));
    } finally {
      dbA.close();
      dbB.close();
    }
  });
}

test('a request id another connection settled is refused by this one', () =>
  withTwoConnections(async (a, b) => {
    await a.grantBucket(grant);
    await spend(a, 'req_1'); // A's mark is now req_1
    await spend(b, 'req_9'); // above A's mark, written by B
    await refused(a, 'req_9');
  }));

test('a hold open while another connection commits still settles (holds count towards the mark)', () =>
  withTwoConnections(async (a, b) => {
    await a.grantBucket(grant);
    const held = await a.reserve(reserveInput('req_5', { tokensInputEstimate: 10, tokensOutputMax: 10 }));
    assert.ok(held.ok);
    await spend(b, 'req_2'); // A must drop what it cached, its mark included
    const record = await a.settle(settleInput(held.value.reservationId, 'req_5', usage(10, 10)));
    assert.equal(record.requestId, 'req_5');
    await refused(a, 'req_5');
  }));
