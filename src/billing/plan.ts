/**
 * Planning: how a billing use case decides without writing (issue 14 item 1, "billing as decide/apply").
 *
 * load   `loadView` (view.ts) reads what the order needs: the account, its subscriptions, orders, payments,
 *        points, bills, the charging buckets, the account's billing version (read first), the catalog, now;
 * plan   a pure planner (planners/*.ts) decides on that view alone: every row it would write and every charging
 *        operation (charging/billing-ops.ts) go into one BillingPlan, with the versions the view was loaded at;
 * apply  `store.apply(plan)` writes all of it in one transaction, or reports a conflict (a version moved, the
 *        Idempotency-Key was taken, the wallet can no longer pay, ...): the order is then loaded and planned
 *        again, a few times at most.
 * Nothing is ever written while a planner runs, so nothing needs rolling back, and no transaction stays open
 * across an await.
 */
import { err, ok, sha256Hex } from '../core/index.ts';
import { fail, type BR, type Ctx } from './context.ts';
import { planWith, type IdSource, type PlanCtx, type Planned } from './planners/sheet.ts';
import type { BillingStore } from './store.ts';
import type { IdempotencyRecord } from './types.ts';
import { loadView, type BillingView, type LoadNeeds } from './view.ts';

export type { PlanCtx } from './planners/sheet.ts';

/** A planner: pure, over a loaded view; ids from the injected source. */
export type Planner<T> = (view: BillingView, ids: IdSource) => BR<Planned<T>>;

/** A use case body over a planning context, as a planner (the Idempotency-Key record is added once the answer is known). */
export function planner<T>(body: (p: PlanCtx) => BR<T>, idempotency?: (value: T, view: BillingView) => IdempotencyRecord | null): Planner<T> {
  return (view, ids) => planWith(view, ids, body, idempotency);
}

/** How often a plan is made again after a conflict before the use case gives up (busy account). */
export const PLAN_ATTEMPTS = 8;

/**
 * Plans of one account in one process take turns (attack finding atk-billing F1): when every order of a burst
 * planned at once, each round applied one and sent the rest to plan again, so past PLAN_ATTEMPTS concurrent orders
 * the rest were refused 409 (and a bill run or a carrier answer on the account threw). The turn covers one
 * load -> plan -> apply attempt; no transaction is open across its awaits, requests still settle meanwhile, and
 * the version precondition still decides between processes (many nodes on PostgreSQL). Per billing store, so two
 * services over two stores never wait for each other.
 */
const turns = new WeakMap<BillingStore, Map<string, Promise<void>>>();

async function inTurn<T>(store: BillingStore, accountId: string | null, fn: () => Promise<T>): Promise<T> {
  if (accountId === null) return fn();
  let queues = turns.get(store);
  if (queues === undefined) {
    queues = new Map();
    turns.set(store, queues);
  }
  const m = queues;
  const prev = m.get(accountId) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const tail = prev.then(() => mine);
  m.set(accountId, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (m.get(accountId) === tail) m.delete(accountId);
  }
}

/** What runPlan returns when another request stored the same Idempotency-Key first: the caller replays it. */
export const KEY_TAKEN = 'idempotency_key_reused' as const;

/**
 * Load, plan, apply, with retries on conflicts: `loadView(accountId, needs)`, then `plan` decides on the view
 * (writes nothing) and returns its answer, or an error Result to refuse (nothing is applied). A conflict on the
 * Idempotency-Key itself returns err(KEY_TAKEN, '').
 */
export async function runPlan<T>(ctx: Ctx, accountId: string | null, needs: LoadNeeds, plan: Planner<T>): Promise<BR<T>> {
  let last = '';
  for (let attempt = 0; attempt < PLAN_ATTEMPTS; attempt++) {
    // The first attempt does not wait for the account's turn: a catch-up before a read usually writes nothing and
    // must not queue behind the account's orders (the key snapshot's refresh reads every account in turn). Only
    // a plan that conflicted waits for the turn to plan again.
    const once = () => planOnce(ctx, accountId, needs, plan);
    const r = attempt === 0 ? await once() : await inTurn(ctx.deps.store, accountId, once);
    if (r.kind === 'done') return r.result;
    if (r.kind === 'key_taken') return err(KEY_TAKEN, '');
    last = r.detail;
  }
  return err('conflict', `The account kept changing while this order was being made (${last}); nothing was changed. Try again.`);
}

type Attempt<T> = { kind: 'done'; result: BR<T> } | { kind: 'key_taken' } | { kind: 'conflict'; detail: string };

/** One load -> plan -> apply. */
async function planOnce<T>(ctx: Ctx, accountId: string | null, needs: LoadNeeds, plan: Planner<T>): Promise<Attempt<T>> {
  const view = await loadView(ctx, accountId, needs);
  const r = plan(view, (prefix) => ctx.deps.ids.next(prefix));
  if (!r.ok) return { kind: 'done', result: r };
  const { plan: billing, value, schedulesCreated } = r.value;
  const written =
    billing.idempotency !== null ||
    billing.charging !== null ||
    billing.ordersInsert.length + billing.ordersUpdate.length + billing.subscriptionsInsert.length + billing.subscriptionsUpdate.length > 0 ||
    billing.paymentsInsert.length + billing.paymentsUpdate.length + billing.codeBatches.length + billing.codesRedeem.length > 0 ||
    billing.pointsInsert.length + billing.billsInsert.length > 0;
  if (!written) return { kind: 'done', result: ok(value) };
  const applied = await ctx.deps.store.apply(billing);
  if (applied.ok) {
    // The engine mints the new schedules' running cycle now, as it did when schedules were made one by one.
    if (schedulesCreated > 0) await ctx.deps.charging.renewDue();
    return { kind: 'done', result: ok(value) };
  }
  return applied.conflict === 'idempotency' ? { kind: 'key_taken' } : { kind: 'conflict', detail: applied.detail };
}

export interface OrderSpec {
  /** Idempotency keys are unique per scope (an account, or `codes` for batches). */
  scope: string;
  idempotencyKey: string | null;
  /** Everything that defines the request: a replay with a different one is refused. */
  request: unknown;
  /** What the order's view loads beyond the account's own rows (view.ts). */
  needs?: LoadNeeds;
}

export interface Outcome<T> {
  value: T;
  replayed: boolean;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Run an order: replay check, then `body` plans the order (plan.ts: it reads, and records what it would write),
 * then the plan applies in one store transaction with the outcome stored under the Idempotency-Key. `body` returns
 * an error Result to refuse: nothing is written. On a conflict (the account changed meanwhile) the order is planned
 * again on fresh reads; if another request stored the same key first, this one replays it. `stored` shapes what a
 * replay returns.
 */
export async function runOrder<T>(ctx: Ctx, spec: OrderSpec, body: (p: PlanCtx) => BR<T>, stored: (v: T) => unknown = (v) => v): Promise<BR<Outcome<T>>> {
  const { store } = ctx.deps;
  const requestHash = sha256Hex(canonical(spec.request));
  const accountId = spec.scope.startsWith('account:') ? spec.scope.slice('account:'.length) : null;
  const key = spec.idempotencyKey;
  const plan = planner(body, (value, view) =>
    key === null ? null : { scope: spec.scope, key, requestHash, response: stored(value), createdAtMs: view.nowMs },
  );
  let last = '';
  // Every attempt looks for the key first: after a conflict, the order that won may have been this very request
  // sent twice (a concurrent duplicate), which is then replayed rather than planned again.
  for (let attempt = 0; attempt < PLAN_ATTEMPTS; attempt++) {
    const r = await inTurn(store, accountId, async (): Promise<{ kind: 'answer'; answer: BR<Outcome<T>> } | { kind: 'again'; detail: string }> => {
      if (key !== null) {
        const prior = await store.getIdempotency(spec.scope, key);
        if (prior !== undefined) {
          if (prior.requestHash !== requestHash) {
            return {
              kind: 'answer',
              answer: err(
                'idempotency_key_reused',
                `Idempotency-Key ${key} was already used with a different request; nothing was changed. Use a new key for a new order.`,
              ),
            };
          }
          return { kind: 'answer', answer: ok({ value: prior.response as T, replayed: true }) };
        }
      }
      const once = await planOnce(ctx, accountId, { phoneBill: true, ...spec.needs }, plan);
      if (once.kind === 'done') return { kind: 'answer', answer: once.result.ok ? ok({ value: once.result.value, replayed: false }) : once.result };
      return { kind: 'again', detail: once.kind === 'conflict' ? once.detail : 'the Idempotency-Key was stored meanwhile' };
    });
    if (r.kind === 'answer') return r.answer;
    last = r.detail;
  }
  return fail('conflict', `The account kept changing while this order was being made (${last}); nothing was changed. Try again.`);
}
