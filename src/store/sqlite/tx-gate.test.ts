import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SeededRandom, createIdGenerator } from '../../core/index.ts';
import { auditAccount, createChargingEngine, type RateTable } from '../../charging/index.ts';
import { zeroUsage } from '../../wire/index.ts';
import { openSqlite } from './db.ts';
import { openSqliteChargingStore } from './charging-store.ts';
import { openSqliteBillingStore } from './billing-store.ts';

const one = { num: 1, den: 1 };
const rates: RateTable = { version: 'v1', models: { m: { coinsPerTokenInput: one, coinsPerTokenOutput: one, coinsPerTokenCachedInput: one } } };

test('a gateway settle that runs while a billing order is open is not lost when the order rolls back', async () => {
  const db = openSqlite(':memory:');
  const clock = new ManualClock('2026-11-01T00:00:00Z');
  const store = openSqliteChargingStore(db);
  const billing = openSqliteBillingStore(db);
  const engine = createChargingEngine({ store, clock, ids: createIdGenerator(clock, new SeededRandom(1)), rates: () => rates });
  const accountId = 'acct_1';
  assert.ok(
    (await engine.grantBucket({ accountId, unit: 'tokens', amount: 10_000, effectiveAtMs: clock.nowMs(), expiresAtMs: null, kind: 'trial', sourceRef: 'base' }))
      .ok,
  );

  let release!: () => void;
  const order = billing.atomically(async () => {
    await engine.grantBucket({ accountId, unit: 'tokens', amount: 500, effectiveAtMs: clock.nowMs(), expiresAtMs: null, kind: 'addon', sourceRef: 'in-order' });
    await new Promise<void>((r) => {
      release = r;
    });
    throw new Error('the order fails late');
  });
  // A request arrives while the order's transaction is open.
  const request = (async () => {
    const r = await engine.reserve({
      requestId: 'req_a',
      accountId,
      memberId: null,
      keyId: 'key_1',
      model: 'm',
      tokensInputEstimate: 10,
      tokensOutputMax: 20,
      stream: false,
    });
    assert.ok(r.ok);
    return engine.settle({
      reservationId: r.value.reservationId,
      requestId: 'req_a',
      usage: { ...zeroUsage(), tokensInput: 10, tokensOutput: 20 },
      usageEstimated: false,
      status: 'ok',
      provider: 'p',
      upstreamModel: 'm',
      region: 'r',
      deploymentId: 'd',
      latencyMs: 1,
      ttftMs: null,
    });
  })();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  release();
  await assert.rejects(order, /fails late/);
  const record = await request;
  assert.equal(record.requestId, 'req_a');
  assert.ok(await engine.getUsageRecord('req_a'), 'the usage record is durable');
  const buckets = await engine.listBuckets(accountId);
  assert.equal(buckets.length, 1, 'the rolled-back order left no bucket');
  assert.equal(buckets[0]!.used, 30);
  assert.deepEqual((await auditAccount(store, accountId)).problems, []);
  db.close();
});

test('after an exclusive section, promises no longer carry async-context bookkeeping (Node 20 promise hooks off)', async () => {
  // In a child process: the test runner may use async context itself.
  const { execFileSync } = await import('node:child_process');
  const script = `
    import { openSqlite } from './src/store/sqlite/db.ts';
    import { txGate } from './src/store/sqlite/tx-gate.ts';
    const hooked = () => Object.getOwnPropertySymbols(Promise.resolve()).length > 0;
    const gate = txGate(openSqlite(':memory:'));
    await null; // the gate's priming run (see its constructor) switches hooks off as of the next tick
    const before = hooked();
    let inside = false;
    await gate.exclusive(async () => { await null; inside = hooked() && gate.heldByCaller(); });
    const after = hooked();
    await gate.exclusive(async () => { await null; });
    console.log(JSON.stringify({ before, inside, after, again: hooked(), heldOutside: gate.heldByCaller() }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../../../', import.meta.url),
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { before: false, inside: true, after: false, again: false, heldOutside: false });
});

test('the first exclusive section does not throw away optimized async code: the gate primes promise hooks when made', async () => {
  // V8 discards every optimized function that awaits when promise hooks are first switched on (the first
  // AsyncLocalStorage.run of the process). The gate pays that when it is made, before any request code is hot.
  const { execFileSync } = await import('node:child_process');
  const run = (withGate: boolean): string =>
    execFileSync(
      process.execPath,
      [
        '--trace-opt',
        '--trace-deopt',
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `
    import { AsyncLocalStorage } from 'node:async_hooks';
    import { openSqlite } from './src/store/sqlite/db.ts';
    import { txGate } from './src/store/sqlite/tx-gate.ts';
    const gate = ${withGate} ? txGate(openSqlite(':memory:')) : null;
    async function hotPath(x) { await null; return x + 1; }
    let s = 0;
    for (let i = 0; i < 200000; i++) s += await hotPath(i);
    console.log('MARK');
    if (gate) await gate.exclusive(async () => { await null; });
    else await new AsyncLocalStorage().run(1, async () => { await null; });
    for (let i = 0; i < 10; i++) s += await hotPath(i);
  `,
      ],
      { cwd: new URL('../../../', import.meta.url), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
  const discardedAfterMark = (out: string): boolean => {
    const after = out.slice(out.indexOf('MARK\n'));
    return /marking dependent code[^\n]*SharedFunctionInfo hotPath[^\n]*code dependencies/.test(after);
  };
  const plain = run(false);
  assert.ok(plain.includes('MARK\n') && /completed optimizing[^\n]*hotPath/.test(plain), 'hotPath was optimized before the section');
  if (!discardedAfterMark(plain)) return; // this Node does not discard optimized code when hooks switch on: nothing to prime
  assert.equal(discardedAfterMark(run(true)), false);
});
