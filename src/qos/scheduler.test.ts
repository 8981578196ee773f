import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type Admission, type Lease, type PoolLimit, type QosClass, type SchedulerTimers, type Waiting } from './scheduler.ts';

/** Hand-driven time: timers fire only when the test advances the clock. */
class FakeTimers implements SchedulerTimers {
  t = 0;
  #timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn, live: true };
    this.#timers.push(timer);
    return () => {
      timer.live = false;
    };
  }
  advance(ms: number): void {
    this.t += ms;
    for (const timer of this.#timers.filter((x) => x.live && x.at <= this.t).sort((a, b) => a.at - b.at)) {
      timer.live = false;
      timer.fn();
    }
  }
  get pending(): number {
    return this.#timers.filter((x) => x.live).length;
  }
}

const limit = (o: Partial<PoolLimit> = {}): PoolLimit => ({ maxConcurrent: 2, queueMax: 10, queueTimeoutMs: 10_000, reservedForPriority: 0, ...o });

function granted(a: Admission | Waiting): Lease {
  assert.equal(a.ok, true, 'expected an immediate slot');
  return (a as { ok: true; lease: Lease }).lease;
}
function queued(a: Admission | Waiting): Waiting {
  assert.equal(a.ok, 'queued', 'expected to wait');
  return a as Waiting;
}
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('QoS scheduler', () => {
  test('up to maxConcurrent start at once; the next waits and starts when a slot is released', async () => {
    const timers = new FakeTimers();
    const s = new Scheduler(timers);
    const a = granted(s.acquire('d', limit(), 'standard'));
    granted(s.acquire('d', limit(), 'standard'));
    const w = queued(s.acquire('d', limit(), 'standard'));
    assert.deepEqual(s.stats('d').queued.standard, 1);
    const got: Admission[] = [];
    void w.admission.then((x) => got.push(x));
    await flush();
    assert.equal(got.length, 0);
    a.release();
    await flush();
    assert.equal(got[0]?.ok, true);
    assert.equal(s.stats('d').active, 2);
    assert.equal(timers.pending, 0, 'the admitted waiter’s deadline timer is cancelled');
  });

  test('queued requests are admitted priority first, FIFO within a class', async () => {
    const timers = new FakeTimers();
    const s = new Scheduler(timers);
    const l = limit({ maxConcurrent: 1 });
    const first = granted(s.acquire('d', l, 'standard'));
    const order: string[] = [];
    const wait = (cls: QosClass, name: string): void => {
      void queued(s.acquire('d', l, cls)).admission.then((a) => {
        assert.equal(a.ok, true);
        order.push(name);
        // Each admitted request runs and ends at once, handing its slot on.
        if (a.ok) a.lease.release();
      });
    };
    wait('best_effort', 'b1');
    wait('standard', 's1');
    wait('priority', 'p1');
    wait('standard', 's2');
    wait('priority', 'p2');
    first.release();
    for (let i = 0; i < 10; i++) await flush();
    assert.deepEqual(order, ['p1', 'p2', 's1', 's2', 'b1']);
  });

  test('a new priority request starts ahead of queued standard requests (it never waits behind them)', async () => {
    const timers = new FakeTimers();
    const s = new Scheduler(timers);
    const l = limit({ maxConcurrent: 2 });
    const running = [granted(s.acquire('d', l, 'standard')), granted(s.acquire('d', l, 'standard'))];
    const std = queued(s.acquire('d', l, 'standard'));
    const pri = queued(s.acquire('d', l, 'priority'));
    const order: string[] = [];
    void std.admission.then(() => order.push('standard'));
    void pri.admission.then(() => order.push('priority'));
    running[0]!.release();
    await flush();
    assert.deepEqual(order, ['priority']);
    running[1]!.release();
    await flush();
    assert.deepEqual(order, ['priority', 'standard']);
  });

  test('reserved slots are kept for priority: standard waits while priority starts at once', () => {
    const s = new Scheduler(new FakeTimers());
    const l = limit({ maxConcurrent: 3, reservedForPriority: 1 });
    granted(s.acquire('d', l, 'standard'));
    granted(s.acquire('d', l, 'standard'));
    queued(s.acquire('d', l, 'standard'));
    granted(s.acquire('d', l, 'priority'));
    assert.equal(s.stats('d').active, 3);
  });

  test('a full class queue refuses at once (queue_full) with a retry-after; other classes still queue', () => {
    const s = new Scheduler(new FakeTimers());
    const l = limit({ maxConcurrent: 1, queueMax: 2 });
    granted(s.acquire('d', l, 'standard'));
    queued(s.acquire('d', l, 'standard'));
    queued(s.acquire('d', l, 'standard'));
    const r = s.acquire('d', l, 'standard');
    assert.equal(r.ok, false);
    if (r.ok === false) {
      assert.equal(r.refusal.reason, 'queue_full');
      assert.ok(r.refusal.retryAfterMs >= 1000);
    }
    queued(s.acquire('d', l, 'priority'));
  });

  test('queueMax 0 means no queue: a request that cannot start is refused', () => {
    const s = new Scheduler(new FakeTimers());
    const l = limit({ maxConcurrent: 1, queueMax: 0 });
    granted(s.acquire('d', l, 'priority'));
    const r = s.acquire('d', l, 'priority');
    assert.equal(r.ok, false);
  });

  test('a waiter whose deadline passes is refused (deadline) and leaves the queue', async () => {
    const timers = new FakeTimers();
    const s = new Scheduler(timers);
    const l = limit({ maxConcurrent: 1, queueTimeoutMs: 500 });
    const run = granted(s.acquire('d', l, 'standard'));
    const w = queued(s.acquire('d', l, 'standard'));
    timers.advance(499);
    assert.equal(s.stats('d').queued.standard, 1);
    timers.advance(1);
    const a = await w.admission;
    assert.equal(a.ok, false);
    if (!a.ok) assert.deepEqual([a.refusal.reason, a.refusal.early], ['deadline', false]);
    assert.equal(s.stats('d').queued.standard, 0);
    run.release();
    assert.equal(s.stats('d').active, 0, 'the refused waiter never takes the freed slot');
  });

  test('a waiter that cannot meet its deadline (queue position x service time) is refused at once, with that estimate as retry-after', () => {
    const timers = new FakeTimers();
    const s = new Scheduler(timers);
    const l = limit({ maxConcurrent: 1, queueTimeoutMs: 2500 });
    // Learn the service time: one request held for 1000 ms.
    const probe = granted(s.acquire('d', l, 'standard'));
    timers.advance(1000);
    probe.release();
    assert.equal(s.stats('d').serviceMs, 1000);
    granted(s.acquire('d', l, 'standard'));
    queued(s.acquire('d', l, 'standard')); // estimate 1000 ms
    queued(s.acquire('d', l, 'standard')); // estimate 2000 ms
    const r = s.acquire('d', l, 'standard'); // estimate 3000 ms > 2500
    assert.equal(r.ok, false);
    if (r.ok === false) {
      assert.deepEqual([r.refusal.reason, r.refusal.early], ['deadline', true]);
      assert.equal(r.refusal.retryAfterMs, 3000);
      assert.equal(r.refusal.ahead, 2);
    }
    // Priority has nobody ahead of it: it may still wait.
    queued(s.acquire('d', l, 'priority'));
  });

  test('a cancelled waiter (client gone) leaves the queue and takes no slot', async () => {
    const timers = new FakeTimers();
    const s = new Scheduler(timers);
    const l = limit({ maxConcurrent: 1 });
    const run = granted(s.acquire('d', l, 'standard'));
    const w = queued(s.acquire('d', l, 'standard'));
    w.cancel();
    assert.equal((await w.admission).ok, false);
    assert.equal(timers.pending, 0);
    run.release();
    assert.equal(s.stats('d').active, 0);
  });

  test('release is idempotent: a second call frees nothing', () => {
    const s = new Scheduler(new FakeTimers());
    const l = limit({ maxConcurrent: 1 });
    const a = granted(s.acquire('d', l, 'standard'));
    queued(s.acquire('d', l, 'standard'));
    a.release();
    a.release();
    assert.equal(s.stats('d').active, 1, 'the waiter holds the slot; the double release did not free it');
  });

  test('pools are independent per upstream key', () => {
    const s = new Scheduler(new FakeTimers());
    const l = limit({ maxConcurrent: 1 });
    granted(s.acquire('a', l, 'standard'));
    granted(s.acquire('b', l, 'standard'));
    queued(s.acquire('a', l, 'standard'));
  });

  test('the observer sees depth, waits and refusals', async () => {
    const timers = new FakeTimers();
    const seen: string[] = [];
    const s = new Scheduler(timers, {
      depth: (k, c, d) => seen.push(`depth ${k} ${c} ${d}`),
      admitted: (k, c, ms) => seen.push(`admitted ${k} ${c} ${ms}`),
      refused: (k, c, r) => seen.push(`refused ${k} ${c} ${r}`),
    });
    const l = limit({ maxConcurrent: 1, queueMax: 1 });
    const a = granted(s.acquire('d', l, 'standard'));
    const w = queued(s.acquire('d', l, 'priority'));
    s.acquire('d', l, 'priority');
    timers.advance(40);
    a.release();
    await w.admission;
    assert.deepEqual(seen, ['admitted d standard 0', 'depth d priority 1', 'refused d priority queue_full', 'depth d priority 0', 'admitted d priority 40']);
  });
});
