/**
 * The BillingStore port. Implementations: store/memory/billing-store.ts (tests), store/sqlite/billing-store.ts,
 * and PostgreSQL (branch pg). Billing is decide/apply, like charging (issue 14 item 1):
 *
 *   load   view.ts loadView reads what the order needs (these async reads, charging's reads): no transaction is open;
 *   plan   a pure planner (planners/) decides on that view, writing nothing: every row it would write and every
 *          charging operation goes into one BillingPlan, with the account versions the view was loaded at;
 *   apply  `apply(plan)` writes the whole plan in ONE transaction, or nothing: it checks the preconditions
 *          (each account's billing version unchanged, the Idempotency-Key unused, a redeemed code still unredeemed,
 *          no bill for the same account and period), writes the billing rows, bumps the account versions, and
 *          applies `plan.charging` through the charging store sharing the database (charging's ChargingTxHost,
 *          see charging/billing-ops.ts) in the same transaction. A failed precondition is a conflict, not an
 *          error: the store rolls back and returns it; the use case loads again and plans again (bounded retries).
 *
 * SQLite: `db.transaction(...)` (synchronous: no other work can interleave). PostgreSQL: BEGIN ... COMMIT on one
 * pooled client, `SELECT ... FOR UPDATE` (or `UPDATE ... WHERE version = $expected`) on the account version rows.
 * Memory: check every precondition first, then mutate synchronously.
 */
import type { ChargingOp, ChargingTxHost } from '../charging/index.ts';
import type { AdminKeyRecord, Bill, CodeBatch, CodeRecord, IdempotencyRecord, Order, Payment, PointsEntry, Subscription } from './types.ts';

export interface OrderQuery {
  accountId?: string;
  subscriptionId?: string;
  fromMs?: number;
  toMs?: number;
  status?: Order['status'];
  /** Only orders not yet on a bill. */
  unbilled?: boolean;
}

export interface PaymentQuery {
  accountId?: string;
  orderId?: string;
  billId?: string;
  status?: Payment['status'];
  fromMs?: number;
  toMs?: number;
}

/** Everything one use case writes, applied all or nothing by `BillingStore.apply`. */
export interface BillingPlan {
  /**
   * Optimistic preconditions: each account's billing version must still be `version` (0 for an account billing
   * never wrote); apply sets it to version + 1. Every plan that writes an account's orders, subscriptions,
   * payments, points or bills names that account here.
   */
  expect: { accountId: string; version: number }[];
  /** Stored under its (scope, key); a record already there is a conflict ('idempotency'). */
  idempotency: IdempotencyRecord | null;
  ordersInsert: Order[];
  ordersUpdate: Order[];
  subscriptionsInsert: Subscription[];
  subscriptionsUpdate: Subscription[];
  paymentsInsert: Payment[];
  paymentsUpdate: Payment[];
  /** New code batches with their codes; a code hash already stored is a conflict ('code'). */
  codeBatches: { batch: CodeBatch; codes: CodeRecord[] }[];
  /** Codes redeemed by this plan: each must still be unredeemed in the store, else a conflict ('code'). */
  codesRedeem: CodeRecord[];
  pointsInsert: PointsEntry[];
  /** A bill for an (account, period) that already has one is a conflict ('bill'). */
  billsInsert: Bill[];
  /** Charging operations on one account, applied last in the same transaction (refused: conflict 'charging'). */
  charging: { accountId: string; nowMs: number; ops: ChargingOp[] } | null;
}

export type ConflictKind = 'version' | 'idempotency' | 'code' | 'bill' | 'charging';

export type ApplyResult = { ok: true } | { ok: false; conflict: ConflictKind; detail: string };

export function emptyPlan(): BillingPlan {
  return {
    expect: [],
    idempotency: null,
    ordersInsert: [],
    ordersUpdate: [],
    subscriptionsInsert: [],
    subscriptionsUpdate: [],
    paymentsInsert: [],
    paymentsUpdate: [],
    codeBatches: [],
    codesRedeem: [],
    pointsInsert: [],
    billsInsert: [],
    charging: null,
  };
}

export interface BillingStore {
  /** Apply a plan in one transaction (see the file header). Throws only on a real failure (disk, a bug). */
  apply(plan: BillingPlan): Promise<ApplyResult>;
  /**
   * The charging store whose operations `apply` runs in its transaction (same SQLite database, same PostgreSQL
   * database). Plans with charging operations are refused with an error until one is connected.
   */
  connectCharging(host: ChargingTxHost): void;

  /** The account's billing version: 0 until a plan for the account was applied. */
  accountVersion(accountId: string): Promise<number>;

  getIdempotency(scope: string, key: string): Promise<IdempotencyRecord | undefined>;

  getOrder(id: string): Promise<Order | undefined>;
  /** Sorted by effectiveAtMs, then id. */
  listOrders(q: OrderQuery): Promise<Order[]>;

  getSubscription(id: string): Promise<Subscription | undefined>;
  /** Sorted by id. live: status active or past_due. */
  listSubscriptions(q: { accountId?: string; live?: boolean }): Promise<Subscription[]>;

  /** Sorted by id. */
  listPayments(q: PaymentQuery): Promise<Payment[]>;

  getCodeBatch(id: string): Promise<CodeBatch | undefined>;
  listCodeBatches(): Promise<CodeBatch[]>;
  getCode(hash: string): Promise<CodeRecord | undefined>;
  countRedeemed(batchId: string): Promise<number>;

  listPoints(accountId: string): Promise<PointsEntry[]>;

  getBill(id: string): Promise<Bill | undefined>;
  findBill(accountId: string, period: string): Promise<Bill | undefined>;
  listBills(q: { accountId?: string; period?: string }): Promise<Bill[]>;

  /** Admin keys are not billing orders: single-row writes, no plan. */
  insertAdminKey(k: AdminKeyRecord): Promise<void>;
  updateAdminKey(k: AdminKeyRecord): Promise<void>;
  listAdminKeys(): Promise<AdminKeyRecord[]>;
}
