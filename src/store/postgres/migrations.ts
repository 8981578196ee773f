/**
 * The PostgreSQL migration runner. Applied versions are rows of `tokengrid_migrations`; each step runs in its
 * own transaction with its version row, under an advisory lock so several nodes starting at once apply a step
 * once. `checkSchemaVersion` is what a node runs at start: a database behind this build (or ahead of it: an
 * older build started after an upgrade) refuses to start with a message saying what to do.
 */
import { type PgDb, SCHEMA_LOCK_KEY } from './db.ts';
import { LATEST_VERSION, MIGRATIONS, type Migration } from './schema.ts';

const LOCK_KEY = SCHEMA_LOCK_KEY; // pg_advisory_xact_lock key of the runner ("tg", issue 15)

const VERSIONS_TABLE = `CREATE TABLE IF NOT EXISTS tokengrid_migrations (
  version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
)`;

export async function schemaVersion(db: PgDb): Promise<number> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('tokengrid_migrations')::text AS t`);
  if (exists.rows[0]?.t === null || exists.rows[0]?.t === undefined) return 0;
  const r = await db.query<{ v: number }>('SELECT COALESCE(MAX(version), 0)::int AS v FROM tokengrid_migrations');
  return r.rows[0]?.v ?? 0;
}

/**
 * pg_advisory_lock key held (session level) for a whole run of `migrate`, so a node starting meanwhile can wait for
 * the run to end instead of refusing a database it saw between two steps (`waitForMigrationRun`).
 */
export const MIGRATION_RUN_LOCK_KEY = 7_148_002_019;

/** Applies every missing step in order; returns the versions applied now. */
export async function migrate(db: PgDb, steps: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  // One connection for the run (a pool of 1 must not wait for itself), holding the run's lock throughout; each step
  // also takes the per-step lock, as older builds do.
  const c = await db.pool.connect();
  let broken: Error | undefined;
  try {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_RUN_LOCK_KEY]);
    try {
      // Under the lock too: nodes starting together on a fresh database would race on CREATE TABLE IF NOT EXISTS.
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      await c.query(VERSIONS_TABLE);
      await c.query('COMMIT');
      const applied: number[] = [];
      for (const step of steps) {
        await c.query('BEGIN');
        await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
        const seen = await c.query('SELECT 1 FROM tokengrid_migrations WHERE version = $1', [step.version]);
        if (seen.rowCount !== 0) {
          await c.query('COMMIT');
          continue;
        }
        await c.query(step.sql);
        await c.query('INSERT INTO tokengrid_migrations (version, name) VALUES ($1, $2)', [step.version, step.name]);
        await c.query('COMMIT');
        applied.push(step.version);
      }
      return applied;
    } catch (error) {
      await c.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_RUN_LOCK_KEY]).catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
    }
  } finally {
    c.release(broken);
  }
}

/**
 * Waits until no `migrate` run is in progress on this database (at most the statement timeout); false when the wait
 * failed. A node that finds the database behind this build calls it before refusing to start: the database may be
 * in the middle of another node's first-start migration.
 */
export async function waitForMigrationRun(db: PgDb): Promise<boolean> {
  try {
    const c = await db.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_RUN_LOCK_KEY]);
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_RUN_LOCK_KEY]);
    } catch (e) {
      broken = e instanceof Error ? e : new Error(String(e));
      throw e;
    } finally {
      c.release(broken);
    }
    return true;
  } catch {
    return false;
  }
}

export class SchemaVersionError extends Error {
  override name = 'SchemaVersionError';
}

/** Throws a SchemaVersionError unless the database is exactly at this build's version. */
export async function checkSchemaVersion(db: PgDb, latest: number = LATEST_VERSION): Promise<void> {
  const v = await schemaVersion(db);
  if (v === latest) return;
  if (v < latest) {
    throw new SchemaVersionError(
      `The PostgreSQL database ${db.where} (schema ${db.schema}) is at migration ${v}; this TokenGrid needs ${latest}. Run \`tokengrid migrate\` (it applies ${latest - v} step(s)), then start again.`,
    );
  }
  throw new SchemaVersionError(
    `The PostgreSQL database ${db.where} (schema ${db.schema}) is at migration ${v}, newer than this TokenGrid (${latest}): another node runs a newer version. Upgrade this node.`,
  );
}
