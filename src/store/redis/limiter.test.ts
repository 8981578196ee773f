import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/index.ts';
import { RedisLimiter } from './limiter.ts';
import { testRedis, type TestRedis } from './test-kit.ts';
import { RateLimiter } from '../../gateway/index.ts';

const env = await testRedis();
const skip = typeof env === 'string' ? env : false;
const T0 = 1_800_000_000_000;

describe('RedisLimiter: limits shared by several nodes', { skip }, () => {
  let r: TestRedis;
  before(() => {
    r = env as TestRedis;
  });
  after(async () => {
    await r.cleanup();
  });

  const node = async (clock: ManualClock, extra: { leaseMs?: number; renew?: boolean } = {}) =>
    new RedisLimiter({ redis: await r.connect(), clock, prefix: r.prefix, renew: false, ...extra });

  test('two nodes share one requests-per-minute limit exactly: the 11th request on either node is refused', async () => {
    const clock = new ManualClock(T0);
    const a = await node(clock);
    const b = await node(clock);
    const limits = { requestsPerMinute: 10 };
    let admitted = 0;
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).admit(`req_${i}`, 'key_rpm', limits, 'acc_rpm', {}, 5, T0)));
    for (const c of answers) if (c.ok) admitted++;
    assert.equal(admitted, 10);
    const refused = answers.find((c) => !c.ok);
    assert.ok(refused && !refused.ok && refused.message === 'Rate limit reached: 10 requests per minute for this key.', JSON.stringify(refused));
    // A minute later the window has slid past them.
    assert.equal((await a.admit('req_late', 'key_rpm', limits, 'acc_rpm', {}, 5, T0 + 60_000)).ok, true);
  });

  test("the account's plan limit counts every key of the account on every node, and names the plan", async () => {
    const clock = new ManualClock(T0);
    const a = await node(clock);
    const b = await node(clock);
    const plan = { tokensPerMinute: 1_000 };
    assert.equal((await a.admit('r1', 'key_x', {}, 'acc_tpm', plan, 600, T0)).ok, true);
    const second = await b.admit('r2', 'key_y', {}, 'acc_tpm', plan, 600, T0 + 1_000);
    assert.deepEqual(second.ok ? null : second.message, "Rate limit reached: 1000 tokens per minute for this account's plan.");
    // The first request used 100 tokens, not 600: done corrects the window, and the second now fits.
    a.done('r1', 'key_x', 'acc_tpm', 600, 100, T0 + 2_000);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal((await b.admit('r3', 'key_y', {}, 'acc_tpm', plan, 600, T0 + 3_000)).ok, true);
  });

  test('a refusal by the plan leaves nothing counted against the key (both or neither)', async () => {
    const clock = new ManualClock(T0);
    const a = await node(clock);
    const keyLimits = { requestsPerMinute: 2 };
    const plan = { concurrentRequests: 1 };
    assert.equal((await a.admit('r1', 'key_bn', keyLimits, 'acc_bn', plan, 1, T0)).ok, true);
    assert.equal((await a.admit('r2', 'key_bn', keyLimits, 'acc_bn', plan, 1, T0)).ok, false);
    a.done('r1', 'key_bn', 'acc_bn', 1, 1, T0);
    // r2's refusal did not use the key's second request of the minute.
    assert.equal((await a.admit('r3', 'key_bn', keyLimits, 'acc_bn', plan, 1, T0)).ok, true);
  });

  test('concurrency is shared across nodes and released by done on another node’s count', async () => {
    const clock = new ManualClock(T0);
    const a = await node(clock);
    const b = await node(clock);
    const limits = { concurrentRequests: 3 };
    const first = await Promise.all([0, 1, 2, 3, 4].map((i) => (i < 3 ? a : b).admit(`c${i}`, 'key_c', limits, 'acc_c', {}, 1, T0)));
    assert.deepEqual(
      first.map((c) => c.ok),
      [true, true, true, false, false],
    );
    const refused = first[3]!;
    assert.equal(refused.ok ? '' : refused.message, 'Too many concurrent requests for this key (limit 3).');
    a.done('c0', 'key_c', 'acc_c', 1, 1, T0);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal((await b.admit('c5', 'key_c', limits, 'acc_c', {}, 1, T0)).ok, true);
    assert.equal((await b.admit('c6', 'key_c', limits, 'acc_c', {}, 1, T0)).ok, false);
  });

  test("a dead node's concurrency leases expire: the other node gets the slots back after the lease time, not before", async () => {
    const clock = new ManualClock(T0);
    const dead = await node(clock, { leaseMs: 10_000 });
    const alive = await node(clock, { leaseMs: 10_000 });
    const limits = { concurrentRequests: 2 };
    assert.equal((await dead.admit('d1', 'key_dead', limits, 'acc_dead', {}, 1, T0)).ok, true);
    assert.equal((await dead.admit('d2', 'key_dead', limits, 'acc_dead', {}, 1, T0)).ok, true);
    // The node dies (no done, no renewal). Before its leases expire the slots stay taken...
    assert.equal((await alive.admit('x1', 'key_dead', limits, 'acc_dead', {}, 1, T0 + 9_999)).ok, false);
    // ...and once they expired, the other node admits again.
    assert.equal((await alive.admit('x2', 'key_dead', limits, 'acc_dead', {}, 1, T0 + 10_001)).ok, true);
    assert.equal((await alive.admit('x3', 'key_dead', limits, 'acc_dead', {}, 1, T0 + 10_001)).ok, true);
    assert.equal((await alive.admit('x4', 'key_dead', limits, 'acc_dead', {}, 1, T0 + 10_001)).ok, false);
  });

  test('a live node renews its leases: a long request keeps its slot past the lease time', async () => {
    const clock = new ManualClock(T0);
    const a = await node(clock, { leaseMs: 10_000 });
    const b = await node(clock, { leaseMs: 10_000 });
    const limits = { concurrentRequests: 1 };
    assert.equal((await a.admit('long', 'key_long', limits, 'acc_long', {}, 1, T0)).ok, true);
    clock.advance(8_000);
    await a.renewLeases();
    assert.equal((await b.admit('other', 'key_long', limits, 'acc_long', {}, 1, T0 + 15_000)).ok, false);
    assert.equal((await b.admit('other', 'key_long', limits, 'acc_long', {}, 1, T0 + 18_001)).ok, true);
  });

  test('keys and accounts without limits never reach Redis (answered synchronously)', async () => {
    const a = await node(new ManualClock(T0));
    const answer = a.admit('free', 'key_free', {}, 'acc_free', {}, 100, T0);
    assert.equal(answer instanceof Promise, false);
    assert.equal(a.inFlight, 0);
  });

  test('Redis failing: the request is admitted by the local limiter (fail open) and counted as a fallback', async () => {
    const clock = new ManualClock(T0);
    const conn = await r.connect();
    const failures: unknown[] = [];
    const a = new RedisLimiter({ redis: conn, clock, prefix: r.prefix, renew: false, fallback: new RateLimiter(), onFallback: (e) => failures.push(e) });
    conn.disconnect();
    const limits = { requestsPerMinute: 1 };
    assert.equal((await a.admit('f1', 'key_f', limits, 'acc_f', {}, 1, T0)).ok, true);
    // The local limiter enforces the limit on this node meanwhile.
    const second = await a.admit('f2', 'key_f', limits, 'acc_f', {}, 1, T0);
    assert.equal(second.ok, false);
    assert.equal(failures.length, 1, 'one failure opens the breaker; the next request goes local without trying Redis');
    assert.equal(a.fallbacks, 2);
    a.done('f1', 'key_f', 'acc_f', 1, 1, T0);
  });
});
