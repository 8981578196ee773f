/**
 * PostgreSQL BillingStore. Rows keep the indexed columns the queries need and the whole record as jsonb.
 * `apply(plan)` is one transaction on one pooled client: the account versions (taken in account order, so two plans
 * never wait for each other in a cycle), the Idempotency-Key, code and bill preconditions, the billing rows, and the
 * plan's charging operations through the PostgreSQL charging store on the same client (its account lock, its view,
 * the pure decideBillingOps), committed together or not at all. A failed precondition rolls back and is returned.
 */
import type pg from 'pg';
import type {
  AdminKeyRecord,
  ApplyResult,
  Bill,
  BillingPlan,
  BillingStore,
  CodeBatch,
  CodeRecord,
  ConflictKind,
  IdempotencyRecord,
  Order,
  Payment,
  PointsEntry,
  Subscription,
} from '../../billing/index.ts';
import type { ChargingTxHost } from '../../charging/index.ts';
import { PgChargingStore } from './charging-store.ts';
import type { PgDb } from './db.ts';

class Conflict {
  constructor(
    readonly conflict: ConflictKind,
    readonly detail: string,
  ) {}
}

const j = (v: unknown): string => JSON.stringify(v);

async function write(c: pg.PoolClient, plan: BillingPlan, charging: PgChargingStore | null): Promise<void> {
  const expect = [...plan.expect].sort((a, b) => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0));
  for (const e of expect) {
    const r =
      e.version === 0
        ? await c.query('INSERT INTO billing_account_versions (account_id, version) VALUES ($1, 1) ON CONFLICT DO NOTHING', [e.accountId])
        : await c.query('UPDATE billing_account_versions SET version = version + 1 WHERE account_id = $1 AND version = $2', [e.accountId, e.version]);
    if (r.rowCount !== 1) throw new Conflict('version', `account ${e.accountId} changed since version ${e.version}`);
  }
  const idem = plan.idempotency;
  if (idem !== null) {
    const r = await c.query(
      'INSERT INTO billing_idempotency (scope, key, request_hash, response, created_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
      [idem.scope, idem.key, idem.requestHash, j(idem.response ?? null), idem.createdAtMs],
    );
    if (r.rowCount !== 1) throw new Conflict('idempotency', `Idempotency-Key ${idem.key} was stored meanwhile`);
  }
  for (const x of plan.subscriptionsInsert)
    await c.query('INSERT INTO billing_subscriptions (id, account_id, status, data) VALUES ($1, $2, $3, $4)', [x.id, x.accountId, x.status, j(x)]);
  for (const x of plan.subscriptionsUpdate) await c.query('UPDATE billing_subscriptions SET status = $1, data = $2 WHERE id = $3', [x.status, j(x), x.id]);
  for (const o of plan.ordersInsert)
    await c.query('INSERT INTO billing_orders (id, account_id, subscription_id, status, effective_at_ms, bill_id, data) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      o.id,
      o.accountId,
      o.subscriptionId,
      o.status,
      o.effectiveAtMs,
      o.billId,
      j(o),
    ]);
  for (const o of plan.ordersUpdate)
    await c.query('UPDATE billing_orders SET status = $1, bill_id = $2, data = $3 WHERE id = $4', [o.status, o.billId, j(o), o.id]);
  for (const p of plan.paymentsInsert)
    await c.query('INSERT INTO billing_payments (id, account_id, order_id, bill_id, status, created_at_ms, data) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      p.id,
      p.accountId,
      p.orderId,
      p.billId,
      p.status,
      p.createdAtMs,
      j(p),
    ]);
  for (const p of plan.paymentsUpdate)
    await c.query('UPDATE billing_payments SET bill_id = $1, status = $2, data = $3 WHERE id = $4', [p.billId, p.status, j(p), p.id]);
  for (const { batch, codes } of plan.codeBatches) {
    await c.query('INSERT INTO billing_code_batches (id, data) VALUES ($1, $2)', [batch.id, j(batch)]);
    for (const code of codes) {
      const r = await c.query('INSERT INTO billing_codes (hash, batch_id, redeemed_by, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
        code.hash,
        code.batchId,
        code.redeemedBy,
        j(code),
      ]);
      if (r.rowCount !== 1) throw new Conflict('code', `code ${code.hint}... exists already`);
    }
  }
  for (const code of plan.codesRedeem) {
    const r = await c.query('UPDATE billing_codes SET redeemed_by = $1, data = $2 WHERE hash = $3 AND redeemed_by IS NULL', [
      code.redeemedBy,
      j(code),
      code.hash,
    ]);
    if (r.rowCount !== 1) throw new Conflict('code', `code ${code.hint}... was redeemed meanwhile`);
  }
  for (const e of plan.pointsInsert) await c.query('INSERT INTO billing_points (id, account_id, data) VALUES ($1, $2, $3)', [e.id, e.accountId, j(e)]);
  for (const b of plan.billsInsert) {
    const r = await c.query('INSERT INTO billing_bills (id, account_id, period, data) VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, period) DO NOTHING', [
      b.id,
      b.accountId,
      b.period,
      j(b),
    ]);
    if (r.rowCount !== 1) throw new Conflict('bill', `account ${b.accountId} has a bill for ${b.period} already`);
  }
  const ch = plan.charging;
  if (ch !== null && ch.ops.length > 0) {
    if (charging === null) throw new Error('this billing store has no charging store connected: plans with charging operations cannot apply');
    const refused = await charging.applyBillingOpsOn(c, ch.accountId, ch.nowMs, ch.ops);
    if (refused !== null) throw new Conflict('charging', refused);
  }
}

type Row = { data: unknown };
const one = <T>(r: pg.QueryResult<Row>): T | undefined => r.rows[0]?.data as T | undefined;
const all = <T>(r: pg.QueryResult<Row>): T[] => r.rows.map((x) => x.data as T);

/** Builds `WHERE a = $1 AND …` from the conditions whose value is defined. */
function where(conds: [string, unknown][]): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  for (const [sql, v] of conds) {
    if (v === undefined) continue;
    args.push(v);
    parts.push(sql.replace('?', `$${args.length}`));
  }
  return { sql: parts.length === 0 ? '' : `WHERE ${parts.join(' AND ')}`, args };
}

export function openPostgresBillingStore(db: PgDb, o: { charging?: PgChargingStore } = {}): BillingStore {
  let charging: PgChargingStore | null = o.charging ?? null;
  return {
    async apply(plan): Promise<ApplyResult> {
      try {
        await db.tx((c) => write(c, plan, charging));
        return { ok: true };
      } catch (e) {
        if (e instanceof Conflict) return { ok: false, conflict: e.conflict, detail: e.detail };
        throw e;
      }
    },
    connectCharging(host: ChargingTxHost | PgChargingStore) {
      if (!(host instanceof PgChargingStore)) throw new Error('a PostgreSQL billing store applies charging operations through the PostgreSQL charging store');
      charging = host;
    },
    async accountVersion(accountId) {
      const r = await db.query<{ version: number }>('SELECT version FROM billing_account_versions WHERE account_id = $1', [accountId]);
      return r.rows[0]?.version ?? 0;
    },
    async getIdempotency(scope, key) {
      const r = (await db.query('SELECT * FROM billing_idempotency WHERE scope = $1 AND key = $2', [scope, key])).rows[0];
      return r === undefined
        ? undefined
        : ({
            scope: r.scope as string,
            key: r.key as string,
            requestHash: r.request_hash as string,
            response: r.response,
            createdAtMs: r.created_at_ms as number,
          } satisfies IdempotencyRecord);
    },
    async getOrder(id) {
      return one<Order>(await db.query<Row>('SELECT data FROM billing_orders WHERE id = $1', [id]));
    },
    async listOrders(q) {
      const w = where([
        ['account_id = ?', q.accountId],
        ['subscription_id = ?', q.subscriptionId],
        ['effective_at_ms >= ?', q.fromMs],
        ['effective_at_ms < ?', q.toMs],
        ['status = ?', q.status],
      ]);
      const unbilled = q.unbilled ? `${w.sql === '' ? 'WHERE' : ' AND'} bill_id IS NULL` : '';
      return all<Order>(await db.query<Row>(`SELECT data FROM billing_orders ${w.sql}${unbilled} ORDER BY effective_at_ms, id COLLATE "C"`, w.args));
    },
    async getSubscription(id) {
      return one<Subscription>(await db.query<Row>('SELECT data FROM billing_subscriptions WHERE id = $1', [id]));
    },
    async listSubscriptions(q) {
      const w = where([['account_id = ?', q.accountId]]);
      const live = q.live ? `${w.sql === '' ? 'WHERE' : ' AND'} status IN ('active', 'past_due')` : '';
      return all<Subscription>(await db.query<Row>(`SELECT data FROM billing_subscriptions ${w.sql}${live} ORDER BY id COLLATE "C"`, w.args));
    },
    async listPayments(q) {
      const w = where([
        ['account_id = ?', q.accountId],
        ['order_id = ?', q.orderId],
        ['bill_id = ?', q.billId],
        ['status = ?', q.status],
        ['created_at_ms >= ?', q.fromMs],
        ['created_at_ms < ?', q.toMs],
      ]);
      return all<Payment>(await db.query<Row>(`SELECT data FROM billing_payments ${w.sql} ORDER BY id COLLATE "C"`, w.args));
    },
    async getCodeBatch(id) {
      return one<CodeBatch>(await db.query<Row>('SELECT data FROM billing_code_batches WHERE id = $1', [id]));
    },
    async listCodeBatches() {
      return all<CodeBatch>(await db.query<Row>('SELECT data FROM billing_code_batches ORDER BY id COLLATE "C"'));
    },
    async getCode(hash) {
      return one<CodeRecord>(await db.query<Row>('SELECT data FROM billing_codes WHERE hash = $1', [hash]));
    },
    async countRedeemed(batchId) {
      const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM billing_codes WHERE batch_id = $1 AND redeemed_by IS NOT NULL', [batchId]);
      return r.rows[0]?.n ?? 0;
    },
    async listPoints(accountId) {
      return all<PointsEntry>(await db.query<Row>('SELECT data FROM billing_points WHERE account_id = $1 ORDER BY id COLLATE "C"', [accountId]));
    },
    async getBill(id) {
      return one<Bill>(await db.query<Row>('SELECT data FROM billing_bills WHERE id = $1', [id]));
    },
    async findBill(accountId, period) {
      return one<Bill>(await db.query<Row>('SELECT data FROM billing_bills WHERE account_id = $1 AND period = $2', [accountId, period]));
    },
    async listBills(q) {
      const w = where([
        ['account_id = ?', q.accountId],
        ['period = ?', q.period],
      ]);
      return all<Bill>(await db.query<Row>(`SELECT data FROM billing_bills ${w.sql} ORDER BY period COLLATE "C", id COLLATE "C"`, w.args));
    },
    async insertAdminKey(k) {
      await db.query('INSERT INTO billing_admin_keys (id, hash, data) VALUES ($1, $2, $3)', [k.id, k.hash, j(k)]);
    },
    async updateAdminKey(k: AdminKeyRecord) {
      await db.query('UPDATE billing_admin_keys SET data = $1 WHERE id = $2', [j(k), k.id]);
    },
    async listAdminKeys() {
      return all<AdminKeyRecord>(await db.query<Row>('SELECT data FROM billing_admin_keys ORDER BY id COLLATE "C"'));
    },
  };
}
