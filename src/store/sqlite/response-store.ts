import type { ResponseStore, StoredResponse } from '../../wire/openai/index.ts';
import type { SqliteDb } from './db.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS responses (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL,
  response TEXT NOT NULL, items TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expiry ON responses(expires_at_ms);
`;

interface Row {
  id: string;
  account_id: string;
  created_at_ms: number;
  expires_at_ms: number;
  response: string;
  items: string;
}

/**
 * Stored Responses-API responses (POST /v1/responses with store: true), one row each, looked up by id and
 * account (another account's id is not found), expired after their time limit. No transaction is ever held
 * open across an await on the shared connection (billing applies its plans synchronously), so writes go straight in.
 */
export function openSqliteResponseStore(db: SqliteDb): ResponseStore {
  db.exec(SCHEMA);
  const s = {
    put: db.prepare('INSERT OR REPLACE INTO responses (id,account_id,created_at_ms,expires_at_ms,response,items) VALUES (?,?,?,?,?,?)'),
    get: db.prepare('SELECT * FROM responses WHERE id = ? AND account_id = ? AND expires_at_ms > ?'),
    del: db.prepare('DELETE FROM responses WHERE id = ? AND account_id = ?'),
    sweep: db.prepare('DELETE FROM responses WHERE expires_at_ms <= ?'),
  };
  return {
    async put(r: StoredResponse) {
      s.put.run(r.id, r.accountId, r.createdAtMs, r.expiresAtMs, JSON.stringify(r.response), JSON.stringify(r.items));
    },
    async get(accountId, id, nowMs) {
      const row = s.get.get(id, accountId, nowMs) as Row | undefined;
      if (row === undefined) return undefined;
      return {
        id: row.id,
        accountId: row.account_id,
        createdAtMs: row.created_at_ms,
        expiresAtMs: row.expires_at_ms,
        response: JSON.parse(row.response) as Record<string, unknown>,
        items: JSON.parse(row.items) as Record<string, unknown>[],
      };
    },
    async delete(accountId, id) {
      return s.del.run(id, accountId).changes > 0;
    },
    async sweep(nowMs) {
      return s.sweep.run(nowMs).changes;
    },
  };
}
