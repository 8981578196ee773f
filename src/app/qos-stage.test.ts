import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenGridError } from '../core/index.ts';
import type { DeploymentQos } from '../catalog/index.ts';
import type { FlightView, RequestContext } from '../gateway/index.ts';
import { Scheduler, type SchedulerTimers } from '../qos/index.ts';
import { createQosStage, qosClassOf } from './qos-stage.ts';

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
    for (const timer of this.#timers.filter((x) => x.live && x.at <= this.t)) {
      timer.live = false;
      timer.fn();
    }
  }
}

const limit: DeploymentQos = { key: 'mock/m@r', maxConcurrent: 1, queueMax: 1, queueTimeoutMs: 2000, reservedForPriority: 0 };

function flight(o: { qos?: RequestContext['qos']; limited?: boolean; abort?: AbortController } = {}): FlightView {
  const ctx = {
    requestId: `req_${Math.random()}`,
    key: { accountId: 'acct_1' },
    signal: (o.abort ?? new AbortController()).signal,
    ...(o.qos === undefined ? {} : { qos: o.qos }),
  } as unknown as RequestContext;
  const deployment = { id: 'mock/m@r', provider: 'mock', upstreamModel: 'm', region: 'r', weight: 1, ...(o.limited === false ? {} : { qos: limit }) };
  return { ctx, attempts: [{ model: {}, deployment }] } as unknown as FlightView;
}

function setup(): { timers: FakeTimers; scheduler: Scheduler; stage: ReturnType<typeof createQosStage> } {
  const timers = new FakeTimers();
  const scheduler = new Scheduler(timers);
  return { timers, scheduler, stage: createQosStage({ scheduler }) };
}

/** The refusal of a hook call (a sync throw or a rejected promise: the lifecycle awaits either). */
const codeOf = async (call: () => unknown): Promise<{ code: string; headers: Record<string, string> }> => {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof TokenGridError, String(e));
    return { code: e.code, headers: e.headers };
  }
  assert.fail('expected a refusal');
};

describe('the QoS stage', () => {
  test('offer qos maps to a class: priority and dedicated are priority, best_effort stays last, anything else standard', () => {
    assert.deepEqual(['priority', 'dedicated', 'standard', 'best_effort', 'unknown'].map(qosClassOf), [
      'priority',
      'priority',
      'standard',
      'best_effort',
      'standard',
    ]);
  });

  test('an upstream without a limit: nothing to do, and no promise', () => {
    const { stage, scheduler } = setup();
    assert.equal(stage.beforeDispatch!(flight({ limited: false })), undefined);
    assert.equal(scheduler.stats(limit.key).active, 0);
  });

  test('a free slot is taken without a promise and released once by onEnd, however often it is called', () => {
    const { stage, scheduler } = setup();
    const f = flight();
    assert.equal(stage.beforeDispatch!(f), undefined);
    assert.equal(scheduler.stats(limit.key).active, 1);
    stage.onEnd!(f);
    stage.onEnd!(f);
    assert.equal(scheduler.stats(limit.key).active, 0);
  });

  test('a full queue refuses with 429 upstream_busy and Retry-After; the deadline with 503 upstream_queue_timeout', async () => {
    const { stage, timers } = setup();
    const running = flight();
    stage.beforeDispatch!(running);
    const queued = stage.beforeDispatch!(flight());
    const busy = await codeOf(() => stage.beforeDispatch!(flight()));
    assert.equal(busy.code, 'upstream_busy');
    assert.ok(Number(busy.headers['retry-after']) >= 1);
    timers.advance(2000);
    const late = await codeOf(() => queued);
    assert.equal(late.code, 'upstream_queue_timeout');
    assert.ok(Number(late.headers['retry-after']) >= 1);
  });

  test('a client that leaves while queued gives up its place and holds no slot', async () => {
    const { stage, scheduler } = setup();
    const running = flight();
    stage.beforeDispatch!(running);
    const abort = new AbortController();
    const gone = flight({ abort });
    const waiting = stage.beforeDispatch!(gone);
    assert.equal(scheduler.stats(limit.key).queued.standard, 1);
    abort.abort();
    await assert.rejects(waiting as Promise<void>, /went away/);
    stage.onEnd!(gone);
    assert.equal(scheduler.stats(limit.key).queued.standard, 0);
    stage.onEnd!(running);
    assert.equal(scheduler.stats(limit.key).active, 0, 'the freed slot went to nobody');
  });

  test('a client already gone when its turn to queue comes takes no queue place (attack: disconnected requests filling the queue until the deadline)', async () => {
    const { stage, scheduler } = setup();
    const running = flight();
    stage.beforeDispatch!(running);
    const abort = new AbortController();
    abort.abort(); // the client left while the request was being admitted (before the QoS stage ran)
    const gone = flight({ abort });
    await assert.rejects(async () => stage.beforeDispatch!(gone), /went away/);
    stage.onEnd!(gone);
    assert.equal(scheduler.stats(limit.key).queued.standard, 0, 'no queue place held for a client that is gone');
    // A live client can still queue (queueMax 1): it is not refused 429 because of the departed one.
    const live = stage.beforeDispatch!(flight());
    assert.ok(live instanceof Promise);
    assert.equal(scheduler.stats(limit.key).queued.standard, 1);
    stage.onEnd!(running);
    await live;
  });

  test('a queued priority request gets the next slot; its lease is released by its own onEnd', async () => {
    const { stage, scheduler } = setup();
    const running = flight();
    stage.beforeDispatch!(running);
    const pri = flight({ qos: 'priority' });
    const waiting = stage.beforeDispatch!(pri);
    stage.onEnd!(running);
    await waiting;
    assert.equal(scheduler.stats(limit.key).active, 1);
    stage.onEnd!(pri);
    assert.equal(scheduler.stats(limit.key).active, 0);
  });

  test("one tenant's queued requests do not take every queue place of its class (another tenant can still wait its turn)", async () => {
    const { stage, scheduler } = setup();
    const two = { ...limit, queueMax: 2 };
    const of = (accountId: string): FlightView => {
      const f = flight();
      (f.ctx.key as { accountId: string }).accountId = accountId;
      (f.attempts[0]!.deployment as { qos: unknown }).qos = two;
      return f;
    };
    const running = of('acct_hog');
    stage.beforeDispatch!(running);
    const hogQueued = stage.beforeDispatch!(of('acct_hog'));
    assert.ok(hogQueued instanceof Promise, "the hog's first waiter queues");
    // Its second would fill the queue: refused (429 upstream_busy), its share is half the places.
    assert.equal((await codeOf(() => stage.beforeDispatch!(of('acct_hog')))).code, 'upstream_busy');
    const other = stage.beforeDispatch!(of('acct_other'));
    assert.ok(other instanceof Promise, 'the other tenant waits instead of being refused');
    assert.equal(scheduler.stats(limit.key).queued.standard, 2);
    stage.onEnd!(running);
    await hogQueued;
  });
});
