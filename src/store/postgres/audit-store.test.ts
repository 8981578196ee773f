import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SeededRandom, createIdGenerator } from '../../core/index.ts';
import { AuditLog, GENESIS_HASH } from '../../audit/index.ts';
import { openPostgresAuditStore } from './audit-store.ts';
import { connectPostgres } from './db.ts';
import { PG_TEST_URL, openTestDb } from './test-support.ts';

const t = await openTestDb();
after(() => t.drop());

const input = (i: number) => ({
  actor: 'root',
  role: 'operator',
  action: 'bucket.grant',
  target: `bkt_${i}`,
  accountId: `acct_${i % 3}`,
  outcome: 201,
  before: null,
  after: { amount: i, nested: { b: 1, a: [1, 2] } },
  requestId: `req_${i}`,
  source: '127.0.0.1',
});

test('two nodes appending at once (two pools, two AuditLogs) still form one unbroken chain', async () => {
  const other = await connectPostgres(PG_TEST_URL, { schema: t.db.schema, max: 2 });
  try {
    const clock = new ManualClock(Date.UTC(2026, 11, 1));
    const a = new AuditLog({ store: openPostgresAuditStore(t.db), clock, ids: createIdGenerator(clock, new SeededRandom(1)) });
    const b = new AuditLog({ store: openPostgresAuditStore(other), clock, ids: createIdGenerator(clock, new SeededRandom(2)) });
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).append(input(i))));
    const all = await openPostgresAuditStore(t.db).all();
    assert.deepEqual(
      all.map((e) => e.seq),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.equal(all[0]!.prevHash, GENESIS_HASH);
    const v = await a.verify();
    assert.equal(v.ok, true);
    assert.deepEqual(all[0]!.after, input(Number(all[0]!.target!.slice(4))).after, 'JSON comes back whole');
    await assert.rejects(t.db.query('DELETE FROM audit_log'), /append-only/);
    assert.equal((await a.list({ accountId: 'acct_1', limit: 100 })).length, 7);
  } finally {
    await other.close();
  }
});
