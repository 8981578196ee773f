/**
 * Planning: how a billing use case decides without writing (issue 14 item 1, "billing as decide/apply").
 *
 * A use case runs against a PlanCtx: its `deps.store` is a Draft and its `deps.charging` a recorder. Reads go to
 * the real stores (no transaction is open) and see the plan's own earlier writes; writes go into the plan; the
 * charging operations go into the plan as data (charging/billing-ops.ts), with what they would return worked out
 * on the buckets the plan read (a wallet debit pays when the wallet it saw can pay; a forfeit records the leftover
 * it saw, and takes the leftover as it is when the plan applies). The plan records the billing version of every account it read or wrote. `runPlan` then hands the plan
 * to `store.apply`, which writes all of it in one transaction or reports a conflict (a version moved, the
 * Idempotency-Key was taken, the wallet can no longer pay, ...): the use case is then planned again on fresh
 * reads, a few times at most. Nothing is ever written while a use case runs, so nothing needs rolling back, and
 * no transaction stays open across an await.
 */
import { err, ok, sha256Hex } from '../core/index.ts';
import { newBucket, scheduleOf, type BucketBalance, type ChargingOp, type ChargingService } from '../charging/index.ts';
import { fail, type BillingDeps, type BR, type Ctx } from './context.ts';
import { emptyPlan, type ApplyResult, type BillingPlan, type BillingStore, type OrderQuery, type PaymentQuery } from './store.ts';
import type { Bill, CodeBatch, CodeRecord, IdempotencyRecord, Order, Payment, PointsEntry, Subscription } from './types.ts';

const copy = <T>(v: T): T => structuredClone(v);
const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** A BillingStore view that keeps the plan's writes and serves them back to later reads of the same plan. */
export class Draft implements BillingStore {
  readonly #store: BillingStore;
  readonly #versions = new Map<string, Promise<number>>();
  readonly #orders = new Map<string, { o: Order; isNew: boolean }>();
  readonly #subs = new Map<string, { s: Subscription; isNew: boolean }>();
  readonly #payments = new Map<string, { p: Payment; isNew: boolean }>();
  readonly #points: PointsEntry[] = [];
  readonly #bills: Bill[] = [];
  readonly #batches: { batch: CodeBatch; codes: CodeRecord[] }[] = [];
  readonly #redeemed = new Map<string, CodeRecord>();
  #idempotency: IdempotencyRecord | null = null;

  constructor(store: BillingStore) {
    this.#store = store;
  }

  /** Record the account's billing version before anything of it is read: the plan's precondition. */
  async touch(accountId: string): Promise<void> {
    if (!this.#versions.has(accountId)) this.#versions.set(accountId, this.#store.accountVersion(accountId));
    await this.#versions.get(accountId);
  }

  get written(): boolean {
    return (
      this.#orders.size + this.#subs.size + this.#payments.size + this.#points.length + this.#bills.length + this.#batches.length + this.#redeemed.size > 0 ||
      this.#idempotency !== null
    );
  }

  /** The plan's billing part; `charging` is added by the caller. Every account read or written is a precondition. */
  async toPlan(): Promise<BillingPlan> {
    const plan = emptyPlan();
    for (const [accountId, v] of this.#versions) plan.expect.push({ accountId, version: await v });
    plan.idempotency = this.#idempotency;
    for (const { o, isNew } of this.#orders.values()) (isNew ? plan.ordersInsert : plan.ordersUpdate).push(o);
    for (const { s, isNew } of this.#subs.values()) (isNew ? plan.subscriptionsInsert : plan.subscriptionsUpdate).push(s);
    for (const { p, isNew } of this.#payments.values()) (isNew ? plan.paymentsInsert : plan.paymentsUpdate).push(p);
    plan.codeBatches = this.#batches;
    plan.codesRedeem = [...this.#redeemed.values()];
    plan.pointsInsert = this.#points;
    plan.billsInsert = this.#bills;
    return plan;
  }

  // ---- writes (into the plan) ----
  putIdempotency(r: IdempotencyRecord): void {
    this.#idempotency = copy(r);
  }
  async insertOrder(o: Order): Promise<void> {
    await this.touch(o.accountId);
    this.#orders.set(o.id, { o: copy(o), isNew: true });
  }
  async updateOrder(o: Order): Promise<void> {
    await this.touch(o.accountId);
    this.#orders.set(o.id, { o: copy(o), isNew: this.#orders.get(o.id)?.isNew ?? false });
  }
  async insertSubscription(s: Subscription): Promise<void> {
    await this.touch(s.accountId);
    this.#subs.set(s.id, { s: copy(s), isNew: true });
  }
  async updateSubscription(s: Subscription): Promise<void> {
    await this.touch(s.accountId);
    this.#subs.set(s.id, { s: copy(s), isNew: this.#subs.get(s.id)?.isNew ?? false });
  }
  async insertPayment(p: Payment): Promise<void> {
    await this.touch(p.accountId);
    this.#payments.set(p.id, { p: copy(p), isNew: true });
  }
  async updatePayment(p: Payment): Promise<void> {
    await this.touch(p.accountId);
    this.#payments.set(p.id, { p: copy(p), isNew: this.#payments.get(p.id)?.isNew ?? false });
  }
  async insertCodeBatch(batch: CodeBatch, codes: CodeRecord[]): Promise<void> {
    this.#batches.push({ batch: copy(batch), codes: copy(codes) });
  }
  async updateCode(c: CodeRecord): Promise<void> {
    this.#redeemed.set(c.hash, copy(c));
  }
  async insertPoints(e: PointsEntry): Promise<void> {
    await this.touch(e.accountId);
    this.#points.push(copy(e));
  }
  async insertBill(b: Bill): Promise<void> {
    await this.touch(b.accountId);
    this.#bills.push(copy(b));
  }

  // ---- reads (the store's, with the plan's writes on top) ----
  async apply(): Promise<ApplyResult> {
    throw new Error('a plan is applied by runPlan, not from inside the use case');
  }
  connectCharging(): void {
    throw new Error('not on a draft');
  }
  accountVersion(accountId: string): Promise<number> {
    return this.#store.accountVersion(accountId);
  }
  getIdempotency(scope: string, key: string): Promise<IdempotencyRecord | undefined> {
    return this.#store.getIdempotency(scope, key);
  }
  async getOrder(id: string): Promise<Order | undefined> {
    const mine = this.#orders.get(id);
    if (mine !== undefined) return copy(mine.o);
    const o = await this.#store.getOrder(id);
    if (o !== undefined) await this.touch(o.accountId);
    return o;
  }
  async listOrders(q: OrderQuery): Promise<Order[]> {
    if (q.accountId !== undefined) await this.touch(q.accountId);
    const mine = [...this.#orders.values()].map((x) => x.o);
    const match = (o: Order): boolean =>
      (q.accountId === undefined || o.accountId === q.accountId) &&
      (q.subscriptionId === undefined || o.subscriptionId === q.subscriptionId) &&
      (q.fromMs === undefined || o.effectiveAtMs >= q.fromMs) &&
      (q.toMs === undefined || o.effectiveAtMs < q.toMs) &&
      (q.status === undefined || o.status === q.status) &&
      (!q.unbilled || o.billId === null);
    const out = (await this.#store.listOrders(q)).filter((o) => !this.#orders.has(o.id));
    for (const o of mine) if (match(o)) out.push(copy(o));
    return out.sort((a, b) => a.effectiveAtMs - b.effectiveAtMs || byId(a, b));
  }
  async getSubscription(id: string): Promise<Subscription | undefined> {
    const mine = this.#subs.get(id);
    if (mine !== undefined) return copy(mine.s);
    const s = await this.#store.getSubscription(id);
    if (s !== undefined) await this.touch(s.accountId);
    return s;
  }
  async listSubscriptions(q: { accountId?: string; live?: boolean }): Promise<Subscription[]> {
    if (q.accountId !== undefined) await this.touch(q.accountId);
    const match = (s: Subscription): boolean =>
      (q.accountId === undefined || s.accountId === q.accountId) && (!q.live || s.status === 'active' || s.status === 'past_due');
    const out = (await this.#store.listSubscriptions(q)).filter((s) => !this.#subs.has(s.id));
    for (const { s } of this.#subs.values()) if (match(s)) out.push(copy(s));
    return out.sort(byId);
  }
  async listPayments(q: PaymentQuery): Promise<Payment[]> {
    if (q.accountId !== undefined) await this.touch(q.accountId);
    const match = (p: Payment): boolean =>
      (q.accountId === undefined || p.accountId === q.accountId) &&
      (q.orderId === undefined || p.orderId === q.orderId) &&
      (q.billId === undefined || p.billId === q.billId) &&
      (q.status === undefined || p.status === q.status) &&
      (q.fromMs === undefined || p.createdAtMs >= q.fromMs) &&
      (q.toMs === undefined || p.createdAtMs < q.toMs);
    const out = (await this.#store.listPayments(q)).filter((p) => !this.#payments.has(p.id));
    for (const { p } of this.#payments.values()) if (match(p)) out.push(copy(p));
    return out.sort(byId);
  }
  getCodeBatch(id: string): Promise<CodeBatch | undefined> {
    return this.#store.getCodeBatch(id);
  }
  listCodeBatches(): Promise<CodeBatch[]> {
    return this.#store.listCodeBatches();
  }
  async getCode(hash: string): Promise<CodeRecord | undefined> {
    const mine = this.#redeemed.get(hash) ?? this.#batches.flatMap((b) => b.codes).find((c) => c.hash === hash);
    return mine !== undefined ? copy(mine) : this.#store.getCode(hash);
  }
  countRedeemed(batchId: string): Promise<number> {
    return this.#store.countRedeemed(batchId);
  }
  async listPoints(accountId: string): Promise<PointsEntry[]> {
    await this.touch(accountId);
    return [...(await this.#store.listPoints(accountId)), ...this.#points.filter((e) => e.accountId === accountId).map(copy)].sort(byId);
  }
  getBill(id: string): Promise<Bill | undefined> {
    return this.#store.getBill(id);
  }
  async findBill(accountId: string, period: string): Promise<Bill | undefined> {
    await this.touch(accountId);
    const mine = this.#bills.find((b) => b.accountId === accountId && b.period === period);
    return mine !== undefined ? copy(mine) : this.#store.findBill(accountId, period);
  }
  async listBills(q: { accountId?: string; period?: string }): Promise<Bill[]> {
    if (q.accountId !== undefined) await this.touch(q.accountId);
    const mine = this.#bills.filter((b) => (q.accountId === undefined || b.accountId === q.accountId) && (q.period === undefined || b.period === q.period));
    return [...(await this.#store.listBills(q)), ...mine.map(copy)].sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : byId(a, b)));
  }
  insertAdminKey(): Promise<void> {
    throw new Error('not on a draft');
  }
  updateAdminKey(): Promise<void> {
    throw new Error('not on a draft');
  }
  listAdminKeys() {
    return this.#store.listAdminKeys();
  }
}

/**
 * The charging side of a plan: ChargingService as the use cases call it, but the writes billing makes are recorded
 * as ChargingOps, and their answers worked out on the buckets read for the plan. Reads and the engine's own lazy
 * cycle minting (renewDue) go to the real service.
 */
export class ChargingRecorder {
  readonly ops: ChargingOp[] = [];
  accountId: string | null = null;
  /** The account an operation without one (endSchedule) belongs to: the plan's first account. */
  defaultAccount: string | null = null;
  readonly #real: ChargingService;
  readonly #newId: (prefix: string) => string;
  readonly #now: () => number;
  readonly #buckets = new Map<string, BucketBalance[]>();
  /** Schedules created by the plan (their cycles are minted once it applied). */
  schedulesCreated = 0;
  /** Forfeits recorded while set are `strict`: the plan's answer depends on the leftover they saw (billing-ops.ts). */
  strictForfeits = false;

  constructor(real: ChargingService, newId: (prefix: string) => string, now: () => number) {
    this.#real = real;
    this.#newId = newId;
    this.#now = now;
  }

  #record(accountId: string, op: ChargingOp): void {
    if (this.accountId !== null && this.accountId !== accountId)
      throw new Error(`a billing plan charges one account (${this.accountId}), not also ${accountId}`);
    this.accountId = accountId;
    this.ops.push(op);
  }

  async #sim(accountId: string): Promise<BucketBalance[]> {
    let b = this.#buckets.get(accountId);
    if (b === undefined) {
      b = await this.#real.listBuckets(accountId);
      this.#buckets.set(accountId, b);
    }
    return b;
  }

  /** Record a check the plan made on usage, made again when it applies (the `requireUse` operation). */
  requireUse(accountId: string, check: { sourcePrefix: string; fromMs: number; atMost: number; ref: string }): void {
    this.#record(accountId, { op: 'requireUse', ...check });
  }

  service(): ChargingService {
    const real = this.#real;
    const self = this;
    return {
      ...real,
      async listBuckets(accountId) {
        return copy(await self.#sim(accountId));
      },
      async debitWallet(i) {
        const buckets = await self.#sim(i.accountId);
        const wallet = buckets.find((b) => b.kind === 'wallet' && b.currency === i.currency && b.memberId === null);
        if (wallet === undefined || wallet.remaining < i.amountMinor) return ok({ paid: false });
        self.#record(i.accountId, { op: 'debitWallet', currency: i.currency, amountMinor: i.amountMinor, ref: i.ref });
        wallet.used += i.amountMinor;
        wallet.remaining -= i.amountMinor;
        return ok({ paid: true });
      },
      async topUpWallet(i) {
        const buckets = await self.#sim(i.accountId);
        const walletId = self.#newId('bkt');
        self.#record(i.accountId, { op: 'topUpWallet', currency: i.currency, amountMinor: i.amountMinor, sourceRef: i.sourceRef, walletId });
        let wallet = buckets.find((b) => b.kind === 'wallet' && b.currency === i.currency && b.memberId === null);
        if (wallet === undefined) {
          wallet = {
            id: walletId,
            unit: 'money',
            currency: i.currency,
            kind: 'wallet',
            memberId: null,
            amount: 0,
            used: 0,
            reserved: 0,
            forfeited: 0,
            remaining: 0,
            effectiveAtMs: 0,
            expiresAtMs: null,
            expired: false,
            models: null,
            priority: 0,
            sourceRef: `wallet:${i.currency}`,
          };
          buckets.push(wallet);
        }
        wallet.amount += i.amountMinor;
        wallet.remaining += i.amountMinor;
        const now = self.#now();
        return ok(
          newBucket(i.accountId, now, {
            id: wallet.id,
            unit: 'money',
            currency: i.currency,
            kind: 'wallet',
            amount: wallet.amount,
            effectiveAtMs: now,
            expiresAtMs: null,
            models: null,
            sourceRef: `wallet:${i.currency}`,
          }),
        );
      },
      async grantBucket(i) {
        const buckets = await self.#sim(i.accountId);
        const id = self.#newId('bkt');
        const currency = i.unit === 'money' ? (i.currency ?? null) : null;
        const op = {
          op: 'grant' as const,
          id,
          unit: i.unit,
          currency,
          amount: i.amount,
          effectiveAtMs: i.effectiveAtMs,
          expiresAtMs: i.expiresAtMs,
          kind: i.kind,
          models: i.models ?? null,
          sourceRef: i.sourceRef,
        };
        self.#record(i.accountId, op);
        buckets.push({
          id,
          unit: i.unit,
          currency,
          kind: i.kind,
          memberId: null,
          amount: i.amount,
          used: 0,
          reserved: 0,
          forfeited: 0,
          remaining: i.amount,
          effectiveAtMs: i.effectiveAtMs,
          expiresAtMs: i.expiresAtMs,
          expired: false,
          models: i.models ?? null,
          priority: 0,
          sourceRef: i.sourceRef,
        });
        return ok(newBucket(i.accountId, self.#now(), op));
      },
      async createAllowanceSchedule(i) {
        const id = self.#newId('sch');
        const op = {
          op: 'createSchedule' as const,
          id,
          unit: i.unit,
          currency: i.unit === 'money' ? (i.currency ?? null) : null,
          kind: i.kind ?? 'plan_allowance',
          amountPerCycle: i.amountPerCycle,
          anchorMs: i.anchorMs,
          cycle: i.cycle,
          models: i.models ?? null,
          rollover: i.rollover ?? false,
          sourceRef: i.sourceRef,
          endsAtMs: i.endsAtMs ?? null,
        };
        self.#record(i.accountId, op);
        self.schedulesCreated++;
        return ok(scheduleOf(i.accountId, self.#now(), op));
      },
      async endSchedule(scheduleId, atMs) {
        const accountId = self.accountId ?? self.defaultAccount;
        if (accountId === null) throw new Error('endSchedule in a plan that names no account');
        self.#record(accountId, { op: 'endSchedule', scheduleId, atMs });
        // The ended schedule itself is not read for a plan (billing ignores the answer): not_found stands for
        // "ends when the plan applies".
        return err('not_found', `schedule ${scheduleId} ends at ${atMs} when the plan applies`);
      },
      async forfeitBucket(accountId, bucketId, ref) {
        const b = (await self.#sim(accountId)).find((x) => x.id === bucketId && !x.expired);
        const amount = b === undefined ? 0 : Math.max(0, b.amount - b.used - b.reserved - b.forfeited);
        self.#record(accountId, { op: 'forfeit', bucketId, ref, expect: amount, ...(self.strictForfeits ? { strict: true } : {}) });
        if (b !== undefined) {
          b.forfeited += amount;
          b.remaining = Math.max(0, b.remaining - amount);
        }
        return ok({ forfeited: amount });
      },
      async setAccountPolicy(accountId, p) {
        self.#record(accountId, {
          op: 'setPolicy',
          overage: p.overage,
          creditLimitMinor: p.creditLimitMinor ?? 0,
          currency: p.currency ?? null,
          coinsPerMajor: p.coinsPerMajor ?? null,
          lineId: self.#newId('bkt'),
        });
        return ok({ accountId, overage: p.overage, creditLimitMinor: p.creditLimitMinor ?? 0, currency: p.currency ?? null });
      },
      async restoreCreditLine(i) {
        self.#record(i.accountId, { op: 'restoreCreditLine', currency: i.currency, amountMinor: i.amountMinor, ref: i.ref });
        return ok({ restored: true });
      },
    };
  }
}

/** A use case's context while it plans: its store is a Draft, its charging a recorder (see the file header). */
export interface PlanCtx extends Ctx {
  deps: Omit<BillingDeps, 'store'> & { store: Draft };
  /** The plan's Idempotency-Key record, stored by apply in the same transaction. */
  draft: Draft;
  recorder: ChargingRecorder;
}

function planCtx(ctx: Ctx): PlanCtx {
  // One clock reading and one catalog per plan (attack finding atk-billing F8): a plan that read the clock again
  // and again could catch up at 23:59:59 and then price an upgrade at 00:00:00.5 of a cycle never renewed (the old
  // plan credited for a cycle not paid, the new one charged for it, and its renewal charged it again); a catalog
  // reloaded mid-plan would mix two offers files the same way. A plan made again reads both afresh.
  const nowMs = ctx.now();
  const catalog = ctx.catalog();
  const draft = new Draft(ctx.deps.store);
  const recorder = new ChargingRecorder(
    ctx.deps.charging,
    (prefix) => ctx.deps.ids.next(prefix),
    () => nowMs,
  );
  return { ...ctx, now: () => nowMs, catalog: () => catalog, deps: { ...ctx.deps, store: draft, charging: recorder.service() }, draft, recorder };
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

async function inTurn<T>(store: BillingStore, accounts: readonly string[], fn: () => Promise<T>): Promise<T> {
  let m = turns.get(store);
  if (m === undefined) {
    m = new Map();
    turns.set(store, m);
  }
  const queues = m;
  const releases: (() => void)[] = [];
  // One account at a time, in a fixed order, so two multi-account plans cannot wait for each other.
  for (const a of [...new Set(accounts)].sort()) {
    const prev = queues.get(a) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    queues.set(a, tail);
    releases.push(() => {
      release();
      if (queues.get(a) === tail) queues.delete(a);
    });
    await prev;
  }
  try {
    return await fn();
  } finally {
    for (const r of releases.reverse()) r();
  }
}

/** What runPlan returns when another request stored the same Idempotency-Key first: the caller replays it. */
export const KEY_TAKEN = 'idempotency_key_reused' as const;

/**
 * Load, plan, apply, with retries on conflicts. `plan` decides (reads and records, writes nothing) and returns its
 * answer, or an error Result to refuse (nothing is applied). `accounts` are touched first: their versions are read
 * before anything else, so whatever the plan reads of them is covered by the precondition. `finish` adds the
 * Idempotency-Key record once the answer is known. A conflict on the key itself returns err(KEY_TAKEN, '').
 */
export async function runPlan<T>(ctx: Ctx, accounts: string[], plan: (p: PlanCtx) => Promise<BR<T>>, finish?: (p: PlanCtx, value: T) => void): Promise<BR<T>> {
  let last = '';
  for (let attempt = 0; attempt < PLAN_ATTEMPTS; attempt++) {
    // The first attempt does not wait for the account's turn: a catch-up before a read usually writes nothing and
    // must not queue behind the account's orders (the key snapshot's refresh reads every account in turn). Only
    // a plan that conflicted waits for the turn to plan again.
    const once = () => planOnce(ctx, accounts, plan, finish);
    const r = attempt === 0 ? await once() : await inTurn(ctx.deps.store, accounts, once);
    if (r.kind === 'done') return r.result;
    if (r.kind === 'key_taken') return err(KEY_TAKEN, '');
    last = r.detail;
  }
  return err('conflict', `The account kept changing while this order was being made (${last}); nothing was changed. Try again.`);
}

type Attempt<T> = { kind: 'done'; result: BR<T> } | { kind: 'key_taken' } | { kind: 'conflict'; detail: string };

/** One load -> plan -> apply. */
async function planOnce<T>(ctx: Ctx, accounts: string[], plan: (p: PlanCtx) => Promise<BR<T>>, finish?: (p: PlanCtx, value: T) => void): Promise<Attempt<T>> {
  const p = planCtx(ctx);
  for (const a of accounts) await p.draft.touch(a);
  p.recorder.defaultAccount = accounts[0] ?? null;
  const r = await plan(p);
  if (!r.ok) return { kind: 'done', result: r };
  finish?.(p, r.value);
  const billing = await p.draft.toPlan();
  const rec = p.recorder;
  if (rec.ops.length > 0) billing.charging = { accountId: rec.accountId!, nowMs: p.now(), ops: rec.ops };
  if (!p.draft.written && billing.charging === null) return { kind: 'done', result: r };
  const applied = await ctx.deps.store.apply(billing);
  if (applied.ok) {
    // The engine mints the new schedules' running cycle now, as it did when schedules were made one by one.
    if (rec.schedulesCreated > 0) await ctx.deps.charging.renewDue();
    return { kind: 'done', result: r };
  }
  return applied.conflict === 'idempotency' ? { kind: 'key_taken' } : { kind: 'conflict', detail: applied.detail };
}

export interface OrderSpec {
  /** Idempotency keys are unique per scope (an account, or `codes` for batches). */
  scope: string;
  idempotencyKey: string | null;
  /** Everything that defines the request: a replay with a different one is refused. */
  request: unknown;
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
export async function runOrder<T>(
  ctx: Ctx,
  spec: OrderSpec,
  body: (p: PlanCtx) => Promise<BR<T>>,
  stored: (v: T) => unknown = (v) => v,
): Promise<BR<Outcome<T>>> {
  const requestHash = sha256Hex(canonical(spec.request));
  const accounts = spec.scope.startsWith('account:') ? [spec.scope.slice('account:'.length)] : [];
  let last = '';
  // Every attempt looks for the key first: after a conflict, the order that won may have been this very request
  // sent twice (a concurrent duplicate), which is then replayed rather than planned again.
  for (let attempt = 0; attempt < PLAN_ATTEMPTS; attempt++) {
    const r = await inTurn(ctx.deps.store, accounts, () => orderAttempt(ctx, spec, requestHash, accounts, body, stored));
    if (r.kind === 'answer') return r.answer;
    last = r.detail;
  }
  return fail('conflict', `The account kept changing while this order was being made (${last}); nothing was changed. Try again.`);
}

/** One attempt of runOrder (in the account's turn): the key's replay, or one load -> plan -> apply. */
async function orderAttempt<T>(
  ctx: Ctx,
  spec: OrderSpec,
  requestHash: string,
  accounts: string[],
  body: (p: PlanCtx) => Promise<BR<T>>,
  stored: (v: T) => unknown,
): Promise<{ kind: 'answer'; answer: BR<Outcome<T>> } | { kind: 'again'; detail: string }> {
  const { store } = ctx.deps;
  if (spec.idempotencyKey !== null) {
    const prior = await store.getIdempotency(spec.scope, spec.idempotencyKey);
    if (prior !== undefined) {
      if (prior.requestHash !== requestHash) {
        return {
          kind: 'answer',
          answer: err(
            'idempotency_key_reused',
            `Idempotency-Key ${spec.idempotencyKey} was already used with a different request; nothing was changed. Use a new key for a new order.`,
          ),
        };
      }
      return { kind: 'answer', answer: ok({ value: prior.response as T, replayed: true }) };
    }
  }
  const r = await planOnce(ctx, accounts, body, (p, value) => {
    if (spec.idempotencyKey !== null)
      p.draft.putIdempotency({ scope: spec.scope, key: spec.idempotencyKey, requestHash, response: stored(value), createdAtMs: p.now() });
  });
  if (r.kind === 'done') return { kind: 'answer', answer: r.result.ok ? ok({ value: r.result.value, replayed: false }) : r.result };
  return { kind: 'again', detail: r.kind === 'conflict' ? r.detail : 'the Idempotency-Key was stored meanwhile' };
}
