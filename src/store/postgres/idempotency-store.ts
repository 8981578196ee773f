/**
 * Inference Idempotency-Keys on PostgreSQL (issue 15): every gateway node claims and reads the same rows, so a
 * client's retry sent to another node replays the first answer instead of running (and being charged) again.
 * - claim: one INSERT ... ON CONFLICT DO UPDATE ... WHERE (expired, or a running claim older than `staleRunningMs`:
 *   its node died) — a row comes back only to the one caller that now owns the key; otherwise the row is read;
 * - a waiting duplicate polls (`changed`: 25 ms doubling to 1 s) until the row is done or gone, within the
 *   gateway's 5-minute bound;
 * - `sweep` deletes expired rows (the app runs it hourly).
 */
import { randomBytes } from 'node:crypto';
import type { IdempotencyClaim, IdempotencyStore, StoredAnswer } from '../../gateway/index.ts';
import type { PgDb } from './db.ts';

export interface PgIdempotencyStore extends IdempotencyStore {
  /** Deletes rows expired at `nowMs`; returns how many. */
  sweep(nowMs: number): Promise<number>;
}

export interface PgIdempotencyOptions {
  /** A running claim this old is taken over (its node died mid-request); default 1 hour, far above a request's life (a stream runs as long as its upstream keeps sending, so not 5 minutes). */
  staleRunningMs?: number;
  /** The poll's timer (tests); default setTimeout, unref'd. */
  sleep?: (ms: number) => Promise<void>;
}

const POLL_FIRST_MS = 25;
const POLL_MAX_MS = 1_000;

export function openPostgresIdempotencyStore(db: PgDb, o: PgIdempotencyOptions = {}): PgIdempotencyStore {
  const staleRunningMs = o.staleRunningMs ?? 3_600_000;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  return {
    async claim(scope, key, fingerprint, streamed, ttlMs, nowMs): Promise<IdempotencyClaim> {
      // A row deleted between the INSERT and the SELECT (released, swept) is claimed again: at most a few turns.
      for (let turn = 0; ; turn++) {
        const token = randomBytes(12).toString('hex');
        const won = await db.query(
          `INSERT INTO idempotency_keys (scope, key, fingerprint, streamed, state, token, claimed_at_ms, expires_at_ms)
           VALUES ($1, $2, $3, $4, 'running', $5, $6, $7)
           ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, streamed = EXCLUDED.streamed, state = 'running',
             token = EXCLUDED.token, claimed_at_ms = EXCLUDED.claimed_at_ms, expires_at_ms = EXCLUDED.expires_at_ms,
             status = NULL, body = NULL, content_type = NULL
           WHERE idempotency_keys.expires_at_ms <= $6 OR (idempotency_keys.state = 'running' AND idempotency_keys.claimed_at_ms <= $8)
           RETURNING token`,
          [scope, key, fingerprint, streamed, token, nowMs, nowMs + ttlMs, nowMs - staleRunningMs],
        );
        if ((won.rowCount ?? 0) > 0) return { state: 'claimed', token };
        const row = (
          await db.query<{ fingerprint: string; streamed: boolean; state: string; status: number | null; body: string | null; content_type: string | null }>(
            'SELECT fingerprint, streamed, state, status, body, content_type FROM idempotency_keys WHERE scope = $1 AND key = $2',
            [scope, key],
          )
        ).rows[0];
        if (row === undefined) {
          if (turn < 3) continue;
          throw new Error('Idempotency-Key: the row kept disappearing while claiming it');
        }
        if (row.fingerprint !== fingerprint) return 'mismatch';
        if (row.state === 'running') return { state: 'running', streamed: row.streamed };
        const response: StoredAnswer | undefined =
          row.body === null || row.status === null || row.content_type === null
            ? undefined
            : { status: row.status, body: row.body, contentType: row.content_type };
        return { state: 'done', response };
      }
    },
    async complete(scope, key, token, response) {
      await db.query(
        `UPDATE idempotency_keys SET state = 'done', status = $4, body = $5, content_type = $6
         WHERE scope = $1 AND key = $2 AND token = $3 AND state = 'running'`,
        [scope, key, token, response?.status ?? null, response?.body ?? null, response?.contentType ?? null],
      );
    },
    async release(scope, key, token) {
      await db.query(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND token = $3 AND state = 'running'`, [scope, key, token]);
    },
    changed(_scope, _key, attempt) {
      return sleep(Math.min(POLL_MAX_MS, POLL_FIRST_MS * 2 ** Math.min(attempt, 10)));
    },
    async sweep(nowMs) {
      return (await db.query('DELETE FROM idempotency_keys WHERE expires_at_ms <= $1', [nowMs])).rowCount ?? 0;
    },
  };
}
