import type { AuditEntry, AuditFilter, AuditStore } from '../../audit/index.ts';
import type { SqliteDb } from './db.ts';
import { runMigrations } from './migrations.ts';

/**
 * The audit log's table. Append-only: triggers refuse UPDATE and DELETE, so a change needs a deliberate
 * DROP TRIGGER first, and the hash chain (audit/index.ts) still shows it to `tokengrid audit verify`.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_log (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT, account_id TEXT, outcome INTEGER NOT NULL, before_json TEXT NOT NULL, after_json TEXT NOT NULL,
  request_id TEXT, source TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_account ON audit_log(account_id, seq);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`;

interface Row {
  seq: number;
  id: string;
  at_ms: number;
  actor: string;
  role: string;
  action: string;
  target: string | null;
  account_id: string | null;
  outcome: number;
  before_json: string;
  after_json: string;
  request_id: string | null;
  source: string | null;
  prev_hash: string;
  hash: string;
}

const toEntry = (r: Row): AuditEntry => ({
  seq: r.seq,
  id: r.id,
  atMs: r.at_ms,
  actor: r.actor,
  role: r.role,
  action: r.action,
  target: r.target,
  accountId: r.account_id,
  outcome: r.outcome,
  before: JSON.parse(r.before_json) as unknown,
  after: JSON.parse(r.after_json) as unknown,
  requestId: r.request_id,
  source: r.source,
  prevHash: r.prev_hash,
  hash: r.hash,
});

export function openSqliteAuditStore(db: SqliteDb): AuditStore {
  runMigrations(db, { store: 'audit', steps: [SCHEMA] });
  const ins =
    db.prepare(`INSERT INTO audit_log (seq,id,at_ms,actor,role,action,target,account_id,outcome,before_json,after_json,request_id,source,prev_hash,hash)
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`);
  const last = db.prepare('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1');
  const all = db.prepare('SELECT * FROM audit_log ORDER BY seq');
  return {
    async append(e) {
      ins.run(
        e.seq,
        e.id,
        e.atMs,
        e.actor,
        e.role,
        e.action,
        e.target,
        e.accountId,
        e.outcome,
        JSON.stringify(e.before),
        JSON.stringify(e.after),
        e.requestId,
        e.source,
        e.prevHash,
        e.hash,
      );
    },
    async last() {
      const r = last.get() as Row | undefined;
      return r && toEntry(r);
    },
    async list(f: AuditFilter) {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (f.accountId !== undefined) {
        where.push('account_id = ?');
        args.push(f.accountId);
      }
      if (f.actor !== undefined) {
        where.push('actor = ?');
        args.push(f.actor);
      }
      if (f.action !== undefined) {
        where.push('action = ?');
        args.push(f.action);
      }
      if (f.sinceMs !== undefined) {
        where.push('at_ms >= ?');
        args.push(f.sinceMs);
      }
      if (f.untilMs !== undefined) {
        where.push('at_ms < ?');
        args.push(f.untilMs);
      }
      const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
      return (db.prepare(sql).all(...args, f.limit ?? 100) as Row[]).map(toEntry);
    },
    async all() {
      return (all.all() as Row[]).map(toEntry);
    },
  };
}
