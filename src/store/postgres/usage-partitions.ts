/**
 * Monthly partitions of charging_usage_records (by settled_at_ms, UTC months). Each node calls this at start and
 * once a day: it creates the partitions of the previous, current and next `ahead` months that are missing, so a
 * settle always lands in its month's partition; old months can then be detached or dropped whole (retention)
 * instead of deleted row by row. Rows outside every month (tests with fixed old dates, clock jumps) land in the
 * default partition; a month whose rows already sit there is left to it (PostgreSQL refuses to create the
 * partition), and reported.
 */
import type { PgDb } from './db.ts';

/** pg_advisory_xact_lock key taken to create a partition (the runner's is 7_148_002_015, the audit chain's _016). */
const PARTITIONS_LOCK_KEY = 7_148_002_018;

function monthStart(year: number, month: number): number {
  return Date.UTC(year, month, 1);
}

export function partitionName(ms: number): string {
  const d = new Date(ms);
  return `charging_usage_records_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

export async function ensureUsagePartitions(db: PgDb, nowMs: number, ahead = 2): Promise<{ created: string[]; leftInDefault: string[] }> {
  const now = new Date(nowMs);
  const created: string[] = [];
  const leftInDefault: string[] = [];
  for (let i = -1; i <= ahead; i++) {
    const from = monthStart(now.getUTCFullYear(), now.getUTCMonth() + i);
    const to = monthStart(now.getUTCFullYear(), now.getUTCMonth() + i + 1);
    const name = partitionName(from);
    const exists = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [name]);
    if (exists.rows[0]?.t !== null && exists.rows[0]?.t !== undefined) continue;
    try {
      // Under a lock: two nodes creating the same partition at once would race in PostgreSQL's catalog.
      await db.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [PARTITIONS_LOCK_KEY]);
        await c.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF charging_usage_records FOR VALUES FROM (${from}) TO (${to})`);
      });
      created.push(name);
    } catch (error) {
      // 23514: the default partition already holds rows of this month; 42P07: another node created it meanwhile.
      const code = (error as { code?: string }).code;
      if (code === '23514') leftInDefault.push(name);
      else if (code !== '42P07') throw error;
    }
  }
  return { created, leftInDefault };
}
