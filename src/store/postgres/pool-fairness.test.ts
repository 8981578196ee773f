/**
 * One busy account must not take every pooled connection of a node (review of issue 15): the hot path waits for an
 * account's advisory lock while holding a pooled connection, so without a per-account queue in the process, one
 * tenant whose lock is held elsewhere (a slow settle on another node, a flood of its own requests) parks all of a
 * node's connections on that lock and every other tenant of the node gets 503 charging_unavailable.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SeededRandom, createIdGenerator } from '../../core/index.ts';
import { createChargingEngine } from '../../charging/index.ts';
import { reserveInput, sampleRates, T0 } from '../../charging/test-fixtures.ts';
import { connectPostgres, type PgDb } from './db.ts';
import { openPostgresEngine, type PostgresEngine } from './engine.ts';
import { PG_TEST_URL, skipWithoutPostgres, testSchemaName } from './test-support.ts';

const skip = await skipWithoutPostgres();
const schema = testSchemaName();
let engine: PostgresEngine | undefined;
let other: PgDb | undefined;
after(async () => {
  await other?.close();
  await engine?.db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await engine?.close();
});

test("a tenant whose account lock is held elsewhere leaves the node's other connections to the other tenants", { skip }, async () => {
  engine = await openPostgresEngine(PG_TEST_URL, { schema, max: 2, connectTimeoutMs: 1500, changeFeed: false });
  const clock = new ManualClock(T0);
  const rates = sampleRates();
  const charging = createChargingEngine({ store: engine.charging, clock, ids: createIdGenerator(clock, new SeededRandom(7)), rates: () => rates });
  for (const accountId of ['acct_hot', 'acct_cold']) {
    await charging.grantBucket({ accountId, unit: 'tokens', amount: 100_000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'seed' });
  }
  // Another node holds acct_hot's lock (a slow settle there).
  other = await connectPostgres(PG_TEST_URL, { schema, max: 1 });
  const holder = await other.pool.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', ['acct_hot']);
  const hot = Array.from({ length: 4 }, (_, i) =>
    charging.reserve(reserveInput(`req_hot_${i}`, { accountId: 'acct_hot', tokensInputEstimate: 10, tokensOutputMax: 10 })),
  );
  try {
    const cold = await charging.reserve(reserveInput('req_cold_1', { accountId: 'acct_cold', tokensInputEstimate: 10, tokensOutputMax: 10 }));
    assert.equal(cold.ok, true, "acct_cold's reserve is served while acct_hot waits for its lock");
  } finally {
    await holder.query('COMMIT');
    holder.release();
  }
  const grants = await Promise.all(hot);
  assert.deepEqual(
    grants.map((g) => g.ok),
    [true, true, true, true],
    'the queued reserves of acct_hot run once its lock is free',
  );
});
