/**
 * The BillingStore port. Implementations: store/memory/billing-store.ts (tests), store/sqlite/billing-store.ts.
 *
 * `atomically(fn)`: everything fn writes, in this store AND in the charging store when both share one SQLite
 * database, commits together or not at all (SQLite: BEGIN IMMEDIATE ... COMMIT; the charging store's own
 * transactions nest as savepoints). fn must only await stores that answer without real I/O (better-sqlite3 and
 * memory stores do), so no other request's work can interleave inside the transaction. The memory store
 * cannot roll back: use cases validate everything before their first write, so a rejected order writes nothing.
 */
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

export interface BillingStore {
  atomically<T>(fn: () => Promise<T>): Promise<T>;

  getIdempotency(scope: string, key: string): Promise<IdempotencyRecord | undefined>;
  putIdempotency(r: IdempotencyRecord): Promise<void>;

  insertOrder(o: Order): Promise<void>;
  updateOrder(o: Order): Promise<void>;
  getOrder(id: string): Promise<Order | undefined>;
  /** Sorted by effectiveAtMs, then id. */
  listOrders(q: OrderQuery): Promise<Order[]>;

  insertSubscription(s: Subscription): Promise<void>;
  updateSubscription(s: Subscription): Promise<void>;
  getSubscription(id: string): Promise<Subscription | undefined>;
  listSubscriptions(q: { accountId?: string; live?: boolean }): Promise<Subscription[]>;

  insertPayment(p: Payment): Promise<void>;
  updatePayment(p: Payment): Promise<void>;
  listPayments(q: PaymentQuery): Promise<Payment[]>;

  insertCodeBatch(b: CodeBatch, codes: CodeRecord[]): Promise<void>;
  getCodeBatch(id: string): Promise<CodeBatch | undefined>;
  listCodeBatches(): Promise<CodeBatch[]>;
  getCode(hash: string): Promise<CodeRecord | undefined>;
  updateCode(c: CodeRecord): Promise<void>;
  countRedeemed(batchId: string): Promise<number>;

  insertPoints(e: PointsEntry): Promise<void>;
  listPoints(accountId: string): Promise<PointsEntry[]>;

  insertBill(b: Bill): Promise<void>;
  getBill(id: string): Promise<Bill | undefined>;
  findBill(accountId: string, period: string): Promise<Bill | undefined>;
  listBills(q: { accountId?: string; period?: string }): Promise<Bill[]>;

  insertAdminKey(k: AdminKeyRecord): Promise<void>;
  updateAdminKey(k: AdminKeyRecord): Promise<void>;
  listAdminKeys(): Promise<AdminKeyRecord[]>;
}
