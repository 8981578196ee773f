import { AsyncLocalStorage } from 'node:async_hooks';
import type { SqliteDb } from './db.ts';

/**
 * One SQLite connection, many async callers. A billing order keeps one transaction open across awaits (its
 * rows and the balance changes commit together), so while it is open nobody else may write on the
 * connection: their writes would silently join the order's transaction and vanish if it rolled back (a
 * usage record lost). The gate gives the order exclusive use; writes from any other async context wait until
 * it ends. Callers inside the order (found through AsyncLocalStorage) go straight through.
 */
const PRIMED = Symbol('primed');

export class TxGate {
  #owner: symbol | null = null;
  #waiters: (() => void)[] = [];
  readonly #als = new AsyncLocalStorage<symbol>();
  readonly #beforeAcquire: (() => void)[] = [];
  readonly #afterRollback: (() => void)[] = [];

  constructor() {
    // The first AsyncLocalStorage.run of the process turns promise hooks on, and V8 then throws away every
    // optimized function that awaits (once: later runs do not). Pay that now, while nothing is optimized,
    // rather than at the first billing transaction: on a fresh data folder that is the first plan-limit
    // refresh, 10 s after start, and it sent the whole hot request path (handler, admit, reserve, settle,
    // dispatch) back to the interpreter and the compiler under load. run() + disable() leaves the hooks off
    // again from the next tick (the test below shows both).
    this.#als.run(PRIMED, () => undefined);
    this.#als.disable();
  }

  /** Work to finish before an exclusive section starts (e.g. a write queue), and state to drop after a rollback. */
  onBeforeAcquire(fn: () => void): void {
    this.#beforeAcquire.push(fn);
  }
  onAfterRollback(fn: () => void): void {
    this.#afterRollback.push(fn);
  }

  /** True when an exclusive section is open and the caller is not inside it: the caller must wait. */
  blockedForCaller(): boolean {
    return this.#owner !== null && this.#als.getStore() !== this.#owner;
  }

  /** True when the caller runs inside the open exclusive section. */
  heldByCaller(): boolean {
    return this.#owner !== null && this.#als.getStore() === this.#owner;
  }

  whenFree(): Promise<void> {
    if (this.#owner === null) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Run fn with exclusive use of the connection (re-entrant within the same async context). */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.heldByCaller()) return fn();
    while (this.#owner !== null) await this.whenFree();
    for (const f of this.#beforeAcquire) f();
    const token = Symbol('exclusive');
    this.#owner = token;
    try {
      return await this.#als.run(token, fn);
    } finally {
      this.#owner = null;
      // On Node 20 an AsyncLocalStorage that has run once keeps promise hooks on for the whole process: every
      // promise of every request then pays for async-context bookkeeping (about 8 % of a request's CPU,
      // measured with bench/ab.ts). Sections never overlap, so none is open now: switch the storage off until
      // the next section's run() switches it on again. Work the section left running reads no store, as an
      // outsider would, and the gate is free.
      this.#als.disable();
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    }
  }

  rolledBack(): void {
    for (const f of this.#afterRollback) f();
  }
}

const gates = new WeakMap<SqliteDb, TxGate>();

export function txGate(db: SqliteDb): TxGate {
  let g = gates.get(db);
  if (!g) gates.set(db, (g = new TxGate()));
  return g;
}
