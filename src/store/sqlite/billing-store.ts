/**
 * SQLite BillingStore. Rows keep the indexed columns the queries need and the whole record as JSON.
 * `atomically` opens BEGIN IMMEDIATE on the shared connection, so an order's rows and the charging store's
 * bucket/ledger changes (its transactions nest as savepoints) commit together, or roll back together.
 */
import type {
  AdminKeyRecord,
  Bill,
  BillingStore,
  CodeBatch,
  CodeRecord,
  IdempotencyRecord,
  Order,
  Payment,
  PointsEntry,
  Subscription,
} from '../../billing/index.ts';
import type { SqliteDb } from './db.ts';
import { txGate } from './tx-gate.ts';
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

type Row = { data: string };
const parse = <T>(r: Row | undefined): T | undefined => (r === undefined ? undefined : (JSON.parse(r.data) as T));
const parseAll = <T>(rows: unknown[]): T[] => (rows as Row[]).map((r) => JSON.parse(r.data) as T);

export function openSqliteBillingStore(db: SqliteDb): BillingStore {
  runMigrations(db, { store: 'billing', steps: [V1] });
  const s = {
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
    updCode: db.prepare('UPDATE billing_codes SET redeemed_by = ?, data = ? WHERE hash = ?'),
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
  const insertCodes = db.transaction((b: CodeBatch, codes: CodeRecord[]) => {
    s.insBatch.run(b.id, JSON.stringify(b));
    for (const c of codes) s.insCode.run(c.hash, c.batchId, c.redeemedBy, JSON.stringify(c));
  });
  let depth = 0;
  const gate = txGate(db);
  return {
    async atomically<T>(fn: () => Promise<T>): Promise<T> {
      // Exclusive use of the connection while the order's transaction is open across awaits (tx-gate.ts):
      // a concurrent gateway settle waits instead of joining this transaction.
      return gate.exclusive(async () => {
        if (depth > 0) return fn();
        const outer = !db.inTransaction;
        db.exec(outer ? 'BEGIN IMMEDIATE' : 'SAVEPOINT billing_order');
        depth++;
        try {
          const result = await fn();
          db.exec(outer ? 'COMMIT' : 'RELEASE billing_order');
          return result;
        } catch (e) {
          if (db.inTransaction) db.exec(outer ? 'ROLLBACK' : 'ROLLBACK TO billing_order; RELEASE billing_order');
          gate.rolledBack();
          throw e;
        } finally {
          depth--;
        }
      });
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
    async putIdempotency(r) {
      s.putIdem.run(r.scope, r.key, r.requestHash, JSON.stringify(r.response), r.createdAtMs);
    },
    async insertOrder(o) {
      s.insOrder.run(o.id, o.accountId, o.subscriptionId, o.status, o.effectiveAtMs, o.billId, JSON.stringify(o));
    },
    async updateOrder(o) {
      s.updOrder.run(o.status, o.billId, JSON.stringify(o), o.id);
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
    async insertSubscription(x) {
      s.insSub.run(x.id, x.accountId, x.status, JSON.stringify(x));
    },
    async updateSubscription(x) {
      s.updSub.run(x.status, JSON.stringify(x), x.id);
    },
    async getSubscription(id) {
      return parse<Subscription>(s.getSub.get(id) as Row | undefined);
    },
    async listSubscriptions(q) {
      return parseAll<Subscription>(s.listSubs.all({ account: q.accountId ?? null, live: q.live ? 1 : 0 }));
    },
    async insertPayment(p) {
      s.insPay.run(p.id, p.accountId, p.orderId, p.billId, p.status, p.createdAtMs, JSON.stringify(p));
    },
    async updatePayment(p) {
      s.updPay.run(p.billId, p.status, JSON.stringify(p), p.id);
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
    async insertCodeBatch(b, codes) {
      insertCodes(b, codes);
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
    async updateCode(c) {
      s.updCode.run(c.redeemedBy, JSON.stringify(c), c.hash);
    },
    async countRedeemed(batchId) {
      return (s.countRedeemed.get(batchId) as { n: number }).n;
    },
    async insertPoints(e) {
      s.insPoints.run(e.id, e.accountId, JSON.stringify(e));
    },
    async listPoints(accountId) {
      return parseAll<PointsEntry>(s.listPoints.all(accountId));
    },
    async insertBill(b) {
      s.insBill.run(b.id, b.accountId, b.period, JSON.stringify(b));
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
