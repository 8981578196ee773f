/** decideBillingOps: the pure decision of a billing plan's charging operations on one account's view. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBillingOps, type ChargingOp } from './billing-ops.ts';
import type { AccountView } from './store.ts';
import type { Bucket } from './types.ts';

const NOW = Date.UTC(2027, 2, 10);

function view(buckets: Bucket[] = []): AccountView {
  return { accountId: 'acct_1', nowMs: NOW, policy: null, buckets, schedules: [], memberCap: null, memberUsage: [], reservation: null, usageRecord: null };
}

function walletOf(amount: number, over: Partial<Bucket> = {}): Bucket {
  return {
    id: 'bkt_w',
    accountId: 'acct_1',
    memberId: null,
    unit: 'money',
    currency: 'CNY',
    kind: 'wallet',
    amount,
    consumed: 0,
    held: 0,
    forfeited: 0,
    floor: 0,
    effectiveAtMs: 0,
    expiresAtMs: null,
    priority: 100,
    models: null,
    rollover: false,
    sourceRef: 'wallet:CNY',
    scheduleId: null,
    cycleIndex: null,
    createdAtMs: 0,
    ...over,
  };
}

const topUp = (amountMinor: number): ChargingOp => ({ op: 'topUpWallet', currency: 'CNY', amountMinor, sourceRef: 'order:top', walletId: 'bkt_new' });
const debit = (amountMinor: number): ChargingOp => ({ op: 'debitWallet', currency: 'CNY', amountMinor, ref: 'order:o1' });

test('a top-up then a debit in one plan: the debit sees the top-up; one wallet is created with both ledger entries', () => {
  const d = decideBillingOps(view(), [topUp(500), debit(300)]);
  assert.equal(d.refused, null);
  // A bucket created by the plan is created with its moves already in it.
  assert.deepEqual(
    d.mutation!.bucketsCreate.map((b) => [b.id, b.kind, b.amount, b.consumed]),
    [['bkt_new', 'wallet', 500, 300]],
  );
  assert.deepEqual(d.mutation!.bucketDeltas, []);
  assert.deepEqual(
    d.mutation!.ledger.map((e) => [e.op, e.amount]),
    [
      ['topup', 500],
      ['consume', 300],
    ],
  );
});

test('a debit the wallet cannot pay (what requests hold counts) refuses the whole plan: no mutation at all', () => {
  const d = decideBillingOps(view([walletOf(1000, { held: 800 })]), [
    {
      op: 'grant',
      id: 'bkt_g',
      unit: 'tokens',
      currency: null,
      amount: 50,
      effectiveAtMs: NOW,
      expiresAtMs: NOW + 1,
      kind: 'addon',
      models: null,
      sourceRef: 'sub:s',
    },
    debit(300),
  ]);
  assert.match(d.refused ?? '', /holds 200, less than 300/);
  assert.equal(d.mutation, null);
  assert.deepEqual(d.schedulesCreate, []);
});

test('a forfeit takes the leftover as it is when the plan applies: requests that moved it meanwhile never refuse it', () => {
  const pack = walletOf(1000, { id: 'bkt_p', kind: 'addon', unit: 'tokens', currency: null, consumed: 100, sourceRef: 'sub:s:pack:o' });
  const quiet = decideBillingOps(view([pack]), [{ op: 'forfeit', bucketId: 'bkt_p', ref: 'refund:r', expect: 900 }]);
  assert.equal(quiet.refused, null);
  assert.deepEqual(
    quiet.mutation!.ledger.map((e) => [e.op, e.amount, e.credit]),
    [['forfeit', 900, 'house:breakage']],
  );
  const busy = decideBillingOps(view([{ ...pack, consumed: 150, held: 20 }]), [{ op: 'forfeit', bucketId: 'bkt_p', ref: 'refund:r', expect: 900 }]);
  assert.equal(busy.refused, null);
  assert.deepEqual(busy.mutation!.bucketDeltas, [{ bucketId: 'bkt_p', amount: 0, consumed: 0, held: 0, forfeited: 830, floor: 0 }], 'what is held stays held');
});

test('a postpaid policy opens the credit line at minus the limit; a schedule starts at the cycle running now', () => {
  const d = decideBillingOps(view(), [
    { op: 'setPolicy', overage: 'postpaid', creditLimitMinor: 20_000, currency: 'CNY', coinsPerMajor: null, lineId: 'bkt_line' },
    {
      op: 'createSchedule',
      id: 'sch_1',
      unit: 'tokens',
      currency: null,
      kind: 'plan_allowance',
      amountPerCycle: 1000,
      anchorMs: Date.UTC(2027, 0, 31),
      cycle: 'month',
      models: null,
      rollover: false,
      sourceRef: 'sub:s:basic:o',
      endsAtMs: null,
    },
    { op: 'endSchedule', scheduleId: 'sch_0', atMs: NOW },
  ]);
  assert.equal(d.refused, null);
  assert.deepEqual(d.mutation!.policyUpsert, { accountId: 'acct_1', overage: 'postpaid', creditLimitMinor: 20_000, currency: 'CNY' });
  assert.deepEqual(
    d.mutation!.bucketsCreate.map((b) => [b.id, b.kind, b.floor]),
    [['bkt_line', 'postpaid_line', -20_000]],
  );
  // Anchored Jan 31: Feb 28 (clamped) started cycle 1, Mar 31 will start cycle 2; now (Mar 10) is in cycle 1.
  assert.equal(d.schedulesCreate[0]!.nextCycleIndex, 1);
  assert.equal(d.schedulesCreate[0]!.nextCycleStartMs, Date.UTC(2027, 1, 28));
  assert.deepEqual(d.schedulesEnd, [{ scheduleId: 'sch_0', atMs: NOW }]);
});

test('the same view and operations always give the same decision (pure)', () => {
  const ops = [topUp(100), debit(100)];
  assert.deepEqual(decideBillingOps(view([walletOf(50)]), ops), decideBillingOps(view([walletOf(50)]), ops));
});
