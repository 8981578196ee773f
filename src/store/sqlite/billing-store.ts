/**
 * SQLite BillingStore. Rows keep the indexed columns the queries need and the whole record as JSON.
 * `apply(plan)` is one synchronous better-sqlite3 transaction: the plan's preconditions, its billing rows and its
 * charging operations (through the charging store on the same connection, charging/billing-ops.ts) commit
 * together or not at all. Nothing awaits while it is open, so no other request's write can join it.
 */
import type {
  AdminKeyRecord,
  Bill,
  ApplyResult,
  BillingPlan,
  BillingStore,
  ConflictKind,
  CodeBatch,
  CodeRecord,
  IdempotencyRecord,
  Order,
  Payment,
  PointsEntry,
  Subscription,
} from '../../billing/index.ts';
import type { SqliteDb } from './db.ts';
import type { ChargingTxHost } from '../../charging/index.ts';
import { applyBillingOps } from '../../charging/index.ts';
import { runMigrations } from './migrations.ts';

/**
 * V1: the tables as first released (IF NOT EXISTS: a database made before billing_migrations existed is at V1
 * already). Every field a query filters or orders on is a real column; the record itself is JSON in `data`.
 */
const V1 = `
CREATE TABLE IF NOT EXISTS billing_idempotency (
  scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, response TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS billing_orders (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, subscription_id TEXT, status TEXT NOT NULL, effective_at_ms INTEGER NOT NULL,
  bill_id TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_orders_account ON billing_orders(account_id, effective_at_ms);
CREATE INDEX IF NOT EXISTS billing_orders_status ON billing_orders(status);
CREATE TABLE IF NOT EXISTS billing_subscriptions (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_subscriptions_account ON billing_subscriptions(account_id);
CREATE INDEX IF NOT EXISTS billing_subscriptions_status ON billing_subscriptions(status);
CREATE TABLE IF NOT EXISTS billing_payments (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, order_id TEXT, bill_id TEXT, status TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_payments_account ON billing_payments(account_id);
CREATE INDEX IF NOT EXISTS billing_payments_order ON billing_payments(order_id);
CREATE INDEX IF NOT EXISTS billing_payments_status ON billing_payments(status);
CREATE TABLE IF NOT EXISTS billing_code_batches (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS billing_codes (
  hash TEXT PRIMARY KEY, batch_id TEXT NOT NULL, redeemed_by TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_codes_batch ON billing_codes(batch_id);
CREATE TABLE IF NOT EXISTS billing_points (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS billing_points_account ON billing_points(account_id);
CREATE TABLE IF NOT EXISTS billing_bills (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, period TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (account_id, period)
);
CREATE TABLE IF NOT EXISTS billing_admin_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
`;

/** V2: each account's billing version, the optimistic precondition of every plan (issue 14 item 1). */
const V2 = `
CREATE TABLE IF NOT EXISTS billing_account_versions (account_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
`;

/** Thrown inside the transaction to roll it back and report the conflict. */
class Conflict {
  constructor(
    readonly conflict: ConflictKind,
    readonly detail: string,
  ) {}
}

type Row = { data: string };
const parse = <T>(r: Row | undefined): T | undefined => (r === undefined ? undefined : (JSON.parse(r.data) as T));
const parseAll = <T>(rows: unknown[]): T[] => (rows as Row[]).map((r) => JSON.parse(r.data) as T);

export function openSqliteBillingStore(db: SqliteDb, o: { charging?: ChargingTxHost } = {}): BillingStore {
  runMigrations(db, { store: 'billing', steps: [V1, V2] });
  let charging: ChargingTxHost | null = o.charging ?? null;
  const s = {
    getVersion: db.prepare('SELECT version FROM billing_account_versions WHERE account_id = ?'),
    bumpVersion: db.prepare('UPDATE billing_account_versions SET version = version + 1 WHERE account_id = ? AND version = ?'),
    firstVersion: db.prepare('INSERT OR IGNORE INTO billing_account_versions (account_id, version) VALUES (?, 1)'),
    getIdem: db.prepare('SELECT * FROM billing_idempotency WHERE scope = ? AND key = ?'),
    putIdem: db.prepare('INSERT INTO billing_idempotency (scope, key, request_hash, response, created_at_ms) VALUES (?,?,?,?,?)'),
    insOrder: db.prepare('INSERT INTO billing_orders (id, account_id, subscription_id, status, effective_at_ms, bill_id, data) VALUES (?,?,?,?,?,?,?)'),
    updOrder: db.prepare('UPDATE billing_orders SET status = ?, bill_id = ?, data = ? WHERE id = ?'),
    getOrder: db.prepare('SELECT data FROM billing_orders WHERE id = ?'),
    listOrders: db.prepare(`SELECT data FROM billing_orders WHERE (@account IS NULL OR account_id = @account)
      AND (@sub IS NULL OR subscription_id = @sub) AND (@from IS NULL OR effective_at_ms >= @from) AND (@to IS NULL OR effective_at_ms < @to)
      AND (@status IS NULL OR status = @status) AND (@unbilled = 0 OR bill_id IS NULL) ORDER BY effective_at_ms, id`),
    insSub: db.prepare('INSERT INTO billing_subscriptions (id, account_id, status, data) VALUES (?,?,?,?)'),
    updSub: db.prepare('UPDATE billing_subscriptions SET status = ?, data = ? WHERE id = ?'),
    getSub: db.prepare('SELECT data FROM billing_subscriptions WHERE id = ?'),
    listSubs: db.prepare(`SELECT data FROM billing_subscriptions WHERE (@account IS NULL OR account_id = @account)
      AND (@live = 0 OR status IN ('active', 'past_due')) ORDER BY id`),
    insPay: db.prepare('INSERT INTO billing_payments (id, account_id, order_id, bill_id, status, created_at_ms, data) VALUES (?,?,?,?,?,?,?)'),
    updPay: db.prepare('UPDATE billing_payments SET bill_id = ?, status = ?, data = ? WHERE id = ?'),
    listPays: db.prepare(`SELECT data FROM billing_payments WHERE (@account IS NULL OR account_id = @account)
      AND (@order IS NULL OR order_id = @order) AND (@bill IS NULL OR bill_id = @bill) AND (@status IS NULL OR status = @status)
      AND (@from IS NULL OR created_at_ms >= @from) AND (@to IS NULL OR created_at_ms < @to) ORDER BY id`),
    insBatch: db.prepare('INSERT INTO billing_code_batches (id, data) VALUES (?,?)'),
    getBatch: db.prepare('SELECT data FROM billing_code_batches WHERE id = ?'),
    listBatches: db.prepare('SELECT data FROM billing_code_batches ORDER BY id'),
    insCode: db.prepare('INSERT INTO billing_codes (hash, batch_id, redeemed_by, data) VALUES (?,?,?,?)'),
    getCode: db.prepare('SELECT data FROM billing_codes WHERE hash = ?'),
    redeemCode: db.prepare('UPDATE billing_codes SET redeemed_by = ?, data = ? WHERE hash = ? AND redeemed_by IS NULL'),
    hasCode: db.prepare('SELECT 1 FROM billing_codes WHERE hash = ?'),
    countRedeemed: db.prepare('SELECT COUNT(*) AS n FROM billing_codes WHERE batch_id = ? AND redeemed_by IS NOT NULL'),
    insPoints: db.prepare('INSERT INTO billing_points (id, account_id, data) VALUES (?,?,?)'),
    listPoints: db.prepare('SELECT data FROM billing_points WHERE account_id = ? ORDER BY id'),
    insBill: db.prepare('INSERT INTO billing_bills (id, account_id, period, data) VALUES (?,?,?,?)'),
    getBill: db.prepare('SELECT data FROM billing_bills WHERE id = ?'),
    findBill: db.prepare('SELECT data FROM billing_bills WHERE account_id = ? AND period = ?'),
    listBills: db.prepare(`SELECT data FROM billing_bills WHERE (@account IS NULL OR account_id = @account)
      AND (@period IS NULL OR period = @period) ORDER BY period, id`),
    insKey: db.prepare('INSERT INTO billing_admin_keys (id, hash, data) VALUES (?,?,?)'),
    updKey: db.prepare('UPDATE billing_admin_keys SET data = ? WHERE id = ?'),
    listKeys: db.prepare('SELECT data FROM billing_admin_keys ORDER BY id'),
  };
  const version = (accountId: string): number => (s.getVersion.get(accountId) as { version: number } | undefined)?.version ?? 0;
  const write = (plan: BillingPlan): void => {
    for (const e of plan.expect) {
      const ok = e.version === 0 ? s.firstVersion.run(e.accountId).changes === 1 : s.bumpVersion.run(e.accountId, e.version).changes === 1;
      if (!ok) throw new Conflict('version', `account ${e.accountId} changed since version ${e.version} (now ${version(e.accountId)})`);
    }
    const r = plan.idempotency;
    if (r !== null) {
      if (s.getIdem.get(r.scope, r.key) !== undefined) throw new Conflict('idempotency', `Idempotency-Key ${r.key} was stored meanwhile`);
      s.putIdem.run(r.scope, r.key, r.requestHash, JSON.stringify(r.response), r.createdAtMs);
    }
    for (const x of plan.subscriptionsInsert) s.insSub.run(x.id, x.accountId, x.status, JSON.stringify(x));
    for (const x of plan.subscriptionsUpdate) s.updSub.run(x.status, JSON.stringify(x), x.id);
    for (const o of plan.ordersInsert) s.insOrder.run(o.id, o.accountId, o.subscriptionId, o.status, o.effectiveAtMs, o.billId, JSON.stringify(o));
    for (const o of plan.ordersUpdate) s.updOrder.run(o.status, o.billId, JSON.stringify(o), o.id);
    for (const p of plan.paymentsInsert) s.insPay.run(p.id, p.accountId, p.orderId, p.billId, p.status, p.createdAtMs, JSON.stringify(p));
    for (const p of plan.paymentsUpdate) s.updPay.run(p.billId, p.status, JSON.stringify(p), p.id);
    for (const { batch, codes } of plan.codeBatches) {
      s.insBatch.run(batch.id, JSON.stringify(batch));
      for (const c of codes) {
        if (s.hasCode.get(c.hash) !== undefined) throw new Conflict('code', `code ${c.hint}... exists already`);
        s.insCode.run(c.hash, c.batchId, c.redeemedBy, JSON.stringify(c));
      }
    }
    for (const c of plan.codesRedeem) {
      if (s.redeemCode.run(c.redeemedBy, JSON.stringify(c), c.hash).changes !== 1) throw new Conflict('code', `code ${c.hint}... was redeemed meanwhile`);
    }
    for (const e of plan.pointsInsert) s.insPoints.run(e.id, e.accountId, JSON.stringify(e));
    for (const b of plan.billsInsert) {
      if (s.findBill.get(b.accountId, b.period) !== undefined) throw new Conflict('bill', `account ${b.accountId} has a bill for ${b.period} already`);
      s.insBill.run(b.id, b.accountId, b.period, JSON.stringify(b));
    }
    const c = plan.charging;
    if (c !== null && c.ops.length > 0) {
      if (charging === null) throw new Error('this billing store has no charging store connected: plans with charging operations cannot apply');
      const refused = applyBillingOps(charging.tx(), c.accountId, c.nowMs, c.ops);
      if (refused !== null) throw new Conflict('charging', refused);
    }
  };
  const tx = db.transaction(write);
  return {
    async apply(plan): Promise<ApplyResult> {
      const touched = plan.charging !== null && plan.charging.ops.length > 0 ? plan.charging.accountId : null;
      if (touched !== null) charging?.flushPending();
      try {
        tx.immediate(plan);
        return { ok: true };
      } catch (e) {
        if (e instanceof Conflict) return { ok: false, conflict: e.conflict, detail: e.detail };
        throw e;
      } finally {
        if (touched !== null) charging?.forget(touched);
      }
    },
    connectCharging(host) {
      charging = host;
    },
    async accountVersion(accountId) {
      return version(accountId);
    },
    async getIdempotency(scope, key) {
      const r = s.getIdem.get(scope, key) as { scope: string; key: string; request_hash: string; response: string; created_at_ms: number } | undefined;
      return r === undefined
        ? undefined
        : ({
            scope: r.scope,
            key: r.key,
            requestHash: r.request_hash,
            response: JSON.parse(r.response) as unknown,
            createdAtMs: r.created_at_ms,
          } satisfies IdempotencyRecord);
    },
    async getOrder(id) {
      return parse<Order>(s.getOrder.get(id) as Row | undefined);
    },
    async listOrders(q) {
      return parseAll<Order>(
        s.listOrders.all({
          account: q.accountId ?? null,
          sub: q.subscriptionId ?? null,
          from: q.fromMs ?? null,
          to: q.toMs ?? null,
          status: q.status ?? null,
          unbilled: q.unbilled ? 1 : 0,
        }),
      );
    },
    async getSubscription(id) {
      return parse<Subscription>(s.getSub.get(id) as Row | undefined);
    },
    async listSubscriptions(q) {
      return parseAll<Subscription>(s.listSubs.all({ account: q.accountId ?? null, live: q.live ? 1 : 0 }));
    },
    async listPayments(q) {
      return parseAll<Payment>(
        s.listPays.all({
          account: q.accountId ?? null,
          order: q.orderId ?? null,
          bill: q.billId ?? null,
          status: q.status ?? null,
          from: q.fromMs ?? null,
          to: q.toMs ?? null,
        }),
      );
    },
    async getCodeBatch(id) {
      return parse<CodeBatch>(s.getBatch.get(id) as Row | undefined);
    },
    async listCodeBatches() {
      return parseAll<CodeBatch>(s.listBatches.all());
    },
    async getCode(hash) {
      return parse<CodeRecord>(s.getCode.get(hash) as Row | undefined);
    },
    async countRedeemed(batchId) {
      return (s.countRedeemed.get(batchId) as { n: number }).n;
    },
    async listPoints(accountId) {
      return parseAll<PointsEntry>(s.listPoints.all(accountId));
    },
    async getBill(id) {
      return parse<Bill>(s.getBill.get(id) as Row | undefined);
    },
    async findBill(accountId, period) {
      return parse<Bill>(s.findBill.get(accountId, period) as Row | undefined);
    },
    async listBills(q) {
      return parseAll<Bill>(s.listBills.all({ account: q.accountId ?? null, period: q.period ?? null }));
    },
    async insertAdminKey(k) {
      s.insKey.run(k.id, k.hash, JSON.stringify(k));
    },
    async updateAdminKey(k: AdminKeyRecord) {
      s.updKey.run(JSON.stringify(k), k.id);
    },
    async listAdminKeys() {
      return parseAll<AdminKeyRecord>(s.listKeys.all());
    },
  };
}
