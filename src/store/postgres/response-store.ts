import type { ResponseStore, StoredResponse } from '../../wire/openai/index.ts';
import type { PgDb } from './db.ts';

/** Stored Responses-API responses on PostgreSQL: found only by their own account and before they expire. */
export function openPostgresResponseStore(db: PgDb): ResponseStore {
  return {
    async put(r: StoredResponse) {
      await db.query(
        `INSERT INTO responses (id, account_id, created_at_ms, expires_at_ms, response, items) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET account_id = EXCLUDED.account_id, created_at_ms = EXCLUDED.created_at_ms, expires_at_ms = EXCLUDED.expires_at_ms,
         response = EXCLUDED.response, items = EXCLUDED.items`,
        [r.id, r.accountId, r.createdAtMs, r.expiresAtMs, JSON.stringify(r.response), JSON.stringify(r.items)],
      );
    },
    async get(accountId, id, nowMs) {
      const row = (await db.query('SELECT * FROM responses WHERE id = $1 AND account_id = $2 AND expires_at_ms > $3', [id, accountId, nowMs])).rows[0];
      if (row === undefined) return undefined;
      return {
        id: row.id as string,
        accountId: row.account_id as string,
        createdAtMs: row.created_at_ms as number,
        expiresAtMs: row.expires_at_ms as number,
        response: row.response as Record<string, unknown>,
        items: row.items as Record<string, unknown>[],
      };
    },
    async delete(accountId, id) {
      return ((await db.query('DELETE FROM responses WHERE id = $1 AND account_id = $2', [id, accountId])).rowCount ?? 0) > 0;
    },
    async sweep(nowMs) {
      return (await db.query('DELETE FROM responses WHERE expires_at_ms <= $1', [nowMs])).rowCount ?? 0;
    },
  };
}
