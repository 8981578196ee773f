/**
 * Property test (TigerBeetle-auditor style): random interleavings of reserve / extend / settle / void /
 * expiry sweeps / renewals / top-ups / grants / clock jumps with many requests in flight, against a small
 * reference model. After EVERY step: no bucket counter is negative, consumed + held + forfeited <= amount - floor
 * (no overspend, ever: the bound is zero, not one slice), counters equal the ledger fold, held equals the open
 * reservations' allocations, CDR charges equal ledger debits, member usage stays within the cap while the
 * gateway honours its grants. Settle replays and retried request ids must change nothing. Issue 12 adds: soft first
 * asks (a share of a small balance), request ids a client chose colliding with another key's (never a shared hold),
 * upstreams that over-deliver (usage past the grant and the input estimate: charged to what can pay, the rest is
 * leakCoins, never an overspend) and revocations (a stream stopped at its next extension, settled with what it delivered).
 * Runs against the memory store, SQLite (:memory:) and PostgreSQL (its own schema, fewer runs: every step is
 * round trips to a server).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { openSqliteChargingStore } from '../store/sqlite/charging-store.ts';
import { openPostgresChargingStore } from '../store/postgres/charging-store.ts';
import { afterReady, openTestDb, truncateAll } from '../store/postgres/test-support.ts';
import type { ChargingStore } from './store.ts';
import type { UsageRecord } from './types.ts';
import { auditAccount } from './audit.ts';
import { rateUsage } from './rate.ts';
import { qCeil } from './rational.ts';
import { cycleIndexAt } from './cycle.ts';
import { harness, reserveInput, settleInput, usage, DAY_MS, T0, type Harness } from './test-fixtures.ts';

const MODELS = ['ref', 'third', 'pricey', 'coder'] as const;
const MEMBERS = [null, 'mem_1', 'mem_2'] as const;
const CAP = 900;
const TTL_MS = 60_000;
const GRACE_MS = 5_000;

type Op =
  | { t: 'reserve'; model: number; member: number; inEst: number; outMax: number; stream: boolean; soft: boolean }
  | { t: 'collide'; pick: number }
  | { t: 'revoke'; pick: number; outPct: number }
  | { t: 'burst'; n: number; inEst: number; outMax: number }
  | { t: 'extend'; pick: number; more: number }
  | { t: 'settle'; pick: number; inPct: number; outPct: number; cachedPct: number; misbehave: boolean }
  | { t: 'void'; pick: number }
  | { t: 'replay'; pick: number }
  | { t: 'retry'; pick: number }
  | { t: 'topup'; amount: number }
  | { t: 'grant'; amount: number; days: number | null; priority: number }
  | { t: 'advance'; ms: number }
  | { t: 'sweep' }
  | { t: 'renew' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('reserve' as const),
      model: fc.nat(3),
      member: fc.nat(2),
      inEst: fc.oneof(fc.constant(0), fc.nat(400)),
      outMax: fc.oneof(fc.constant(0), fc.constant(1), fc.nat(700)),
      stream: fc.boolean(),
      soft: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('collide' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('revoke' as const), pick: fc.nat(), outPct: fc.nat(100) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('burst' as const), n: fc.integer({ min: 2, max: 6 }), inEst: fc.nat(200), outMax: fc.nat(300) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('extend' as const), pick: fc.nat(), more: fc.integer({ min: 0, max: 300 }) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('settle' as const),
      pick: fc.nat(),
      inPct: fc.nat(100),
      outPct: fc.nat(100),
      cachedPct: fc.nat(100),
      misbehave: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('void' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('replay' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('retry' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('topup' as const), amount: fc.integer({ min: 1, max: 300 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('grant' as const),
      amount: fc.integer({ min: 0, max: 800 }),
      days: fc.option(fc.integer({ min: 1, max: 40 })),
      priority: fc.nat(100),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('advance' as const),
      ms: fc.oneof(fc.nat(30_000), fc.nat(120_000), fc.nat(3 * DAY_MS), fc.integer({ min: 20 * DAY_MS, max: 70 * DAY_MS })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('sweep' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('renew' as const) }) },
);

const setupArb = fc.record({
  overage: fc.constantFrom('block' as const, 'wallet' as const, 'postpaid' as const),
  plan: fc.integer({ min: 0, max: 3000 }),
  rollover: fc.boolean(),
  trial: fc.integer({ min: 0, max: 500 }),
  wallet: fc.nat(200),
  requests: fc.nat(5),
});

type Setup = typeof setupArb extends fc.Arbitrary<infer S> ? S : never;

interface Req {
  id: string;
  reservationId: string;
  state: 'open' | 'settled' | 'voided' | 'expired';
  member: string | null;
  model: string;
  inEst: number;
  outMax: number;
  granted: number;
  validUntilMs: number;
  record: UsageRecord | null;
}

class Model {
  readonly reqs: Req[] = [];
  misbehaved = false;
  seq = 0;
  pick(n: number, f: (r: Req) => boolean): Req | undefined {
    const c = this.reqs.filter(f);
    return c.length === 0 ? undefined : c[n % c.length];
  }
}

async function snapshot(s: ChargingStore): Promise<string> {
  return JSON.stringify([await s.listBuckets('acct_1'), await s.listLedger('acct_1'), await s.listOpenReservations('acct_1')]);
}

async function checkInvariants(h: Harness, m: Model): Promise<void> {
  const report = await auditAccount(h.store, 'acct_1');
  assert.deepEqual(report.problems, []);
  // Member caps: used + held never passes the cap while every request honoured its grant.
  const rows = await h.store.runAccountOp({ accountId: 'acct_1', nowMs: h.clock.nowMs(), memberId: 'mem_1' }, (v) => ({
    mutation: null,
    result: v.memberUsage,
  }));
  for (const r of rows) {
    assert.ok(r.used >= 0 && r.held >= 0);
    if (!m.misbehaved) assert.ok(r.used + r.held <= CAP, `member cap passed: ${r.used}+${r.held}`);
  }
  // Schedule cycles: at most one main bucket per (schedule, cycle index).
  const buckets = await h.store.listBuckets('acct_1');
  const keys = buckets.filter((b) => b.scheduleId !== null && !b.sourceRef.endsWith(':rollover')).map((b) => `${b.scheduleId}#${b.cycleIndex}`);
  assert.equal(new Set(keys).size, keys.length, 'a cycle bucket was created twice');
}

/** Coverage counters: the property must not pass vacuously (every outcome kind is exercised). */
const stats: Record<string, number> = {};
async function step(h: Harness, m: Model, op: Op): Promise<void> {
  const e = h.engine;
  stats[op.t] = (stats[op.t] ?? 0) + 1;
  switch (op.t) {
    case 'reserve':
    case 'burst': {
      const n = op.t === 'burst' ? op.n : 1;
      const inputs = Array.from({ length: n }, () => {
        const id = `req_${++m.seq}`;
        const model = op.t === 'reserve' ? MODELS[op.model]! : 'ref';
        const member = op.t === 'reserve' ? MEMBERS[op.member]! : 'mem_1';
        const stream = op.t === 'reserve' ? op.stream : true;
        // A soft first ask (the gateway's first stream slice, or no max_tokens): at most 64 and a share of the balance.
        const soft = op.t === 'burst' || op.soft;
        return {
          id,
          model,
          member,
          stream,
          soft,
          i: reserveInput(id, {
            model,
            memberId: member,
            tokensInputEstimate: op.inEst,
            tokensOutputMax: op.outMax,
            stream,
            ...(soft ? { tokensOutputAsk: 64 } : {}),
          }),
        };
      });
      const results = await Promise.all(inputs.map((x) => e.reserve(x.i)));
      results.forEach((r, k) => {
        const x = inputs[k]!;
        stats[r.ok ? 'reserve_ok' : `reserve_${r.code}`] = (stats[r.ok ? 'reserve_ok' : `reserve_${r.code}`] ?? 0) + 1;
        if (!r.ok) {
          assert.ok(['insufficient_quota', 'member_cap_reached'].includes(r.code), r.code);
          return;
        }
        assert.ok(r.value.tokensOutputGranted <= op.outMax && r.value.tokensOutputGranted >= Math.min(16, op.outMax));
        if (x.soft) assert.ok(r.value.tokensOutputGranted <= Math.max(1, Math.min(op.outMax, 64)), 'a soft ask never holds more than it asked');
        if (!x.stream && !x.soft) assert.equal(r.value.final || r.value.tokensOutputGranted === op.outMax, true);
        m.reqs.push({
          id: x.id,
          reservationId: r.value.reservationId,
          state: 'open',
          member: x.member,
          model: x.model,
          inEst: op.inEst,
          outMax: op.outMax,
          granted: r.value.tokensOutputGranted,
          validUntilMs: r.value.validUntilMs,
          record: null,
        });
      });
      return;
    }
    case 'extend': {
      const q = m.pick(op.pick, (r) => r.state === 'open');
      if (q === undefined) return;
      const r = await e.extend({ reservationId: q.reservationId, tokensOutputMore: op.more });
      if (h.clock.nowMs() > q.validUntilMs) {
        assert.equal(!r.ok && r.code, 'reservation_not_open');
        return;
      }
      assert.ok(r.ok);
      assert.ok(r.value.tokensOutputGranted >= q.granted && r.value.tokensOutputGranted <= Math.min(q.outMax, q.granted + op.more));
      q.granted = r.value.tokensOutputGranted;
      q.validUntilMs = r.value.validUntilMs;
      return;
    }
    case 'settle': {
      const q = m.pick(op.pick, (r) => r.state !== 'settled');
      if (q === undefined) return;
      const inTok = op.misbehave ? q.inEst + 50 + op.inPct * 3 : Math.floor((q.inEst * op.inPct) / 100);
      const outTok = op.misbehave ? q.granted + op.outPct * 5 + 1 : Math.floor((q.granted * op.outPct) / 100);
      const u = usage(inTok, outTok, { tokensCachedInput: Math.floor((inTok * op.cachedPct) / 100) });
      if (op.misbehave) m.misbehaved = true;
      const wasOpen = q.state === 'open';
      const rec = await e.settle(settleInput(q.reservationId, q.id, u));
      const rate = h.rates.current.models[q.model]!;
      const cost = rateUsage(rate, u, 100);
      const byUnit = (unit: string) => rec.charges.filter((c) => c.unit === unit).reduce((s, c) => s + c.amount, 0);
      // Never charged more than the actual cost, in any unit.
      assert.ok(byUnit('tokens') <= qCeil(cost.coins));
      if (cost.moneyMinor !== null) assert.ok(byUnit('money') <= qCeil(cost.moneyMinor));
      assert.ok(byUnit('requests') <= (cost.requests ?? 0));
      // A request that honoured its grant and still held it is charged in full: nothing leaks.
      if (wasOpen && !op.misbehave) assert.equal(rec.leakCoins, 0, `leak on a well-behaved request ${q.id}`);
      q.state = 'settled';
      q.record = rec;
      stats.settled_charges = (stats.settled_charges ?? 0) + rec.charges.length;
      stats.leak = (stats.leak ?? 0) + (rec.leakCoins > 0 ? 1 : 0);
      return;
    }
    case 'collide': {
      // Another key sends a request id this account already used (a client-chosen id reaching charging):
      // refused whatever the first one's state, and nothing changes; an id never shares a hold.
      const q = m.pick(op.pick, () => true);
      if (q === undefined) return;
      const before = await snapshot(h.store);
      const r = await e.reserve(
        reserveInput(q.id, { keyId: 'key_other', model: q.model, memberId: q.member, tokensInputEstimate: q.inEst, tokensOutputMax: q.outMax }),
      );
      assert.equal(!r.ok && r.code, 'duplicate_request');
      assert.equal(await snapshot(h.store), before, 'a colliding request id changed state');
      return;
    }
    case 'revoke': {
      // The key was revoked mid-stream: the gateway stops at the next extension and settles what was delivered
      // (never more than the grant). Nothing leaks, and the closed reservation grants nothing more.
      const q = m.pick(op.pick, (r) => r.state === 'open' && h.clock.nowMs() <= r.validUntilMs);
      if (q === undefined) return;
      const rec = await e.settle(settleInput(q.reservationId, q.id, usage(q.inEst, Math.floor((q.granted * op.outPct) / 100)), { status: 'truncated' }));
      assert.equal(rec.leakCoins, 0, 'a stream stopped within its grant leaks nothing');
      q.state = 'settled';
      q.record = rec;
      const more = await e.extend({ reservationId: q.reservationId, tokensOutputMore: 64 });
      assert.ok(!more.ok && ['reservation_not_open', 'reservation_not_found'].includes(more.code), 'a settled reservation grants nothing more');
      return;
    }
    case 'void': {
      const q = m.pick(op.pick, (r) => r.state === 'open');
      if (q === undefined) return;
      await e.void(q.reservationId);
      q.state = 'voided';
      assert.equal(await e.getUsageRecord(q.id), null);
      return;
    }
    case 'replay': {
      const q = m.pick(op.pick, (r) => r.state === 'settled');
      if (q === undefined) return;
      const before = await snapshot(h.store);
      const again = await e.settle(settleInput(q.reservationId, q.id, usage(99_999, 99_999)));
      assert.deepEqual(again, q.record);
      assert.equal(await snapshot(h.store), before, 'a replayed settle changed state');
      return;
    }
    case 'retry': {
      const q = m.pick(op.pick, () => true);
      if (q === undefined) return;
      const before = await snapshot(h.store);
      const r = await e.reserve(reserveInput(q.id, { model: q.model, memberId: q.member, tokensInputEstimate: q.inEst, tokensOutputMax: q.outMax }));
      if (q.state === 'open') assert.equal(r.ok && r.value.reservationId, q.reservationId);
      else {
        assert.equal(!r.ok && r.code, 'duplicate_request');
        assert.equal(await snapshot(h.store), before, 'a retried closed request id changed state');
      }
      return;
    }
    case 'topup':
      assert.ok((await e.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: op.amount, sourceRef: `pay_${++m.seq}` })).ok);
      return;
    case 'grant': {
      const now = h.clock.nowMs();
      const g = await e.grantBucket({
        accountId: 'acct_1',
        unit: 'tokens',
        amount: op.amount,
        effectiveAtMs: now,
        expiresAtMs: op.days === null ? null : now + op.days * DAY_MS,
        priority: op.priority,
        kind: 'addon',
        sourceRef: `g_${++m.seq}`,
      });
      assert.ok(g.ok);
      return;
    }
    case 'advance':
      h.clock.advance(op.ms);
      return;
    case 'sweep': {
      const now = h.clock.nowMs();
      const due = m.reqs.filter((r) => r.state === 'open' && r.validUntilMs + GRACE_MS < now);
      assert.equal(await e.sweepExpired(), due.length);
      for (const r of due) r.state = 'expired';
      for (const r of await h.store.listOpenReservations('acct_1')) assert.ok(r.validUntilMs + GRACE_MS >= now, 'a hold outlived its limit after a sweep');
      return;
    }
    case 'renew': {
      await e.renewDue();
      const now = h.clock.nowMs();
      const main = (await h.store.listBuckets('acct_1')).filter((b) => b.scheduleId !== null && !b.sourceRef.endsWith(':rollover') && b.unit === 'tokens');
      const expected = cycleIndexAt(T0, 'month', now) + 1;
      assert.deepEqual(
        main.map((b) => b.cycleIndex).sort((a, b) => a! - b!),
        Array.from({ length: expected }, (_, i) => i),
        'every cycle exactly once',
      );
      return;
    }
  }
}

async function runScenario(open: () => ChargingStore, setup: Setup, ops: Op[]): Promise<void> {
  const h = harness(open(), { reservationTtlMs: TTL_MS, reservationGraceMs: GRACE_MS, sliceTokens: 128, tokensOutputMinGrant: 16 });
  const e = h.engine;
  await e.createAllowanceSchedule({
    accountId: 'acct_1',
    unit: 'tokens',
    amountPerCycle: setup.plan,
    anchorMs: T0,
    cycle: 'month',
    sourceRef: 'plan',
    rollover: setup.rollover,
  });
  await e.createAllowanceSchedule({ accountId: 'acct_1', unit: 'requests', amountPerCycle: setup.requests, anchorMs: T0, cycle: 'month', sourceRef: 'coding' });
  if (setup.trial > 0)
    await e.grantBucket({
      accountId: 'acct_1',
      unit: 'tokens',
      amount: setup.trial,
      effectiveAtMs: T0,
      expiresAtMs: T0 + 10 * DAY_MS,
      kind: 'trial',
      sourceRef: 'trial',
    });
  if (setup.wallet > 0) await e.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: setup.wallet, sourceRef: 'pay_0' });
  await e.setAccountPolicy('acct_1', { overage: setup.overage, creditLimitMinor: 50, currency: 'CNY' });
  await e.setMemberCap('acct_1', 'mem_1', { tokensPerCycle: CAP });
  const m = new Model();
  for (const op of ops) {
    try {
      await step(h, m, op);
      await checkInvariants(h, m);
    } catch (e) {
      if (process.env.DEBUG_PROP) console.error('FAILED AT', JSON.stringify(op), (e as Error).message);
      throw e;
    }
  }
  // Quiesce: settle or void everything in flight; afterwards nothing is held anywhere.
  for (const r of m.reqs) if (r.state === 'open') await e.void(r.reservationId);
  assert.equal(
    (await h.store.listBuckets('acct_1')).reduce((s, b) => s + b.held, 0),
    0,
  );
  await checkInvariants(h, m);
}

const stores: [string, () => ChargingStore, number][] = [
  ['memory', () => openMemoryChargingStore(), 60],
  ['sqlite', () => openSqliteChargingStore(new Database(':memory:')), 30],
];
const pg = await openTestDb();
after(() => pg.drop());
stores.push(['postgres', () => afterReady(truncateAll(pg.db), openPostgresChargingStore(pg.db)), 30]);

describe('charging invariants under random interleavings', () => {
  for (const [name, open, numRuns] of stores) {
    test(`no overspend, conservation, idempotency and cycle invariants hold after every step (${name})`, async () => {
      for (const key of Object.keys(stats)) delete stats[key];
      await fc.assert(
        fc.asyncProperty(setupArb, fc.array(opArb, { minLength: 30, maxLength: 100 }), (setup, ops) => runScenario(open, setup, ops)),
        { numRuns, seed: 20260101, endOnFailure: true },
      );
      for (const key of [
        'reserve_ok',
        'reserve_insufficient_quota',
        'reserve_member_cap_reached',
        'settled_charges',
        'extend',
        'void',
        'replay',
        'retry',
        'sweep',
        'renew',
        'collide',
        'revoke',
        'leak',
      ]) {
        assert.ok((stats[key] ?? 0) > 0, `the run never exercised ${key}`);
      }
    });
  }
});
