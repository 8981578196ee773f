/**
 * The QoS stage (issue 17 item 2): what the priority packages ("speed-up pack", `qos: priority`) buy, over the
 * pure scheduler in `src/qos`.
 *
 * - beforeDispatch (model, hold and attempt plan known): the request takes a slot of the upstream pool of its
 *   plan's FIRST deployment (`qos` in config: a deployment's own pool, or its provider's shared pool; none
 *   configured: nothing to do, today's behaviour). When the pool is full it waits in its class's queue
 *   (priority before standard before best effort) up to the pool's deadline. A retry to another deployment
 *   (fallback) runs under the same slot: the limit protects the upstream the request is planned on, and a
 *   request never holds two slots or waits twice.
 * - Refusals, in the caller's API format with `Retry-After` (seconds): the class's queue is full -> 429
 *   `upstream_busy`; the estimated wait (queue position x recent service time) exceeds the deadline, or the
 *   deadline passed while waiting -> 503 `upstream_queue_timeout`. The hold is released by the lifecycle.
 * - onEnd (every path: answered, failed, refused, client gone): the slot is released exactly once.
 * - A client that leaves while queued gives up its place.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { TokenGridError } from '../core/index.ts';
import type { DeploymentQos, ModelCatalog } from '../catalog/index.ts';
import type { FlightView, Stage } from '../gateway/index.ts';
import { Scheduler, type Admission, type Lease, type QosClass, type Refusal, type Waiting } from '../qos/index.ts';

export interface QosStageDeps {
  scheduler: Scheduler;
  log?: (obj: Record<string, unknown>, msg: string) => void;
}

/** Does any deployment of the catalog have a QoS limit (config `qos` on it or its provider)? */
export function hasQosLimits(catalog: ModelCatalog): boolean {
  for (const m of catalog.models.values()) if (m.deployments.some((d) => d.qos !== undefined)) return true;
  return false;
}

/** The account's offer `qos` (best_effort, standard, priority, dedicated) as a scheduling class. */
export function qosClassOf(offerQos: string): QosClass {
  return offerQos === 'priority' || offerQos === 'dedicated' ? 'priority' : offerQos === 'best_effort' ? 'best_effort' : 'standard';
}

function refusalError(r: Refusal, cls: QosClass, limit: DeploymentQos): TokenGridError {
  const retryAfterS = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
  const headers = { 'retry-after': String(retryAfterS) };
  const who = cls === 'priority' ? 'priority' : cls === 'best_effort' ? 'best-effort' : 'standard';
  const atLimit = `The upstream for this model is at its limit of ${r.maxConcurrent} concurrent request${r.maxConcurrent === 1 ? '' : 's'}`;
  if (r.reason === 'queue_full') {
    return new TokenGridError(
      'upstream_busy',
      `${atLimit} and its queue for ${who} requests is full. Nothing was charged; retry in ${retryAfterS} s.`,
      null,
      headers,
    );
  }
  const deadline = `its queue deadline of ${Number((limit.queueTimeoutMs / 1000).toFixed(1))} s`;
  const why = r.early
    ? `this ${who} request would wait about ${retryAfterS} s for a slot (${r.ahead} ahead of it), longer than ${deadline}`
    : `this ${who} request waited ${deadline} without getting a slot`;
  return new TokenGridError('upstream_queue_timeout', `${atLimit} and ${why}. Nothing was charged; retry in ${retryAfterS} s.`, null, headers);
}

const clientGone = (): TokenGridError => new TokenGridError('invalid_request', 'The client went away while the request waited for an upstream slot.');

export function createQosStage(deps: QosStageDeps): Stage {
  const leases = new WeakMap<FlightView, Lease>();
  const refuse = (f: FlightView, limit: DeploymentQos, cls: QosClass, refusal: Refusal): never => {
    deps.log?.(
      {
        requestId: f.ctx.requestId,
        accountId: f.ctx.key.accountId,
        pool: limit.key,
        qos: cls,
        reason: refusal.reason,
        early: refusal.early,
        ahead: refusal.ahead,
      },
      'qos refusal',
    );
    throw refusalError(refusal, cls, limit);
  };
  const wait = async (f: FlightView, limit: DeploymentQos, cls: QosClass, waiting: Waiting): Promise<void> => {
    const signal = f.ctx.signal;
    const onAbort = (): void => waiting.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    // A client gone before the listener was added (it left during admission) fires no event: give up the place now.
    if (signal.aborted) waiting.cancel();
    let result: Admission;
    try {
      result = await waiting.admission;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (result.ok) leases.set(f, result.lease); // released by onEnd, whatever happens next
    if (signal.aborted) throw clientGone();
    if (!result.ok) refuse(f, limit, cls, result.refusal);
  };
  return {
    name: 'qos',
    // Not async: a request with no limit or a free slot goes on without a promise.
    beforeDispatch(f) {
      const limit: DeploymentQos | undefined = f.attempts[0]?.deployment.qos;
      if (limit === undefined) return;
      // The client left during admission: take no slot and no queue place (the lifecycle releases the hold).
      if (f.ctx.signal.aborted) throw clientGone();
      const cls: QosClass = f.ctx.qos ?? 'standard';
      const a = deps.scheduler.acquire(limit.key, limit, cls, f.ctx.key.accountId);
      if (a.ok === true) leases.set(f, a.lease);
      else if (a.ok === 'queued') return wait(f, limit, cls, a);
      else refuse(f, limit, cls, a.refusal);
    },
    onEnd(f) {
      const lease = leases.get(f);
      if (lease === undefined) return;
      leases.delete(f);
      lease.release();
    },
  };
}

/**
 * The production scheduler: real timers (unref'd) and monotonic time, reporting to /metrics:
 * `tokengrid_qos_queue_depth{pool,class}`, `tokengrid_qos_wait_seconds{class}` (time from asking to getting a
 * slot; 0 when it started at once) and `tokengrid_qos_refusals_total{class,reason}`.
 */
export function createQosScheduler(registry: Registry, now: () => number = () => performance.now()): Scheduler {
  const depth = new Gauge({
    name: 'tokengrid_qos_queue_depth',
    help: 'Requests waiting for an upstream slot (QoS), by upstream pool and class.',
    labelNames: ['pool', 'class'],
    registers: [registry],
  });
  const waits = new Histogram({
    name: 'tokengrid_qos_wait_seconds',
    help: 'Time a request waited for an upstream slot (QoS), by class; 0 when it started at once.',
    labelNames: ['class'],
    buckets: [0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'tokengrid_qos_refusals_total',
    help: 'Requests refused by QoS (queue_full: 429 upstream_busy; deadline: 503 upstream_queue_timeout), by class.',
    labelNames: ['class', 'reason'],
    registers: [registry],
  });
  return new Scheduler(
    {
      now,
      setTimer(ms, fn) {
        const t = setTimeout(fn, ms);
        t.unref();
        return () => clearTimeout(t);
      },
    },
    {
      depth: (pool, cls, n) => depth.set({ pool, class: cls }, n),
      admitted: (_pool, cls, ms) => waits.observe({ class: cls }, ms / 1000),
      refused: (_pool, cls, reason) => refusals.inc({ class: cls, reason }),
    },
  );
}
