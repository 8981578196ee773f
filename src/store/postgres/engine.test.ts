/**
 * The PostgreSQL engine as several gateway nodes use it: two engines (two pools, as two processes would have) on
 * one schema share holds, so concurrent reserves on one account never hand out the same balance; a change
 * published on one node reaches the other; start-up refuses an unreachable or out-of-date database clearly.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SeededRandom, createIdGenerator, type Change } from '../../core/index.ts';
import { createChargingEngine } from '../../charging/index.ts';
import { reserveInput, sampleRates, settleInput, usage, T0 } from '../../charging/test-fixtures.ts';
import { openPostgresEngine, type PostgresEngine } from './engine.ts';
import { SchemaVersionError, checkSchemaVersion } from './migrations.ts';
import { LATEST_VERSION, MIGRATIONS } from './schema.ts';
import { PG_TEST_URL, skipWithoutPostgres, testSchemaName } from './test-support.ts';
import { partitionName } from './usage-partitions.ts';

const skip = await skipWithoutPostgres();
const schema = testSchemaName();
const opened: PostgresEngine[] = [];
async function node(o: { nowMs?: number } = {}): Promise<PostgresEngine> {
  const e = await openPostgresEngine(PG_TEST_URL, { schema, max: 4, ...o });
  opened.push(e);
  return e;
}
after(async () => {
  await opened[0]?.db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  for (const e of opened) await e.close();
});

function chargingOn(e: PostgresEngine, clock: ManualClock, seed: number) {
  const rates = sampleRates();
  return createChargingEngine({ store: e.charging, clock, ids: createIdGenerator(clock, new SeededRandom(seed)), rates: () => rates });
}

test('an unreachable database stops start-up with one message naming it, without its password', async () => {
  await assert.rejects(openPostgresEngine('postgres://tg:s3cret@127.0.0.1:1/nowhere', { schema: testSchemaName(), connectTimeoutMs: 2000 }), (e: Error) => {
    assert.match(e.message, /Cannot reach the PostgreSQL database postgres:\/\/tg:\*\*\*@127\.0\.0\.1:1\/nowhere/);
    assert.doesNotMatch(e.message, /s3cret/);
    return true;
  });
});

test('a fresh schema is migrated on first start; a database behind or ahead of this build refuses to start', { skip }, async () => {
  const a = await node();
  assert.deepEqual(
    a.migrated,
    MIGRATIONS.map((m) => m.version),
  );
  await assert.rejects(checkSchemaVersion(a.db, LATEST_VERSION + 1), (e: Error) => e instanceof SchemaVersionError && /tokengrid migrate/.test(e.message));
  await a.db.query("INSERT INTO tokengrid_migrations (version, name) VALUES (999, 'from the future')");
  try {
    await assert.rejects(openPostgresEngine(PG_TEST_URL, { schema }), /at migration 999, newer than this TokenGrid/);
  } finally {
    await a.db.query('DELETE FROM tokengrid_migrations WHERE version = 999');
  }
});

test('two nodes reserving concurrently on one account never hold more than the balance, with cold or warm caches', { skip }, async () => {
  const [a, b] = [await node(), await node()];
  const clock = new ManualClock(T0);
  const [ca, cb] = [chargingOn(a, clock, 1), chargingOn(b, clock, 2)];
  await ca.grantBucket({ accountId: 'acct_race', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'race' });
  const race = (tag: string) =>
    Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 === 0 ? ca : cb).reserve(
          reserveInput(`req_${tag}_${String(i).padStart(2, '0')}`, { accountId: 'acct_race', tokensInputEstimate: 30, tokensOutputMax: 20 }),
        ),
      ),
    );
  const grants = await race('cold');
  const ok = grants.filter((g) => g.ok);
  assert.equal(ok.length, 20, 'exactly the 20 reservations of 50 that fit in 1000');
  const [bucket] = await a.charging.listBuckets('acct_race');
  assert.equal(bucket!.held, 1000);
  // Settle everything on the other node than the one that reserved: holds are shared, not per process.
  for (const g of ok) if (g.ok) await cb.settle(settleInput(g.value.reservationId, g.value.reservationId.slice(4), usage(30, 10)));
  const [after1] = await a.charging.listBuckets('acct_race');
  assert.deepEqual([after1!.held, after1!.consumed], [0, 800]);
  // Both nodes now hold a cached view of the account: a second race on the 200 left still grants exactly 4.
  const warm = (await race('warm')).filter((g) => g.ok);
  assert.equal(warm.length, 4, 'the 4 reservations of 50 that fit in the 200 left');
  const [after2] = await a.charging.listBuckets('acct_race');
  assert.deepEqual([after2!.held, after2!.consumed], [200, 800]);
  assert.ok(a.charging.stats.stale + b.charging.stats.stale > 0, 'some optimistic attempts lost the race and took the locked path');
});

test('steady state on one node: a reserve, an extend and a settle are one round trip each', { skip }, async () => {
  const a = await node();
  const clock = new ManualClock(T0);
  const ca = chargingOn(a, clock, 4);
  await ca.grantBucket({ accountId: 'acct_one', unit: 'tokens', amount: 100_000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'one' });
  const pair = async (id: string) => {
    const g = await ca.reserve(reserveInput(id, { accountId: 'acct_one', tokensInputEstimate: 30, tokensOutputMax: 20 }));
    assert.ok(g.ok, JSON.stringify(g));
    const s = await ca.settle(settleInput(g.value.reservationId, id, usage(30, 10)));
    assert.equal(s.requestId, id);
  };
  await pair('req_one_warm'); // the grant dropped the cache: this reserve takes the locked path and fills it
  const s0 = { ...a.charging.stats };
  for (let i = 0; i < 5; i++) {
    clock.advance(10);
    await pair(`req_one_${i}`);
  }
  assert.deepEqual([a.charging.stats.ops - s0.ops, a.charging.stats.roundTrips - s0.roundTrips, a.charging.stats.stale - s0.stale], [10, 10, 0]);
  const s = await ca.reserve(reserveInput('req_one_stream', { accountId: 'acct_one', tokensInputEstimate: 10, tokensOutputMax: 2000, stream: true }));
  assert.ok(s.ok);
  const e0 = { ...a.charging.stats };
  assert.ok((await ca.extend({ reservationId: s.value.reservationId, tokensOutputMore: 100 })).ok);
  assert.deepEqual([a.charging.stats.ops - e0.ops, a.charging.stats.roundTrips - e0.roundTrips], [1, 1], 'an extend is one operation, one round trip');
  const [bucket] = await a.charging.listBuckets('acct_one');
  assert.equal(bucket!.consumed, 6 * 40);
  assert.equal((await a.charging.listUsage('acct_one', T0, T0 + 1000)).length, 6, 'one usage record per request');
  // A settle retried after it landed: the record is found (locked path), never charged twice.
  const again = await ca.settle(settleInput('rsv_req_one_0', 'req_one_0', usage(30, 10)));
  assert.equal(again.costCoins, 40);
  assert.equal((await a.charging.listBuckets('acct_one'))[0]!.consumed, 6 * 40);
});

test('two nodes alternating on one account: a stale cache is detected, the locked path decides again, the balance holds', { skip }, async () => {
  const [a, b] = [await node(), await node()];
  const clock = new ManualClock(T0);
  const [ca, cb] = [chargingOn(a, clock, 5), chargingOn(b, clock, 6)];
  await ca.grantBucket({ accountId: 'acct_alt', unit: 'tokens', amount: 500, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'alt' });
  const reserveOn = (c: typeof ca, id: string) => c.reserve(reserveInput(id, { accountId: 'acct_alt', tokensInputEstimate: 30, tokensOutputMax: 20 }));
  // Warm both caches (locked path each).
  assert.ok((await reserveOn(ca, 'req_alt_a0')).ok);
  assert.ok((await reserveOn(cb, 'req_alt_b0')).ok);
  const [sa, sb] = [{ ...a.charging.stats }, { ...b.charging.stats }];
  const results = [];
  for (let i = 1; i <= 8; i++) results.push(await reserveOn(i % 2 === 1 ? ca : cb, `req_alt_${i}`));
  // 500 holds 10 reservations of 50: 2 before, 8 now. The first attempt on each node after the other one wrote is
  // stale (1 round trip, then the locked path's 2); after that the node backs off and takes the locked path directly.
  assert.equal(results.filter((g) => g.ok).length, 8);
  assert.deepEqual([a.charging.stats.stale - sa.stale, b.charging.stats.stale - sb.stale], [1, 1], 'each node saw the other one write in between');
  assert.equal(a.charging.stats.roundTrips - sa.roundTrips + (b.charging.stats.roundTrips - sb.roundTrips), 8 * 2 + 2);
  // Full now: one more on each node is refused, whichever path decides it.
  assert.equal((await reserveOn(ca, 'req_alt_full_a')).ok, false);
  assert.equal((await reserveOn(cb, 'req_alt_full_b')).ok, false);
  const [bucket] = await a.charging.listBuckets('acct_alt');
  assert.equal(bucket!.held, 500);
  // A settle on the node that did not reserve, then a reserve on the other one sees the freed balance.
  assert.equal((await cb.settle(settleInput('rsv_req_alt_1', 'req_alt_1', usage(30, 0)))).requestId, 'req_alt_1');
  const small = await ca.reserve(reserveInput('req_alt_after', { accountId: 'acct_alt', tokensInputEstimate: 10, tokensOutputMax: 10 }));
  assert.ok(small.ok, 'the 20 freed by the settle are seen by the other node');
  assert.equal((await a.charging.listBuckets('acct_alt'))[0]!.held + 30, 500);
});

test('usage records land in their month partition and the daily rollup sums them per account, day and model', { skip }, async () => {
  const now = Date.UTC(2026, 11, 7, 12);
  const a = await node({ nowMs: now });
  const clock = new ManualClock(now);
  const c = chargingOn(a, clock, 3);
  await c.grantBucket({ accountId: 'acct_roll', unit: 'tokens', amount: 10_000, effectiveAtMs: now - 1, expiresAtMs: null, kind: 'addon', sourceRef: 'roll' });
  for (const i of [1, 2, 3]) {
    const g = await c.reserve(reserveInput(`req_roll_${i}`, { accountId: 'acct_roll', tokensInputEstimate: 10, tokensOutputMax: 10 }));
    assert.ok(g.ok);
    await c.settle(settleInput(g.value.reservationId, `req_roll_${i}`, usage(10, 5 * i)));
  }
  const where = await a.db.query("SELECT DISTINCT tableoid::regclass::text AS p FROM charging_usage_records WHERE account_id = 'acct_roll'");
  assert.deepEqual(
    where.rows.map((r) => r.p),
    [partitionName(now)],
  );
  const days = await a.charging.listUsageDays('acct_roll', '2026-12-07', '2026-12-07');
  assert.equal(days.length, 1);
  assert.deepEqual([days[0]!.requests, days[0]!.tokensInput, days[0]!.tokensOutput], [3, 30, 30]);
  const records = await a.charging.listUsage('acct_roll', now - 1, now + 1);
  assert.equal(
    days[0]!.costCoins,
    records.reduce((s, r) => s + r.costCoins, 0),
  );
  assert.equal((await a.charging.getUsageRecord('req_roll_2'))?.usage.tokensOutput, 10);
});

test('a change published on one node reaches the other node (within a second); a dropped listener reconnects and says refresh everything', {
  skip,
}, async () => {
  const [a, b] = [await node(), await node()];
  const heard: Change[] = [];
  const next = () =>
    new Promise<Change>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no change heard within 2 s')), 2000);
      const off = b.changes!.subscribe((c) => {
        clearTimeout(timer);
        off();
        resolve(c);
      });
    });
  b.changes!.subscribe((c) => heard.push(c));
  const first = next();
  await a.changes!.publish('keys', 'key_1');
  assert.deepEqual(await first, { topic: 'keys', id: 'key_1', origin: a.changes!.nodeId });
  const refresh = next();
  b.changes!.dropConnectionForTest();
  assert.equal((await refresh).origin, '*', 'after a reconnect every topic is announced');
  const again = next();
  await a.changes!.publish('plans');
  assert.deepEqual(await again, { topic: 'plans', origin: a.changes!.nodeId }, 'the reconnected listener hears new changes');
  assert.equal(heard.filter((c) => c.origin === '*').length, 5, 'one refresh per topic');
});

test('a sweep of a reservation another node opened takes the locked path directly: no wasted optimistic round trip, no back-off', { skip }, async () => {
  const [a, b] = [await node(), await node()];
  const clock = new ManualClock(T0);
  const [ca, cb] = [
    createChargingEngine({
      store: a.charging,
      clock,
      ids: createIdGenerator(clock, new SeededRandom(21)),
      rates: () => sampleRates(),
      config: { reservationTtlMs: 1000, reservationGraceMs: 0 },
    }),
    createChargingEngine({
      store: b.charging,
      clock,
      ids: createIdGenerator(clock, new SeededRandom(22)),
      rates: () => sampleRates(),
      config: { reservationTtlMs: 1000, reservationGraceMs: 0 },
    }),
  ];
  await ca.grantBucket({ accountId: 'acct_swp', unit: 'tokens', amount: 500, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'swp' });
  const r = await ca.reserve(reserveInput('req_swp_a', { accountId: 'acct_swp', tokensInputEstimate: 30, tokensOutputMax: 20 }));
  assert.ok(r.ok);
  // Node b's cache of the account is current (it read after a's write) but has never seen a's reservation.
  await b.charging.runAccountOp({ accountId: 'acct_swp', nowMs: clock.nowMs() }, () => ({ mutation: null, result: null }));
  clock.advance(5000);
  const s0 = { ...b.charging.stats };
  assert.equal(await cb.sweepExpired(), 1);
  assert.equal(b.charging.stats.stale - s0.stale, 0, 'an unknown reservation is not a stale cache');
  // The hold is released.
  const after = await b.charging.listBuckets('acct_swp');
  assert.equal(after[0]!.held, 0);
  // The account is not backed off: b's next operation on it answers from the cache in one round trip.
  const s1 = { ...b.charging.stats };
  assert.ok((await cb.reserve(reserveInput('req_swp_b', { accountId: 'acct_swp', tokensInputEstimate: 30, tokensOutputMax: 20 }))).ok);
  assert.equal(b.charging.stats.optimistic - s1.optimistic, 1, 'one optimistic round trip after the sweep');
});

test('a dropped connection (a server crash loses the last holds-only commits and their versions) empties the cache: the next operation reads under the lock', {
  skip,
}, async () => {
  const a = await node();
  const clock = new ManualClock(T0);
  const ca = chargingOn(a, clock, 31);
  await ca.grantBucket({ accountId: 'acct_crash_x9', unit: 'tokens', amount: 500, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'c' });
  const reserve = (id: string) => ca.reserve(reserveInput(id, { accountId: 'acct_crash_x9', tokensInputEstimate: 30, tokensOutputMax: 20 }));
  assert.ok((await reserve('req_crash_0')).ok);
  assert.ok((await reserve('req_crash_1')).ok);
  const s0 = { ...a.charging.stats };
  assert.ok((await reserve('req_crash_2')).ok);
  assert.equal(a.charging.stats.optimistic - s0.optimistic, 1, 'warm: answered from the cache');
  // The server ends the node's idle connections (as a crash and restart would).
  const dropped = new Promise((resolve) => a.db.pool.once('error', resolve));
  const killer = await node();
  await killer.db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%acct_crash_x9%'");
  await dropped;
  const s1 = { ...a.charging.stats };
  assert.ok((await reserve('req_crash_3')).ok);
  assert.deepEqual([a.charging.stats.optimistic - s1.optimistic, a.charging.stats.roundTrips - s1.roundTrips], [0, 2], 'the locked path, not the cache');
});
