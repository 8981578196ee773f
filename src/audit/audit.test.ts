import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, createIdGenerator, SeededRandom } from '../core/index.ts';
import { createMemoryAuditStore } from '../store/memory/audit-store.ts';
import { AuditLog, GENESIS_HASH, canonicalJson, verifyChain, type AuditInput } from './index.ts';

const input = (i: number): AuditInput => ({
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

async function logOf(count: number) {
  const clock = new ManualClock(Date.UTC(2026, 11, 1));
  const store = createMemoryAuditStore();
  const log = new AuditLog({ store, clock, ids: createIdGenerator(clock, new SeededRandom(1)) });
  await Promise.all(Array.from({ length: count }, (_, i) => log.append(input(i))));
  return { log, store };
}

test('canonical JSON sorts keys at every level and drops undefined fields', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: undefined } }), '{"a":{"d":[1,{"e":3,"f":2}]},"b":1}');
});

test('concurrent appends form one unbroken chain from the genesis hash', async () => {
  const { log, store } = await logOf(25);
  assert.deepEqual(
    store.rows.map((e) => e.seq),
    Array.from({ length: 25 }, (_, i) => i + 1),
  );
  assert.equal(store.rows[0]!.prevHash, GENESIS_HASH);
  assert.deepEqual(await log.verify(), { ok: true, entries: 25, lastHash: store.rows[24]!.hash });
});

test('a changed field, a removed entry or a swapped pair breaks the chain at that entry', async () => {
  const { store } = await logOf(6);
  const rows = store.rows;
  const changed = rows.map((e) => (e.seq === 3 ? { ...e, after: { amount: 1e15 } } : e));
  assert.deepEqual(pick(verifyChain(changed)), { ok: false, brokenAt: 3 });
  const actor = rows.map((e) => (e.seq === 4 ? { ...e, actor: 'someone-else' } : e));
  assert.deepEqual(pick(verifyChain(actor)), { ok: false, brokenAt: 4 });
  assert.deepEqual(pick(verifyChain(rows.filter((e) => e.seq !== 2))), { ok: false, brokenAt: 3 });
  // Renumbered after a removal: the link to the previous hash is what breaks.
  const renumbered = rows.filter((e) => e.seq !== 2).map((e, i) => ({ ...e, seq: i + 1 }));
  assert.equal(verifyChain(renumbered).ok, false);
  const swapped = [rows[0]!, rows[2]!, rows[1]!, ...rows.slice(3)];
  assert.equal(verifyChain(swapped).ok, false);
});

const pick = (r: ReturnType<typeof verifyChain>) => (r.ok ? { ok: true } : { ok: false, brokenAt: r.brokenAt });
