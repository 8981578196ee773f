/**
 * Test helpers for the PostgreSQL stores: each test file works in its own schema `tg_test_<random>` of the
 * database TOKENGRID_TEST_DATABASE_URL names (default: the local server's `test` database) and drops it at the
 * end, so test files and helpers running in parallel on one server never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import { connectPostgres, type PgDb } from './db.ts';
import { migrate } from './migrations.ts';

export const PG_TEST_URL = process.env.TOKENGRID_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function testSchemaName(): string {
  return `tg_test_${randomBytes(6).toString('hex')}`;
}

/** A migrated schema of its own; `drop` removes it and closes the pool. */
export async function openTestDb(o: { max?: number } = {}): Promise<{ db: PgDb; drop: () => Promise<void> }> {
  const db = await connectPostgres(PG_TEST_URL, { schema: testSchemaName(), max: o.max ?? 4 });
  await migrate(db);
  return {
    db,
    drop: async () => {
      try {
        await db.query(`DROP SCHEMA IF EXISTS ${db.schema} CASCADE`);
      } finally {
        await db.close();
      }
    },
  };
}

/** Empties every table of the schema (between the tests of a contract suite, which each expect a new store). */
export async function truncateAll(db: PgDb): Promise<void> {
  const r = await db.query<{ t: string }>(`SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = $1 AND tablename <> 'tokengrid_migrations'`, [
    db.schema,
  ]);
  if (r.rows.length > 0) await db.query(`TRUNCATE ${r.rows.map((x) => x.t).join(', ')} RESTART IDENTITY`);
}

/**
 * The contract suites open their store synchronously; this wraps a store so each of its methods first waits for
 * `ready` (the truncation of the previous test's rows).
 */
export function afterReady<T extends object>(ready: Promise<unknown>, store: T): T {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        await ready;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
