/**
 * In-memory BillingStore for unit tests. Copies on the way in and out, like a real store. `atomically` cannot
 * roll back (the billing use cases validate before their first write, so refusals leave nothing behind).
 */
import type {
  AdminKeyRecord,
  Bill,
  BillingStore,
  CodeBatch,
  CodeRecord,
  IdempotencyRecord,
  Order,
  OrderQuery,
  Payment,
  PaymentQuery,
  PointsEntry,
  Subscription,
} from '../../billing/index.ts';

const copy = <T>(v: T): T => structuredClone(v);
const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function createMemoryBillingStore(): BillingStore {
  const idem = new Map<string, IdempotencyRecord>();
  const orders = new Map<string, Order>();
  const subs = new Map<string, Subscription>();
  const payments = new Map<string, Payment>();
  const batches = new Map<string, CodeBatch>();
  const codes = new Map<string, CodeRecord>();
  const points: PointsEntry[] = [];
  const bills = new Map<string, Bill>();
  const adminKeys = new Map<string, AdminKeyRecord>();
  const insert = <T extends { id: string }>(m: Map<string, T>, v: T, what: string): void => {
    if (m.has(v.id)) throw new Error(`duplicate ${what} ${v.id}`);
    m.set(v.id, copy(v));
  };
  const update = <T extends { id: string }>(m: Map<string, T>, v: T, what: string): void => {
    if (!m.has(v.id)) throw new Error(`unknown ${what} ${v.id}`);
    m.set(v.id, copy(v));
  };
  return {
    async atomically(fn) {
      return fn();
    },
    async getIdempotency(scope, key) {
      const r = idem.get(`${scope}\u0000${key}`);
      return r && copy(r);
    },
    async putIdempotency(r) {
      const k = `${r.scope}\u0000${r.key}`;
      if (idem.has(k)) throw new Error(`duplicate idempotency key ${k}`);
      idem.set(k, copy(r));
    },
    async insertOrder(o) {
      insert(orders, o, 'order');
    },
    async updateOrder(o) {
      update(orders, o, 'order');
    },
    async getOrder(id) {
      const o = orders.get(id);
      return o && copy(o);
    },
    async listOrders(q: OrderQuery) {
      return [...orders.values()]
        .filter(
          (o) =>
            (q.accountId === undefined || o.accountId === q.accountId) &&
            (q.subscriptionId === undefined || o.subscriptionId === q.subscriptionId) &&
            (q.fromMs === undefined || o.effectiveAtMs >= q.fromMs) &&
            (q.toMs === undefined || o.effectiveAtMs < q.toMs) &&
            (q.status === undefined || o.status === q.status) &&
            (!q.unbilled || o.billId === null),
        )
        .sort((a, b) => a.effectiveAtMs - b.effectiveAtMs || byId(a, b))
        .map(copy);
    },
    async insertSubscription(s) {
      insert(subs, s, 'subscription');
    },
    async updateSubscription(s) {
      update(subs, s, 'subscription');
    },
    async getSubscription(id) {
      const s = subs.get(id);
      return s && copy(s);
    },
    async listSubscriptions(q) {
      return [...subs.values()]
        .filter((s) => (q.accountId === undefined || s.accountId === q.accountId) && (!q.live || s.status === 'active' || s.status === 'past_due'))
        .sort(byId)
        .map(copy);
    },
    async insertPayment(p) {
      insert(payments, p, 'payment');
    },
    async updatePayment(p) {
      update(payments, p, 'payment');
    },
    async listPayments(q: PaymentQuery) {
      return [...payments.values()]
        .filter(
          (p) =>
            (q.accountId === undefined || p.accountId === q.accountId) &&
            (q.orderId === undefined || p.orderId === q.orderId) &&
            (q.billId === undefined || p.billId === q.billId) &&
            (q.status === undefined || p.status === q.status) &&
            (q.fromMs === undefined || p.createdAtMs >= q.fromMs) &&
            (q.toMs === undefined || p.createdAtMs < q.toMs),
        )
        .sort(byId)
        .map(copy);
    },
    async insertCodeBatch(b, list) {
      insert(batches, b, 'code batch');
      for (const c of list) {
        if (codes.has(c.hash)) throw new Error('duplicate code');
        codes.set(c.hash, copy(c));
      }
    },
    async getCodeBatch(id) {
      const b = batches.get(id);
      return b && copy(b);
    },
    async listCodeBatches() {
      return [...batches.values()].sort(byId).map(copy);
    },
    async getCode(hash) {
      const c = codes.get(hash);
      return c && copy(c);
    },
    async updateCode(c) {
      codes.set(c.hash, copy(c));
    },
    async countRedeemed(batchId) {
      return [...codes.values()].filter((c) => c.batchId === batchId && c.redeemedBy !== null).length;
    },
    async insertPoints(e) {
      points.push(copy(e));
    },
    async listPoints(accountId) {
      return points
        .filter((e) => e.accountId === accountId)
        .sort(byId)
        .map(copy);
    },
    async insertBill(b) {
      if ([...bills.values()].some((x) => x.accountId === b.accountId && x.period === b.period)) throw new Error(`duplicate bill ${b.accountId} ${b.period}`);
      insert(bills, b, 'bill');
    },
    async getBill(id) {
      const b = bills.get(id);
      return b && copy(b);
    },
    async findBill(accountId, period) {
      const b = [...bills.values()].find((x) => x.accountId === accountId && x.period === period);
      return b && copy(b);
    },
    async listBills(q) {
      return [...bills.values()]
        .filter((b) => (q.accountId === undefined || b.accountId === q.accountId) && (q.period === undefined || b.period === q.period))
        .sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : byId(a, b)))
        .map(copy);
    },
    async insertAdminKey(k) {
      insert(adminKeys, k, 'admin key');
    },
    async updateAdminKey(k) {
      update(adminKeys, k, 'admin key');
    },
    async listAdminKeys() {
      return [...adminKeys.values()].sort(byId).map(copy);
    },
  };
}
