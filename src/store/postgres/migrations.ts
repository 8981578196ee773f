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

/** Applies every missing step in order; returns the versions applied now. */
export async function migrate(db: PgDb, steps: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  // Under the lock too: nodes starting together on a fresh database would race on CREATE TABLE IF NOT EXISTS.
  await db.tx(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await c.query(VERSIONS_TABLE);
  });
  const applied: number[] = [];
  for (const step of steps) {
    const done = await db.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      const seen = await c.query('SELECT 1 FROM tokengrid_migrations WHERE version = $1', [step.version]);
      if (seen.rowCount !== 0) return false;
      await c.query(step.sql);
      await c.query('INSERT INTO tokengrid_migrations (version, name) VALUES ($1, $2)', [step.version, step.name]);
      return true;
    });
    if (done) applied.push(step.version);
  }
  return applied;
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
