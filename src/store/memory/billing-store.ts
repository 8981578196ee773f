/**
 * In-memory BillingStore for unit tests. Copies on the way in and out, like a real store. `apply` checks every
 * precondition of the plan first (versions, idempotency key, codes, bills, and the charging decision), then
 * writes synchronously: a refused plan leaves nothing behind, like a rolled-back transaction.
 */
import { applyBillingOps, type ChargingTxHost } from '../../charging/index.ts';
import type {
  AdminKeyRecord,
  ApplyResult,
  BillingPlan,
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

export function createMemoryBillingStore(o: { charging?: ChargingTxHost } = {}): BillingStore {
  let charging: ChargingTxHost | null = o.charging ?? null;
  const versions = new Map<string, number>();
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
    async apply(plan: BillingPlan): Promise<ApplyResult> {
      const conflict = (kind: Exclude<ApplyResult, { ok: true }>['conflict'], detail: string): ApplyResult => ({ ok: false, conflict: kind, detail });
      for (const e of plan.expect) {
        const v = versions.get(e.accountId) ?? 0;
        if (v !== e.version) return conflict('version', `account ${e.accountId} changed since version ${e.version} (now ${v})`);
      }
      const r = plan.idempotency;
      if (r !== null && idem.has(`${r.scope}\u0000${r.key}`)) return conflict('idempotency', `Idempotency-Key ${r.key} was stored meanwhile`);
      const newHashes = new Set<string>();
      for (const { codes: list } of plan.codeBatches)
        for (const c of list) {
          if (codes.has(c.hash) || newHashes.has(c.hash)) return conflict('code', `code ${c.hint}... exists already`);
          newHashes.add(c.hash);
        }
      for (const c of plan.codesRedeem) if (codes.get(c.hash)?.redeemedBy !== null) return conflict('code', `code ${c.hint}... was redeemed meanwhile`);
      for (const b of plan.billsInsert)
        if ([...bills.values()].some((x) => x.accountId === b.accountId && x.period === b.period))
          return conflict('bill', `account ${b.accountId} has a bill for ${b.period} already`);
      for (const x of plan.ordersInsert) if (orders.has(x.id)) throw new Error(`duplicate order ${x.id}`);
      for (const x of plan.subscriptionsInsert) if (subs.has(x.id)) throw new Error(`duplicate subscription ${x.id}`);
      for (const x of plan.paymentsInsert) if (payments.has(x.id)) throw new Error(`duplicate payment ${x.id}`);
      for (const x of plan.ordersUpdate) if (!orders.has(x.id)) throw new Error(`unknown order ${x.id}`);
      for (const x of plan.subscriptionsUpdate)
        if (!subs.has(x.id) && !plan.subscriptionsInsert.some((n) => n.id === x.id)) throw new Error(`unknown subscription ${x.id}`);
      for (const x of plan.paymentsUpdate) if (!payments.has(x.id)) throw new Error(`unknown payment ${x.id}`);
      // The charging decision last among the checks: it writes only when everything else holds, and writes nothing
      // when it refuses.
      const c = plan.charging;
      if (c !== null && c.ops.length > 0) {
        if (charging === null) throw new Error('this billing store has no charging store connected: plans with charging operations cannot apply');
        const refused = applyBillingOps(charging.tx(), c.accountId, c.nowMs, c.ops);
        if (refused !== null) return conflict('charging', refused);
      }
      for (const e of plan.expect) versions.set(e.accountId, e.version + 1);
      if (r !== null) idem.set(`${r.scope}\u0000${r.key}`, copy(r));
      for (const x of plan.subscriptionsInsert) subs.set(x.id, copy(x));
      for (const x of plan.subscriptionsUpdate) subs.set(x.id, copy(x));
      for (const x of plan.ordersInsert) orders.set(x.id, copy(x));
      for (const x of plan.ordersUpdate) orders.set(x.id, copy(x));
      for (const x of plan.paymentsInsert) payments.set(x.id, copy(x));
      for (const x of plan.paymentsUpdate) payments.set(x.id, copy(x));
      for (const { batch, codes: list } of plan.codeBatches) {
        batches.set(batch.id, copy(batch));
        for (const x of list) codes.set(x.hash, copy(x));
      }
      for (const x of plan.codesRedeem) codes.set(x.hash, copy(x));
      for (const e of plan.pointsInsert) points.push(copy(e));
      for (const b of plan.billsInsert) bills.set(b.id, copy(b));
      return { ok: true };
    },
    connectCharging(host) {
      charging = host;
    },
    async accountVersion(accountId) {
      return versions.get(accountId) ?? 0;
    },
    async getIdempotency(scope, key) {
      const r = idem.get(`${scope}\u0000${key}`);
      return r && copy(r);
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
    async countRedeemed(batchId) {
      return [...codes.values()].filter((c) => c.batchId === batchId && c.redeemedBy !== null).length;
    },
    async listPoints(accountId) {
      return points
        .filter((e) => e.accountId === accountId)
        .sort(byId)
        .map(copy);
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
