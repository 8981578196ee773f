/**
 * Nodes starting together on a fresh database (review of issue 15): the schema, the migrations table and the usage
 * partitions are created by whichever node gets there first; the others must start too, never fail on PostgreSQL's
 * race of two concurrent `CREATE ... IF NOT EXISTS` (a unique violation in the catalog), nor refuse to start
 * because they looked while another node was between two migration steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectPostgres } from './db.ts';
import { openPostgresEngine } from './engine.ts';
import { migrate, MIGRATION_RUN_LOCK_KEY } from './migrations.ts';
import { MIGRATIONS } from './schema.ts';
import { PG_TEST_URL, skipWithoutPostgres, testSchemaName } from './test-support.ts';

const skip = await skipWithoutPostgres();

test('four nodes starting at once on a fresh schema all start, and the migrations are applied once', { skip }, async () => {
  for (let round = 0; round < 4; round++) {
    const schema = testSchemaName();
    try {
      const opened = await Promise.allSettled(Array.from({ length: 4 }, () => openPostgresEngine(PG_TEST_URL, { schema, max: 2, changeFeed: false })));
      const failures = opened.flatMap((o) => (o.status === 'rejected' ? [String((o.reason as Error).message)] : []));
      const engines = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      const migrated = engines.flatMap((e) => e.migrated);
      for (const e of engines) await e.close();
      assert.deepEqual(failures, [], `round ${round}`);
      assert.deepEqual(
        migrated.sort(),
        MIGRATIONS.map((m) => m.version),
        'each migration applied by exactly one node',
      );
    } finally {
      const db = await connectPostgres(PG_TEST_URL, { max: 1 });
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    }
  }
});

test('a node starting while another migrates the fresh database (between two steps) waits for it and starts', { skip }, async () => {
  const schema = testSchemaName();
  const a = await connectPostgres(PG_TEST_URL, { schema, max: 2 });
  const holder = await a.pool.connect();
  try {
    // Node A: step 1 applied, and it goes on with the others while holding the run's lock.
    await migrate(a, MIGRATIONS.slice(0, 1));
    await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_RUN_LOCK_KEY]);
    const b = openPostgresEngine(PG_TEST_URL, { schema, max: 2, changeFeed: false });
    const early = await Promise.race([
      b.then(
        () => 'started',
        (e: Error) => `refused: ${e.message}`,
      ),
      new Promise((r) => setTimeout(() => r('waiting'), 300)),
    ]);
    assert.equal(early, 'waiting', 'B waits for the migration in progress instead of refusing');
    for (const step of MIGRATIONS.slice(1)) {
      await holder.query('BEGIN');
      await holder.query(step.sql);
      await holder.query('INSERT INTO tokengrid_migrations (version, name) VALUES ($1, $2)', [step.version, step.name]);
      await holder.query('COMMIT');
    }
    await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_RUN_LOCK_KEY]);
    const engine = await b;
    assert.deepEqual(engine.migrated, []);
    await engine.close();
  } finally {
    holder.release();
    await a.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await a.close();
  }
});
