import type { AuditEntry, AuditFilter, AuditStore } from '../../audit/index.ts';
import type { PgDb } from './db.ts';

type Row = Record<string, unknown>;

const toEntry = (r: Row): AuditEntry => ({
  seq: r.seq as number,
  id: r.id as string,
  atMs: r.at_ms as number,
  actor: r.actor as string,
  role: r.role as string,
  action: r.action as string,
  target: r.target as string | null,
  accountId: r.account_id as string | null,
  outcome: r.outcome as number,
  before: r.before_json,
  after: r.after_json,
  requestId: r.request_id as string | null,
  source: r.source as string | null,
  prevHash: r.prev_hash as string,
  hash: r.hash as string,
});

/**
 * The audit log on PostgreSQL. Append-only (triggers refuse UPDATE and DELETE); `seq` is the primary key, so
 * two nodes appending after the same last entry cannot both commit: the second fails and appends again on a
 * fresh `last()` (the hash chain stays linear).
 */
const INSERT = `INSERT INTO audit_log (seq, id, at_ms, actor, role, action, target, account_id, outcome, before_json, after_json, request_id, source, prev_hash, hash)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`;
const values = (e: AuditEntry): unknown[] => [
  e.seq,
  e.id,
  e.atMs,
  e.actor,
  e.role,
  e.action,
  e.target,
  e.accountId,
  e.outcome,
  JSON.stringify(e.before ?? null),
  JSON.stringify(e.after ?? null),
  e.requestId,
  e.source,
  e.prevHash,
  e.hash,
];
/** pg_advisory_xact_lock key serializing appends across nodes. */
const CHAIN_LOCK = 7_148_002_016;

export function openPostgresAuditStore(db: PgDb): AuditStore {
  return {
    async appendChained(next) {
      return db.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [CHAIN_LOCK]);
        const last = (await c.query('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1')).rows[0];
        const e = next(last === undefined ? undefined : toEntry(last));
        await c.query(INSERT, values(e));
        return e;
      });
    },
    async append(e) {
      await db.query(INSERT, values(e));
    },
    async last() {
      const r = (await db.query('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1')).rows[0];
      return r && toEntry(r);
    },
    async list(f: AuditFilter) {
      const where: string[] = [];
      const args: unknown[] = [];
      const add = (sql: string, v: unknown): void => {
        args.push(v);
        where.push(`${sql} $${args.length}`);
      };
      if (f.accountId !== undefined) add('account_id =', f.accountId);
      if (f.actor !== undefined) add('actor =', f.actor);
      if (f.action !== undefined) add('action =', f.action);
      if (f.sinceMs !== undefined) add('at_ms >=', f.sinceMs);
      if (f.untilMs !== undefined) add('at_ms <', f.untilMs);
      args.push(f.limit ?? 100);
      const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${args.length}`;
      return (await db.query(sql, args)).rows.map(toEntry);
    },
    async all() {
      return (await db.query('SELECT * FROM audit_log ORDER BY seq')).rows.map(toEntry);
    },
  };
}
