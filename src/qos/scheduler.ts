/**
 * The QoS scheduler (issue 17 item 2), pure: per-upstream concurrency pools with a bounded, deadline-aware
 * queue per priority class. Time and timers come in through `SchedulerTimers`, so tests drive it by hand.
 *
 * - A pool (one per upstream key: a deployment id, or `provider:<name>` for a provider-wide limit) runs at most
 *   `maxConcurrent` requests; `reservedForPriority` of those slots only the priority class may take.
 * - A request that cannot start waits in its class's queue (FIFO within a class). When a slot frees, the
 *   highest class with a waiter that may use it goes first: priority, then standard, then best effort.
 * - Refusals: the class's queue already holds `queueMax` waiters, or the asking account already holds its share
 *   of them (`queue_full`: with `queueMax` >= 2 one account holds at most half the places of a class, so one tenant
 *   cannot fill a queue and have every other tenant of its class refused); the estimated wait (waiters
 *   ahead x recent service time / slots) is longer than `queueTimeoutMs` (`deadline`, refused at once rather
 *   than after waiting in vain); or the waiter's deadline passes while it waits (`deadline`). Each refusal
 *   carries a retry-after estimate.
 * - A lease is released exactly once (`release()` is idempotent); the time it was held feeds the pool's
 *   service-time average, which the estimates use.
 */

export type QosClass = 'priority' | 'standard' | 'best_effort';

/** Service order: a lower index goes first. */
export const QOS_CLASSES: readonly QosClass[] = ['priority', 'standard', 'best_effort'];

/** One upstream's limit (config: a deployment's or provider's `qos`). */
export interface PoolLimit {
  maxConcurrent: number;
  /** Waiters per class at most; 0: no queue (a request that cannot start is refused). */
  queueMax: number;
  /** The longest a request may wait for a slot (its deadline). */
  queueTimeoutMs: number;
  /** Slots only the priority class may take (< maxConcurrent). */
  reservedForPriority: number;
}

export interface SchedulerTimers {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls fn after ms; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export type RefusalReason = 'queue_full' | 'deadline';

export interface Refusal {
  reason: RefusalReason;
  /** When a retry could find room: the estimated wait, at least 1 s. */
  retryAfterMs: number;
  /** Waiters ahead of the refused request in its class and above, and the pool's slots. */
  ahead: number;
  maxConcurrent: number;
  /** Refused when asking (full queue, or an estimated wait past the deadline), not after waiting. */
  early: boolean;
}

/** What the scheduler reports (metrics). */
export interface SchedulerObserver {
  /** The queue of one class in one pool changed length. */
  depth?(key: string, cls: QosClass, depth: number): void;
  /** A request got a slot after waiting waitedMs (0: at once). */
  admitted?(key: string, cls: QosClass, waitedMs: number): void;
  refused?(key: string, cls: QosClass, reason: RefusalReason): void;
}

export interface Lease {
  readonly key: string;
  readonly cls: QosClass;
  /** Frees the slot (and admits the next waiter). Idempotent: only the first call counts. */
  release(): void;
}

export type Admission = { ok: true; lease: Lease } | { ok: false; refusal: Refusal };

/** A request that waits: `admission` settles when it gets a slot or is refused; `cancel` gives up its place (client gone). */
export interface Waiting {
  ok: 'queued';
  admission: Promise<Admission>;
  cancel(): void;
}

const EWMA_ALPHA = 0.2;
const MIN_RETRY_MS = 1000;

class Waiter {
  settled = false;
  cancelTimer: () => void = noop;
  constructor(
    readonly cls: QosClass,
    readonly enqueuedAt: number,
    readonly resolve: (a: Admission) => void,
    /** Whose request it is (the account): places in a queue are shared fairly between accounts. */
    readonly owner: string,
  ) {}
}

/** The most places of one class's queue one account may hold: half of them (all of a queue of one place). */
export function placesPerAccount(queueMax: number): number {
  return queueMax >= 2 ? Math.ceil(queueMax / 2) : queueMax;
}

class Pool {
  active = 0;
  /** Average time a lease is held (ms); undefined until the first release. */
  serviceMs: number | undefined = undefined;
  readonly queues: Record<QosClass, Waiter[]> = { priority: [], standard: [], best_effort: [] };
  constructor(public limit: PoolLimit) {}

  capacity(cls: QosClass): number {
    const max = Math.max(1, this.limit.maxConcurrent);
    return cls === 'priority' ? max : Math.max(1, max - Math.max(0, this.limit.reservedForPriority));
  }

  /** Waiters served before a new request of this class (its own class and the classes above). */
  ahead(cls: QosClass): number {
    let n = 0;
    for (const c of QOS_CLASSES) {
      n += this.queues[c].length;
      if (c === cls) break;
    }
    return n;
  }

  /** Estimated wait of a request with `ahead` waiters before it, or undefined while the service time is unknown. */
  estimateMs(cls: QosClass, ahead: number): number | undefined {
    if (this.serviceMs === undefined) return undefined;
    return Math.ceil(((ahead + 1) * this.serviceMs) / this.capacity(cls));
  }
}

export class Scheduler {
  readonly #pools = new Map<string, Pool>();
  constructor(
    readonly timers: SchedulerTimers,
    readonly observer: SchedulerObserver = {},
  ) {}

  /**
   * Ask for a slot of pool `key`. A free slot is granted at once (no promise); otherwise the request waits
   * (`ok: 'queued'`) or is refused. `limit` is the pool's current limit (a config change applies to the next request).
   */
  acquire(key: string, limit: PoolLimit, cls: QosClass, owner = ''): Admission | Waiting {
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new Pool(limit);
      this.#pools.set(key, pool);
    } else pool.limit = limit;
    const ahead = pool.ahead(cls);
    if (ahead === 0 && pool.active < pool.capacity(cls)) {
      this.observer.admitted?.(key, cls, 0);
      return { ok: true, lease: this.#grant(key, pool, cls) };
    }
    const queue = pool.queues[cls];
    const estimate = pool.estimateMs(cls, ahead);
    if (queue.length >= limit.queueMax) return this.#refuse(key, pool, cls, 'queue_full', ahead, estimate);
    if (owner !== '' && limit.queueMax >= 2) {
      let mine = 0;
      for (const w of queue) if (w.owner === owner) mine++;
      if (mine >= placesPerAccount(limit.queueMax)) return this.#refuse(key, pool, cls, 'queue_full', ahead, estimate);
    }
    if (estimate !== undefined && estimate > limit.queueTimeoutMs) return this.#refuse(key, pool, cls, 'deadline', ahead, estimate);
    let resolve!: (a: Admission) => void;
    const admission = new Promise<Admission>((r) => {
      resolve = r;
    });
    const w = new Waiter(cls, this.timers.now(), resolve, owner);
    queue.push(w);
    this.observer.depth?.(key, cls, queue.length);
    w.cancelTimer = this.timers.setTimer(limit.queueTimeoutMs, () => {
      if (w.settled) return;
      this.#remove(key, pool, w);
      const refusal = this.#refusal(key, pool, cls, 'deadline', pool.ahead(cls), pool.estimateMs(cls, pool.ahead(cls)), false);
      w.resolve({ ok: false, refusal });
    });
    return {
      ok: 'queued',
      admission,
      cancel: () => {
        if (w.settled) return;
        this.#remove(key, pool, w);
        w.resolve({ ok: false, refusal: { reason: 'deadline', retryAfterMs: MIN_RETRY_MS, ahead: 0, maxConcurrent: pool.limit.maxConcurrent, early: false } });
      },
    };
  }

  /** Requests running and waiting in one pool (for tests and the ops view). */
  stats(key: string): { active: number; queued: Record<QosClass, number>; serviceMs: number | undefined } {
    const p = this.#pools.get(key);
    if (p === undefined) return { active: 0, queued: { priority: 0, standard: 0, best_effort: 0 }, serviceMs: undefined };
    return {
      active: p.active,
      queued: { priority: p.queues.priority.length, standard: p.queues.standard.length, best_effort: p.queues.best_effort.length },
      serviceMs: p.serviceMs,
    };
  }

  #grant(key: string, pool: Pool, cls: QosClass): Lease {
    pool.active++;
    const startedAt = this.timers.now();
    let released = false;
    return {
      key,
      cls,
      release: () => {
        if (released) return;
        released = true;
        pool.active--;
        const held = Math.max(0, this.timers.now() - startedAt);
        pool.serviceMs = pool.serviceMs === undefined ? held : pool.serviceMs + EWMA_ALPHA * (held - pool.serviceMs);
        this.#drain(key, pool);
      },
    };
  }

  /** Hand free slots to waiters, highest class first. */
  #drain(key: string, pool: Pool): void {
    for (const cls of QOS_CLASSES) {
      const queue = pool.queues[cls];
      while (queue.length > 0 && pool.active < pool.capacity(cls)) {
        const w = queue.shift()!;
        w.settled = true;
        w.cancelTimer();
        this.observer.depth?.(key, cls, queue.length);
        this.observer.admitted?.(key, cls, Math.max(0, this.timers.now() - w.enqueuedAt));
        w.resolve({ ok: true, lease: this.#grant(key, pool, cls) });
      }
      // A class that cannot start leaves the slot to no lower class (they have the same or less room).
      if (queue.length > 0) return;
    }
  }

  #remove(key: string, pool: Pool, w: Waiter): void {
    w.settled = true;
    w.cancelTimer();
    const queue = pool.queues[w.cls];
    const i = queue.indexOf(w);
    if (i >= 0) queue.splice(i, 1);
    this.observer.depth?.(key, w.cls, queue.length);
  }

  #refusal(key: string, pool: Pool, cls: QosClass, reason: RefusalReason, ahead: number, estimate: number | undefined, early: boolean): Refusal {
    this.observer.refused?.(key, cls, reason);
    return { reason, retryAfterMs: Math.max(MIN_RETRY_MS, estimate ?? pool.serviceMs ?? MIN_RETRY_MS), ahead, maxConcurrent: pool.limit.maxConcurrent, early };
  }

  #refuse(key: string, pool: Pool, cls: QosClass, reason: RefusalReason, ahead: number, estimate: number | undefined): Admission {
    return { ok: false, refusal: this.#refusal(key, pool, cls, reason, ahead, estimate, true) };
  }
}

const noop = (): void => {};
