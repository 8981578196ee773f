/**
 * Nodes starting together on a fresh database (review of issue 15): the schema, the migrations table and the usage
 * partitions are created by whichever node gets there first; the others must start too, never fail on PostgreSQL's
 * race of two concurrent `CREATE ... IF NOT EXISTS` (a unique violation in the catalog).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectPostgres } from './db.ts';
import { openPostgresEngine } from './engine.ts';
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
      assert.deepEqual(migrated.sort(), [1, 2, 3], 'each migration applied by exactly one node');
    } finally {
      const db = await connectPostgres(PG_TEST_URL, { max: 1 });
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    }
  }
});
