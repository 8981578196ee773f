/**
 * The planners' working sheet (pure, synchronous): a BillingView plus the writes a plan has made so far. Reads
 * answer from the view with the plan's own writes on top (so a catch-up's renewal is seen by the order planned
 * after it); writes are recorded; charging writes are recorded as ChargingOps (charging/billing-ops.ts) with their
 * answers worked out on the view's buckets (a wallet debit pays when the wallet the view saw can pay; a forfeit
 * records the leftover it saw, and takes the leftover as it is when the plan applies). No await, no store, no
 * clock: time is the view's nowMs, ids come from the injected id source.
 */
import { ok, type Result } from '../../core/index.ts';
import {
  newBucket,
  scheduleOf,
  type AccountPolicy,
  type AllowanceSchedule,
  type Bucket,
  type BucketBalance,
  type ChargingOp,
  type CreateScheduleInput,
  type GrantBucketInput,
  type SetPolicyInput,
  type TopUpWalletInput,
} from '../../charging/index.ts';
import type { OfferCatalog } from '../types.ts';
import type { PlannerRules } from '../context.ts';
import { emptyPlan, type BillingPlan, type OrderQuery, type PaymentQuery } from '../store.ts';
import type { BillingView } from '../view.ts';
import type { Bill, CodeBatch, CodeRecord, IdempotencyRecord, Order, Payment, PointsEntry, Subscription } from '../types.ts';

const copy = <T>(v: T): T => structuredClone(v);
const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Where a planner's new ids come from (the composition root's IdGenerator, or a fixed list in tests). */
export type IdSource = (prefix: string) => string;

/** The billing rows of a plan: the view's rows with the plan's writes on top. */
export class Sheet {
  readonly #view: BillingView;
  readonly #orders = new Map<string, { o: Order; isNew: boolean }>();
  readonly #subs = new Map<string, { s: Subscription; isNew: boolean }>();
  readonly #payments = new Map<string, { p: Payment; isNew: boolean }>();
  readonly #points: PointsEntry[] = [];
  readonly #bills: Bill[] = [];
  readonly #batches: { batch: CodeBatch; codes: CodeRecord[] }[] = [];
  readonly #redeemed = new Map<string, CodeRecord>();
  #idempotency: IdempotencyRecord | null = null;

  constructor(view: BillingView) {
    this.#view = view;
  }

  get written(): boolean {
    return (
      this.#orders.size + this.#subs.size + this.#payments.size + this.#points.length + this.#bills.length + this.#batches.length + this.#redeemed.size > 0 ||
      this.#idempotency !== null
    );
  }

  /** The plan's billing part (`charging` is added by the caller). Every account the view loaded is a precondition. */
  toPlan(): BillingPlan {
    const plan = emptyPlan();
    plan.expect = this.#view.versions.map((v) => ({ ...v }));
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

  #loaded(accountId: string): void {
    if (!this.#view.versions.some((v) => v.accountId === accountId))
      throw new Error(`a plan loaded for ${this.#view.accountId ?? 'no account'} cannot touch account ${accountId}`);
  }

  // ---- writes ----
  putIdempotency(r: IdempotencyRecord): void {
    this.#idempotency = copy(r);
  }
  insertOrder(o: Order): void {
    this.#loaded(o.accountId);
    this.#orders.set(o.id, { o: copy(o), isNew: true });
  }
  updateOrder(o: Order): void {
    this.#loaded(o.accountId);
    this.#orders.set(o.id, { o: copy(o), isNew: this.#orders.get(o.id)?.isNew ?? false });
  }
  insertSubscription(s: Subscription): void {
    this.#loaded(s.accountId);
    this.#subs.set(s.id, { s: copy(s), isNew: true });
  }
  updateSubscription(s: Subscription): void {
    this.#loaded(s.accountId);
    this.#subs.set(s.id, { s: copy(s), isNew: this.#subs.get(s.id)?.isNew ?? false });
  }
  insertPayment(p: Payment): void {
    this.#loaded(p.accountId);
    this.#payments.set(p.id, { p: copy(p), isNew: true });
  }
  updatePayment(p: Payment): void {
    this.#loaded(p.accountId);
    this.#payments.set(p.id, { p: copy(p), isNew: this.#payments.get(p.id)?.isNew ?? false });
  }
  insertCodeBatch(batch: CodeBatch, codes: CodeRecord[]): void {
    this.#batches.push({ batch: copy(batch), codes: copy(codes) });
  }
  updateCode(c: CodeRecord): void {
    this.#redeemed.set(c.hash, copy(c));
  }
  insertPoints(e: PointsEntry): void {
    this.#loaded(e.accountId);
    this.#points.push(copy(e));
  }
  insertBill(b: Bill): void {
    this.#loaded(b.accountId);
    this.#bills.push(copy(b));
  }

  // ---- reads (the view's, with the plan's writes on top; sorted as the store sorts) ----
  #history(): void {
    if (!this.#view.history) throw new Error('this plan was loaded without the account history (needs.history: false)');
  }
  getOrder(id: string): Order | undefined {
    this.#history();
    const o = this.#orders.get(id)?.o ?? this.#view.orders.find((x) => x.id === id);
    return o === undefined ? undefined : copy(o);
  }
  listOrders(q: OrderQuery): Order[] {
    this.#history();
    const match = (o: Order): boolean =>
      (q.accountId === undefined || o.accountId === q.accountId) &&
      (q.subscriptionId === undefined || o.subscriptionId === q.subscriptionId) &&
      (q.fromMs === undefined || o.effectiveAtMs >= q.fromMs) &&
      (q.toMs === undefined || o.effectiveAtMs < q.toMs) &&
      (q.status === undefined || o.status === q.status) &&
      (!q.unbilled || o.billId === null);
    const all = [...this.#view.orders.filter((o) => !this.#orders.has(o.id)), ...[...this.#orders.values()].map((x) => x.o)];
    return all
      .filter(match)
      .map(copy)
      .sort((a, b) => a.effectiveAtMs - b.effectiveAtMs || byId(a, b));
  }
  getSubscription(id: string): Subscription | undefined {
    const s = this.#subs.get(id)?.s ?? this.#view.subscriptions.find((x) => x.id === id);
    return s === undefined ? undefined : copy(s);
  }
  listSubscriptions(q: { accountId?: string; live?: boolean }): Subscription[] {
    const match = (s: Subscription): boolean =>
      (q.accountId === undefined || s.accountId === q.accountId) && (!q.live || s.status === 'active' || s.status === 'past_due');
    const all = [...this.#view.subscriptions.filter((s) => !this.#subs.has(s.id)), ...[...this.#subs.values()].map((x) => x.s)];
    return all.filter(match).map(copy).sort(byId);
  }
  listPayments(q: PaymentQuery): Payment[] {
    this.#history();
    const match = (p: Payment): boolean =>
      (q.accountId === undefined || p.accountId === q.accountId) &&
      (q.orderId === undefined || p.orderId === q.orderId) &&
      (q.billId === undefined || p.billId === q.billId) &&
      (q.status === undefined || p.status === q.status) &&
      (q.fromMs === undefined || p.createdAtMs >= q.fromMs) &&
      (q.toMs === undefined || p.createdAtMs < q.toMs);
    const all = [...this.#view.payments.filter((p) => !this.#payments.has(p.id)), ...[...this.#payments.values()].map((x) => x.p)];
    return all.filter(match).map(copy).sort(byId);
  }
  getCodeBatch(id: string): CodeBatch | undefined {
    const b = this.#view.codeBatch?.id === id ? this.#view.codeBatch : this.#batches.find((x) => x.batch.id === id)?.batch;
    return b === undefined ? undefined : copy(b);
  }
  getCode(hash: string): CodeRecord | undefined {
    const mine = this.#redeemed.get(hash) ?? this.#batches.flatMap((b) => b.codes).find((c) => c.hash === hash);
    if (mine !== undefined) return copy(mine);
    return this.#view.code?.hash === hash ? copy(this.#view.code) : undefined;
  }
  listPoints(accountId: string): PointsEntry[] {
    this.#history();
    return [...this.#view.points, ...this.#points]
      .filter((e) => e.accountId === accountId)
      .map(copy)
      .sort(byId);
  }
  findBill(accountId: string, period: string): Bill | undefined {
    this.#history();
    const b = [...this.#bills, ...this.#view.bills].find((x) => x.accountId === accountId && x.period === period);
    return b === undefined ? undefined : copy(b);
  }
  listBills(q: { accountId?: string; period?: string }): Bill[] {
    this.#history();
    return [...this.#view.bills, ...this.#bills]
      .filter((b) => (q.accountId === undefined || b.accountId === q.accountId) && (q.period === undefined || b.period === q.period))
      .map(copy)
      .sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : byId(a, b)));
  }
}

/**
 * The charging side of a plan: the charging writes billing makes, recorded as ChargingOps, each answered on the
 * view's buckets as they stand after the plan's earlier operations. One account per plan.
 */
export class SheetCharging {
  readonly ops: ChargingOp[] = [];
  accountId: string | null = null;
  /** Schedules created by the plan (the engine mints their running cycle once it applied). */
  schedulesCreated = 0;
  /** Forfeits recorded while set are `strict`: the plan's answer depends on the leftover they saw (billing-ops.ts). */
  strictForfeits = false;
  readonly #view: BillingView;
  readonly #newId: IdSource;
  readonly #buckets: BucketBalance[];

  constructor(view: BillingView, newId: IdSource) {
    this.#view = view;
    this.#newId = newId;
    this.#buckets = copy(view.buckets);
  }

  #record(accountId: string, op: ChargingOp): void {
    if (this.accountId !== null && this.accountId !== accountId)
      throw new Error(`a billing plan charges one account (${this.accountId}), not also ${accountId}`);
    this.accountId = accountId;
    this.ops.push(op);
  }

  #sim(accountId: string): BucketBalance[] {
    if (accountId !== this.#view.accountId) throw new Error(`a plan loaded for ${this.#view.accountId ?? 'no account'} has no buckets of ${accountId}`);
    return this.#buckets;
  }

  /** Record a check the plan made on usage, made again when it applies (the `requireUse` operation). */
  requireUse(accountId: string, check: { sourcePrefix: string; fromMs: number; atMost: number; ref: string }): void {
    this.#record(accountId, { op: 'requireUse', ...check });
  }

  listBuckets(accountId: string): BucketBalance[] {
    return copy(this.#sim(accountId));
  }

  debitWallet(i: { accountId: string; currency: string; amountMinor: number; ref: string }): Result<{ paid: boolean }, string> {
    const wallet = this.#sim(i.accountId).find((b) => b.kind === 'wallet' && b.currency === i.currency && b.memberId === null);
    if (wallet === undefined || wallet.remaining < i.amountMinor) return ok({ paid: false });
    this.#record(i.accountId, { op: 'debitWallet', currency: i.currency, amountMinor: i.amountMinor, ref: i.ref });
    wallet.used += i.amountMinor;
    wallet.remaining -= i.amountMinor;
    return ok({ paid: true });
  }

  topUpWallet(i: TopUpWalletInput): Result<Bucket, string> {
    const buckets = this.#sim(i.accountId);
    const walletId = this.#newId('bkt');
    this.#record(i.accountId, { op: 'topUpWallet', currency: i.currency, amountMinor: i.amountMinor, sourceRef: i.sourceRef, walletId });
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
    const now = this.#view.nowMs;
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
  }

  grantBucket(i: GrantBucketInput): Result<Bucket, string> {
    const buckets = this.#sim(i.accountId);
    const id = this.#newId('bkt');
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
    this.#record(i.accountId, op);
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
    return ok(newBucket(i.accountId, this.#view.nowMs, op));
  }

  createAllowanceSchedule(i: CreateScheduleInput): Result<AllowanceSchedule, string> {
    const id = this.#newId('sch');
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
    this.#record(i.accountId, op);
    this.schedulesCreated++;
    return ok(scheduleOf(i.accountId, this.#view.nowMs, op));
  }

  /** Ends when the plan applies (the ended schedule itself is not read for a plan; billing ignores the answer). */
  endSchedule(scheduleId: string, atMs: number): void {
    const accountId = this.accountId ?? this.#view.accountId;
    if (accountId === null) throw new Error('endSchedule in a plan that names no account');
    this.#record(accountId, { op: 'endSchedule', scheduleId, atMs });
  }

  forfeitBucket(accountId: string, bucketId: string, ref: string): Result<{ forfeited: number }, string> {
    const b = this.#sim(accountId).find((x) => x.id === bucketId && !x.expired);
    const amount = b === undefined ? 0 : Math.max(0, b.amount - b.used - b.reserved - b.forfeited);
    this.#record(accountId, { op: 'forfeit', bucketId, ref, expect: amount, ...(this.strictForfeits ? { strict: true } : {}) });
    if (b !== undefined) {
      b.forfeited += amount;
      b.remaining = Math.max(0, b.remaining - amount);
    }
    return ok({ forfeited: amount });
  }

  setAccountPolicy(accountId: string, p: SetPolicyInput): Result<AccountPolicy, string> {
    this.#record(accountId, {
      op: 'setPolicy',
      overage: p.overage,
      creditLimitMinor: p.creditLimitMinor ?? 0,
      currency: p.currency ?? null,
      coinsPerMajor: p.coinsPerMajor ?? null,
      lineId: this.#newId('bkt'),
    });
    return ok({ accountId, overage: p.overage, creditLimitMinor: p.creditLimitMinor ?? 0, currency: p.currency ?? null });
  }

  restoreCreditLine(i: { accountId: string; currency: string; amountMinor: number; ref: string }): Result<{ restored: boolean }, string> {
    this.#record(i.accountId, { op: 'restoreCreditLine', currency: i.currency, amountMinor: i.amountMinor, ref: i.ref });
    return ok({ restored: true });
  }
}

/** A planner's context: the view, its sheet and charging recorder, the view's clock and the injected ids. */
export interface PlanCtx {
  view: BillingView;
  now(): number;
  id(prefix: string): string;
  catalog(): OfferCatalog;
  rules: PlannerRules;
  deps: { store: Sheet; charging: SheetCharging };
}

export function planCtx(view: BillingView, ids: IdSource): PlanCtx {
  return {
    view,
    now: () => view.nowMs,
    id: ids,
    catalog: () => view.catalog,
    rules: view.rules,
    deps: { store: new Sheet(view), charging: new SheetCharging(view, ids) },
  };
}

/** What a planner returns: the plan to apply (rows, charging operations, preconditions) and the order's answer. */
export interface Planned<T> {
  plan: BillingPlan;
  value: T;
  /** Schedules the plan creates (the engine mints their running cycle after the plan applied). */
  schedulesCreated: number;
}

/** Close a planning context into its BillingPlan (no charging operations: `plan.charging` stays null). */
export function finishPlan<T>(p: PlanCtx, value: T, idempotency?: IdempotencyRecord | null): Planned<T> {
  if (idempotency != null) p.deps.store.putIdempotency(idempotency);
  const plan = p.deps.store.toPlan();
  const rec = p.deps.charging;
  if (rec.ops.length > 0) plan.charging = { accountId: rec.accountId!, nowMs: p.view.nowMs, ops: rec.ops };
  return { plan, value, schedulesCreated: rec.schedulesCreated };
}

/** Run a use case body on a fresh sheet over `view` and close it into a plan: the shape of every planner. */
export function planWith<T, E extends string>(
  view: BillingView,
  ids: IdSource,
  body: (p: PlanCtx) => Result<T, E>,
  idempotency?: (value: T, view: BillingView) => IdempotencyRecord | null,
): Result<Planned<T>, E> {
  const p = planCtx(view, ids);
  const r = body(p);
  if (!r.ok) return r;
  return ok(finishPlan(p, r.value, idempotency?.(r.value, view) ?? null));
}
