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
  const g = new GroupCommitter<number, number>((items) => {
    batches.push(items);
    return items.map((n) => (n === 3 ? { ok: false, error: new Error('three') } : { ok: true, value: n * 10 }));
  }, () => undefined);
  const results = await Promise.allSettled([1, 2, 3, 4].map((n) => g.submit(n)));
  assert.deepEqual(batches, [[1, 2, 3, 4]]);
  assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), [10, 20, 'three', 40]);
  assert.equal(await g.submit(5), 50);
  assert.deepEqual(batches.at(-1), [5]);
});

test('a failed commit fails every operation of the batch and reports it once', async () => {
  let failures = 0;
  const g = new GroupCommitter<number, number>(() => { throw new Error('disk I/O error'); }, () => failures++);
  const results = await Promise.allSettled([g.submit(1), g.submit(2)]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(failures, 1);
});

test('concurrent reserves on one small balance share a batch yet never overspend; a bug in one op fails only that op', async () => {
  const clock = new ManualClock(T0);
  const store = openSqliteChargingStore(new Database(':memory:'));
  const rates = sampleRates();
  const engine = createChargingEngine({ store, clock, ids: createIdGenerator(clock, new SeededRandom(1)), rates: () => rates });
  await engine.grantBucket({ accountId: 'acct_1', unit: 'tokens', amount: 1000, effectiveAtMs: T0, expiresAtMs: null, kind: 'addon', sourceRef: 'p' });
  const broken = store.runAccountOp({ accountId: 'acct_1', nowMs: T0 }, () => { throw new Error('planner bug'); });
  const reserves = Array.from({ length: 12 }, (_, i) => engine.reserve(reserveInput(`req_${i}`, { tokensInputEstimate: 100, tokensOutputMax: 100 })));
  await assert.rejects(broken, /planner bug/);
  const results = await Promise.all(reserves);
  assert.deepEqual(results.map((r) => r.ok), [true, true, true, true, true, false, false, false, false, false, false, false]);
  await Promise.all(results.map((r, i) => (r.ok ? engine.settle(settleInput(r.value.reservationId, `req_${i}`, usage(100, 100))) : null)));
  const [b] = await store.listBuckets('acct_1');
  assert.deepEqual([b!.consumed, b!.held], [1000, 0]);
  assert.deepEqual((await auditAccount(store, 'acct_1')).problems, []);
});

test('at concurrency 1 a lone operation commits at once; operations arriving together still share a batch', async () => {
  const batches: number[][] = [];
  const g = new GroupCommitter<number, number>((items) => {
    batches.push(items);
    return items.map((n) => ({ ok: true, value: n }));
  }, () => undefined);
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
