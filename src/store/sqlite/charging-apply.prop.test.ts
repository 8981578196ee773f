/**
 * The SQLite store's bound checks (charging-apply.ts checkBounds: a one-delta fast path, sums per bucket otherwise,
 * member holds in memory) against a model of what the store does: a step is refused when, after adding up its
 * deltas per bucket, a touched bucket is missing or its effective counters (row + memory holds) leave their bounds
 * (counters >= 0, floor <= 0, consumed + held + forfeited <= amount - floor), or a member's held amount would go
 * negative; and, as the second backstop, when a row written delta by delta breaks the table's CHECK constraints.
 * Otherwise all of it applies. Random steps: one or several deltas (also several on one bucket), buckets created in
 * the same step, unknown buckets, holds kept in memory and released.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { emptyMutation, type AccountMutation, type BucketDelta, type ChargingStore, type Reservation } from '../../charging/index.ts';
import { openSqliteChargingStore } from './charging-store.ts';
import { bucketFixture } from '../contract/charging-store.contract.ts';

const T = Date.UTC(2026, 0, 1);
const BUCKETS = ['bkt_a', 'bkt_b', 'bkt_c', 'bkt_missing'] as const;

/** Mostly moves that fit, some that do not (a negative counter, an overspend, a floor above zero). */
const counter = (min: number, max: number) => fc.option(fc.integer({ min, max }), { nil: undefined, freq: 2 });
const deltaArb = (ids: fc.Arbitrary<string>): fc.Arbitrary<BucketDelta> =>
  fc.record(
    {
      bucketId: ids,
      amount: counter(-5, 30),
      consumed: counter(-2, 20),
      held: counter(-3, 20),
      forfeited: counter(-2, 10),
      floor: counter(-10, 1),
    },
    { requiredKeys: ['bucketId'] },
  );

type Op =
  | { t: 'plain'; create: number | null; deltas: BucketDelta[] }
  | { t: 'hold'; held: { bucketId: string; held: number }[]; memberHeld: number }
  | { t: 'release'; pick: number; held: { bucketId: string; held: number }[]; memberHeld: number };

const heldArb = (min: number, max: number) =>
  fc.array(fc.record({ bucketId: fc.constantFrom(...BUCKETS), held: fc.integer({ min, max }) }), { minLength: 1, maxLength: 3 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('plain' as const),
      create: fc.option(fc.integer({ min: 0, max: 60 }), { nil: null }),
      deltas: fc.array(deltaArb(fc.constantFrom<string>(...BUCKETS, 'bkt_new')), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hold' as const), held: heldArb(-2, 25), memberHeld: fc.integer({ min: 0, max: 30 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('release' as const), pick: fc.nat(), held: heldArb(-25, 2), memberHeld: fc.integer({ min: -30, max: 0 }) }),
  },
);

function reservation(n: number, state: Reservation['state']): Reservation {
  return {
    id: `rsv_req_${n}`,
    requestId: `req_${n}`,
    accountId: 'acct_1',
    memberId: 'mem_1',
    keyId: 'key_1',
    model: 'm',
    stream: false,
    state,
    rateVersion: 'v1',
    rate: { coinsPerTokenInput: { num: 1, den: 1 }, coinsPerTokenOutput: { num: 1, den: 1 }, coinsPerTokenCachedInput: { num: 1, den: 1 } },
    currency: 'CNY',
    minorUnitsPerMajor: 100,
    tokensInputEstimate: 10,
    tokensOutputMax: 10,
    tokensOutputGranted: 10,
    allocations: [],
    capHeld: 0,
    capCycleIndex: 0,
    extensions: 0,
    createdAtMs: T,
    validUntilMs: T + 60_000,
    closedAtMs: state === 'open' ? null : T + 1,
  };
}

async function outcome(s: ChargingStore, m: AccountMutation): Promise<string> {
  try {
    await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({ mutation: m, result: null }));
    return 'ok';
  } catch {
    return 'refused';
  }
}

type Counters = [amount: number, consumed: number, held: number, forfeited: number, floor: number];

const inBounds = ([amount, consumed, held, forfeited, floor]: Counters): boolean =>
  amount >= 0 && consumed >= 0 && held >= 0 && forfeited >= 0 && floor <= 0 && consumed + held + forfeited <= amount - floor;

/** The buckets' rows and the holds kept in memory, per bucket; a member's held amount in memory. */
interface Model {
  rows: Map<string, Counters>;
  memoryHeld: Map<string, number>;
  memberHeld: number;
}

const effective = (m: Model, id: string): Counters | undefined => {
  const r = m.rows.get(id);
  return r === undefined ? undefined : [r[0], r[1], r[2] + (m.memoryHeld.get(id) ?? 0), r[3], r[4]];
};

/** What the store does with `m` (holds in memory when `inMemory`): 'ok' (and the model follows) or 'refused'. */
function modelApply(model: Model, m: AccountMutation, inMemory: boolean): string {
  // 1. The bounds on effective values, deltas summed per bucket.
  const sums = new Map<string, Counters>();
  for (const d of m.bucketDeltas) {
    const t = sums.get(d.bucketId) ?? [0, 0, 0, 0, 0];
    sums.set(d.bucketId, [t[0] + (d.amount ?? 0), t[1] + (d.consumed ?? 0), t[2] + (d.held ?? 0), t[3] + (d.forfeited ?? 0), t[4] + (d.floor ?? 0)]);
  }
  for (const [id, t] of sums) {
    const created = m.bucketsCreate.find((b) => b.id === id);
    const c: Counters | undefined =
      created === undefined ? effective(model, id) : [created.amount, created.consumed, created.held, created.forfeited, created.floor];
    if (c === undefined || !inBounds(c.map((v, k) => v + t[k]!) as Counters)) return 'refused';
  }
  let memberHeld = model.memberHeld;
  if (inMemory) {
    for (const d of m.memberUsageDeltas) if ((memberHeld += d.held) < 0) return 'refused';
  }
  // 2. The rows, one statement per created bucket and per delta, each under the CHECK constraints.
  const rows = new Map(model.rows);
  for (const b of m.bucketsCreate) {
    const row: Counters = [b.amount, b.consumed, inMemory ? 0 : b.held, b.forfeited, b.floor];
    if (rows.has(b.id) || !inBounds(row)) return 'refused';
    rows.set(b.id, row);
  }
  for (const d of m.bucketDeltas) {
    const t: Counters = [d.amount ?? 0, d.consumed ?? 0, inMemory ? 0 : (d.held ?? 0), d.forfeited ?? 0, d.floor ?? 0];
    if (t.every((v) => v === 0)) continue;
    const r = rows.get(d.bucketId)!;
    const next = r.map((v, k) => v + t[k]!) as Counters;
    if (!inBounds(next)) return 'refused';
    rows.set(d.bucketId, next);
  }
  model.rows = rows;
  if (inMemory) {
    for (const b of m.bucketsCreate) model.memoryHeld.set(b.id, (model.memoryHeld.get(b.id) ?? 0) + b.held);
    for (const d of m.bucketDeltas) model.memoryHeld.set(d.bucketId, (model.memoryHeld.get(d.bucketId) ?? 0) + (d.held ?? 0));
    model.memberHeld = memberHeld;
  }
  return 'ok';
}

test('SQLite refuses and applies exactly the steps the rule allows', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
      const s = openSqliteChargingStore(new Database(':memory:'));
      const model: Model = { rows: new Map(), memoryHeld: new Map(), memberHeld: 0 };
      for (const b of [
        bucketFixture({ id: 'bkt_a', sourceRef: 'a', amount: 100 }),
        bucketFixture({ id: 'bkt_b', sourceRef: 'b', amount: 50, floor: -20 }),
        bucketFixture({ id: 'bkt_c', sourceRef: 'c', amount: 10, consumed: 4 }),
      ]) {
        await s.createBucket(b, []);
        model.rows.set(b.id, [b.amount, b.consumed, b.held, b.forfeited, b.floor]);
      }
      let seq = 0;
      let created = 0;
      const open: number[] = [];
      for (const op of ops) {
        let m: AccountMutation;
        let heldOpen: number | null = null;
        let released: number | null = null;
        if (op.t === 'plain') {
          const newId = `bkt_new_${created}`;
          const bucketsCreate = op.create === null ? [] : [bucketFixture({ id: newId, sourceRef: `new_${created}`, amount: op.create })];
          if (op.create !== null) created++;
          m = { ...emptyMutation(), bucketsCreate, bucketDeltas: op.deltas.map((d) => (d.bucketId === 'bkt_new' ? { ...d, bucketId: newId } : d)) };
        } else if (op.t === 'hold') {
          heldOpen = ++seq;
          m = {
            ...emptyMutation(),
            reservationUpsert: reservation(heldOpen, 'open'),
            bucketDeltas: op.held,
            memberUsageDeltas: op.memberHeld === 0 ? [] : [{ memberId: 'mem_1', cycleIndex: 0, used: 0, held: op.memberHeld }],
          };
        } else {
          if (open.length === 0) continue;
          released = open[op.pick % open.length]!;
          m = {
            ...emptyMutation(),
            reservationUpsert: reservation(released, 'voided'),
            bucketDeltas: op.held,
            memberUsageDeltas: op.memberHeld === 0 ? [] : [{ memberId: 'mem_1', cycleIndex: 0, used: 0, held: op.memberHeld }],
          };
        }
        const want = modelApply(model, m, op.t !== 'plain');
        assert.equal(await outcome(s, m), want, `step ${JSON.stringify(op)}`);
        if (want === 'ok' && heldOpen !== null) open.push(heldOpen);
        if (want === 'ok' && released !== null) open.splice(open.indexOf(released), 1);
        const got = (await s.listBuckets('acct_1')).map((b) => [b.id, b.amount, b.consumed, b.held, b.forfeited, b.floor]);
        assert.deepEqual(got.sort(), [...model.rows.keys()].map((id) => [id, ...effective(model, id)!]).sort());
      }
    }),
    { numRuns: 200, seed: 20260205 },
  );
});
