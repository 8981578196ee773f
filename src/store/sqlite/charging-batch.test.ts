import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { ManualClock, SeededRandom, createIdGenerator } from '../../core/index.ts';
import { auditAccount, createChargingEngine } from '../../charging/index.ts';
import { reserveInput, sampleRates, settleInput, usage, T0 } from '../../charging/test-fixtures.ts';
import { GroupCommitter } from './charging-batch.ts';
import { openSqliteChargingStore } from './charging-store.ts';

test('operations submitted in one turn run as one batch, in order, each answered with its own outcome', async () => {
  const batches: number[][] = [];
  const g = new GroupCommitter<number, number>(
    (items) => {
      batches.push(items);
      return items.map((n) => (n === 3 ? { ok: false, error: new Error('three') } : { ok: true, value: n * 10 }));
    },
    () => undefined,
  );
  const results = await Promise.allSettled([1, 2, 3, 4].map((n) => g.submit(n)));
  assert.deepEqual(batches, [[1, 2, 3, 4]]);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    [10, 20, 'three', 40],
  );
  assert.equal(await g.submit(5), 50);
  assert.deepEqual(batches.at(-1), [5]);
});

test('a failed commit fails every operation of the batch and reports it once', async () => {
  let failures = 0;
  const g = new GroupCommitter<number, number>(
    () => {
      throw new Error('disk I/O error');
    },
    () => failures++,
  );
  const results = await Promise.allSettled([g.submit(1), g.submit(2)]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  assert.equal(failures, 1);
});

test('concurrent reserves on one small balance share a batch yet never overspend; a bug in one op fails only that op', async () => {
  const clock = new ManualClock(T0);
  const store = openSqliteChargingStore(new Database(':memory:'));
  const rates = sampleRates();
  const engine = createChargingEngine({ store, clock, ids: createIdGenerator(clock, new SeededRandom(1)), rates: () => rates });
  await engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p' });
  const broken = store.runAccountOp({ accountId: 'acct_1', nowMs: T0 }, () => {
    throw new Error('planner bug');
  });
  const reserves = Array.from({ length: 12 }, (_, i) => engine.reserve(reserveInput(`req_${i}`, { tokensInputEstimate: 100, tokensOutputMax: 100 })));
  await assert.rejects(broken, /planner bug/);
  const results = await Promise.all(reserves);
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true, true, true, true, false, false, false, false, false, false, false],
  );
  await Promise.all(results.map((r, i) => (r.ok ? engine.settle(settleInput(r.value.reservationId, `req_${i}`, usage(100, 100))) : null)));
  const [b] = await store.listBuckets('acct_1');
  assert.deepEqual([b!.consumed, b!.held], [1000, 0]);
  assert.deepEqual((await auditAccount(store, 'acct_1')).problems, []);
});

test('at concurrency 1 a lone operation commits at once; operations arriving together still share a batch', async () => {
  const batches: number[][] = [];
  const g = new GroupCommitter<number, number>(
    (items) => {
      batches.push(items);
      return items.map((n) => ({ ok: true, value: n }));
    },
    () => undefined,
  );
  await g.submit(1); // no history yet: batched path
  await new Promise((r) => setImmediate(r));
  const lone = g.submit(2);
  assert.deepEqual(batches, [[1], [2]], 'after a batch of one, the next lone operation ran inline');
  assert.equal(await lone, 2);
  await new Promise((r) => setImmediate(r));
  const together = [g.submit(3), g.submit(4), g.submit(5)];
  assert.deepEqual(batches.at(-1), [3], 'the first of a burst may run inline');
  await Promise.all(together);
  assert.deepEqual(batches.at(-1), [4, 5], 'the rest of the burst shares one batch');
  await new Promise((r) => setImmediate(r));
  const afterBurst = g.submit(6);
  assert.deepEqual(batches.at(-1), [4, 5], 'after a shared batch, operations are batched again (not inline)');
  assert.equal(await afterBurst, 6);
  assert.deepEqual(batches.at(-1), [6]);
});

test('a batch whose bucket moves are summed per bucket ends as the memory store does, op by op (settles, voids, late settles, a sweep)', async () => {
  const { harness } = await import('../../charging/test-fixtures.ts');
  const { openMemoryChargingStore } = await import('../memory/charging-store.ts');
  const { DAY_MS } = await import('../../charging/test-fixtures.ts');
  const run = async (store: import('../../charging/index.ts').ChargingStore) => {
    const h = harness(store);
    const e = h.engine;
    const log: unknown[] = [];
    const plan = await e.grantBucket({
      accountId: 'acct_1',
      unit: 'tokens',
      amount: 2_000,
      effectiveAtMs: T0,
      expiresAtMs: T0 + DAY_MS,
      kind: 'plan_allowance',
      sourceRef: 'plan',
    });
    await e.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 100_000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'addon' });
    log.push(plan);
    // One batch of reserves (the plan pays the first ones, the addon the rest).
    const rs = await Promise.all(Array.from({ length: 16 }, (_, i) => e.reserve(reserveInput(`req_${i}`, { tokensInputEstimate: 100, tokensOutputMax: 100 }))));
    log.push(rs);
    const id = (i: number) => (rs[i]!.ok ? rs[i]!.value.reservationId : '');
    // One batch: settles within and beyond their holds, a settle repeated in the same batch, voids, new reserves.
    log.push(
      await Promise.allSettled([
        ...[0, 1, 2, 3, 9, 10].map((i) => e.settle(settleInput(id(i), `req_${i}`, usage(80, 60)))),
        e.settle(settleInput(id(4), 'req_4', usage(400, 300))),
        e.settle(settleInput(id(4), 'req_4', usage(400, 300))),
        e.void(id(5)),
        e.void(id(11)),
        ...[20, 21].map((i) => e.reserve(reserveInput(`req_${i}`, { tokensInputEstimate: 50, tokensOutputMax: 50 }))),
      ]),
    );
    // The plan expires: late settles on it, and a sweep that books its leftover, in one batch.
    h.clock.advance(DAY_MS + 1);
    log.push(
      await Promise.allSettled([
        ...[6, 7, 12].map((i) => e.settle(settleInput(id(i), `req_${i}`, usage(90, 90)))),
        e.sweepExpired(),
        e.settle(settleInput(id(8), 'req_8', usage(10, 10))),
      ]),
    );
    const buckets = (await store.listBuckets('acct_1'))
      .map((b) => [b.sourceRef, b.amount, b.consumed, b.held, b.forfeited])
      .sort((x, y) => (x[0]! < y[0]! ? -1 : 1));
    const records = (await store.listUsage('acct_1', 0, T0 + 10 * DAY_MS)).map((u) => [u.requestId, u.costCoins, u.leakCoins, JSON.stringify(u.charges)]);
    return { log: JSON.stringify(log), buckets, records, problems: (await auditAccount(store, 'acct_1')).problems };
  };
  const sqlite = await run(openSqliteChargingStore(new Database(':memory:')));
  const memory = await run(openMemoryChargingStore());
  assert.deepEqual(sqlite.problems, []);
  assert.deepEqual(sqlite.buckets, memory.buckets);
  assert.deepEqual(sqlite.records, memory.records);
  assert.equal(sqlite.log, memory.log);
  assert.ok(
    sqlite.buckets.some((b) => (b[2] as number) > 0 && (b[4] as number) > 0),
    'the plan was consumed and its leftover forfeited',
  );
});

test('a bucket row read in the middle of a batch shows the moves the batch made before it', async () => {
  const { emptyMutation } = await import('../../charging/index.ts');
  const { harness, DAY_MS } = await import('../../charging/test-fixtures.ts');
  const store = openSqliteChargingStore(new Database(':memory:'));
  const h = harness(store);
  const old = await h.engine.grantBucket({
    accountId: 'acct_1',
    unit: 'tokens',
    amount: 100,
    effectiveAtMs: T0,
    expiresAtMs: T0 + DAY_MS,
    kind: 'addon',
    sourceRef: 'old',
  });
  assert.ok(old.ok);
  h.clock.advance(2 * DAY_MS);
  // A management write drops the account's cache entry: the expired bucket is then read from its row.
  await h.engine.grantBucket({
    accountId: 'acct_1',
    unit: 'tokens',
    amount: 100,
    effectiveAtMs: h.clock.nowMs(),
    expiresAtMs: null,
    kind: 'addon',
    sourceRef: 'new',
  });
  const nowMs = h.clock.nowMs();
  const consumedSeen: number[] = [];
  const move = (n: number) =>
    store.runAccountOp({ accountId: 'acct_1', nowMs }, () => {
      const m = emptyMutation();
      m.bucketDeltas.push({ bucketId: old.value.id, consumed: n });
      return { mutation: m, result: null };
    });
  const look = () =>
    store.runAccountOp({ accountId: 'acct_1', nowMs, includeExpiredLeftovers: true }, (v) => {
      consumedSeen.push(v.buckets.find((b) => b.id === old.value.id)?.consumed ?? -1);
      return { mutation: null, result: null };
    });
  await Promise.all([move(5), look(), move(7), look()]); // one batch
  assert.deepEqual(consumedSeen, [5, 12]);
  assert.equal((await store.listBuckets('acct_1')).find((b) => b.id === old.value.id)?.consumed, 12);
});
