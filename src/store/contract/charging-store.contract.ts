/**
 * The ChargingStore contract: every implementation (memory, SQLite, later PostgreSQL/Redis) runs this suite.
 * It checks the port's own promises (atomic apply with backstops, what a view contains, idempotent creations,
 * the outbox), not charging policy, which the engine's tests cover.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  emptyMutation,
  type AccountMutation,
  type Bucket,
  type ChargingStore,
  type LedgerEntry,
  type Reservation,
  type UsageRecord,
} from '../../charging/index.ts';

const T = Date.UTC(2026, 0, 1);

export function bucketFixture(over: Partial<Bucket> = {}): Bucket {
  return {
    id: 'bkt_a',
    accountId: 'acct_1',
    memberId: null,
    unit: 'tokens',
    currency: null,
    kind: 'addon',
    amount: 1000,
    consumed: 0,
    held: 0,
    forfeited: 0,
    floor: 0,
    effectiveAtMs: T,
    expiresAtMs: null,
    priority: 30,
    models: null,
    rollover: false,
    sourceRef: 'ref_a',
    scheduleId: null,
    cycleIndex: null,
    createdAtMs: T,
    ...over,
  };
}

function grantEntry(b: Bucket): LedgerEntry {
  return {
    id: `grant:${b.sourceRef}:${b.id}`,
    accountId: b.accountId,
    op: 'grant',
    debit: 'house:issuance',
    credit: `bucket:${b.id}`,
    unit: b.unit,
    currency: b.currency,
    amount: b.amount,
    requestId: null,
    atMs: T,
  };
}

function reservationFixture(over: Partial<Reservation> = {}): Reservation {
  return {
    id: 'rsv_req_1',
    requestId: 'req_1',
    accountId: 'acct_1',
    memberId: null,
    keyId: 'key_1',
    model: 'm',
    stream: false,
    state: 'open',
    rateVersion: 'v1',
    rate: { coinsPerTokenInput: { num: 1, den: 1 }, coinsPerTokenOutput: { num: 1, den: 1 }, coinsPerTokenCachedInput: { num: 1, den: 1 } },
    currency: 'CNY',
    minorUnitsPerMajor: 100,
    tokensInputEstimate: 10,
    tokensOutputMax: 10,
    tokensOutputGranted: 10,
    allocations: [{ bucketId: 'bkt_a', unit: 'tokens', amount: 20 }],
    capHeld: 0,
    capCycleIndex: null,
    extensions: 0,
    createdAtMs: T,
    validUntilMs: T + 60_000,
    closedAtMs: null,
    ...over,
  };
}

function usageFixture(over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId: 'req_1',
    reservationId: 'rsv_req_1',
    accountId: 'acct_1',
    memberId: null,
    keyId: 'key_1',
    model: 'm',
    upstreamModel: 'm',
    provider: 'p',
    deploymentId: 'd',
    region: 'r',
    usage: { tokensInput: 10, tokensOutput: 10, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 },
    usageEstimated: false,
    status: 'ok',
    rateVersion: 'v1',
    costCoins: 20,
    costMinor: null,
    costRequests: null,
    charges: [{ bucketId: 'bkt_a', kind: 'addon', unit: 'tokens', currency: null, amount: 20 }],
    leakCoins: 0,
    vendorCostMicros: null,
    latencyMs: 5,
    ttftMs: null,
    startedAtMs: T,
    settledAtMs: T + 10,
    ...over,
  };
}

const mut = (over: Partial<AccountMutation>): AccountMutation => ({ ...emptyMutation(), ...over });

export function chargingStoreContract(name: string, open: () => ChargingStore): void {
  describe(`ChargingStore contract: ${name}`, () => {
    test('createBucket is idempotent by (account, sourceRef) and writes its ledger once', async () => {
      const s = open();
      const b = bucketFixture();
      assert.equal((await s.createBucket(b, [grantEntry(b)])).created, true);
      const again = await s.createBucket({ ...b, id: 'bkt_other' }, [grantEntry({ ...b, id: 'bkt_other' })]);
      assert.equal(again.created, false);
      assert.equal(again.bucket.id, 'bkt_a');
      assert.equal((await s.listBuckets('acct_1')).length, 1);
      assert.equal((await s.listLedger('acct_1')).length, 1);
      assert.equal((await s.createBucket({ ...b, id: 'bkt_2', accountId: 'acct_2' }, [])).created, true, 'sourceRef is per account');
    });

    test('a mutation that would overspend a bucket is rejected whole: nothing of it is written', async () => {
      const s = open();
      const b = bucketFixture();
      await s.createBucket(b, [grantEntry(b)]);
      await assert.rejects(
        s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
          result: null,
          mutation: mut({
            reservationUpsert: reservationFixture(),
            ledger: [{ ...grantEntry(b), id: 'x1', op: 'consume', debit: 'bucket:bkt_a', credit: 'house:revenue', amount: 5 }],
            bucketDeltas: [
              { bucketId: 'bkt_a', held: 600 },
              { bucketId: 'bkt_a', consumed: 500 },
            ],
          }),
        })),
      );
      const [after] = await s.listBuckets('acct_1');
      assert.deepEqual([after!.held, after!.consumed], [0, 0]);
      assert.equal(await s.getReservation('rsv_req_1'), null);
      assert.equal((await s.listLedger('acct_1')).length, 1);
    });

    test('negative counters and a floor above zero are rejected', async () => {
      const s = open();
      await s.createBucket(bucketFixture(), []);
      for (const delta of [{ held: -1 }, { consumed: -1 }, { forfeited: -1 }, { floor: 1 }]) {
        await assert.rejects(
          s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({ result: null, mutation: mut({ bucketDeltas: [{ bucketId: 'bkt_a', ...delta }] }) })),
        );
      }
    });

    test("a delta on another account's bucket is rejected", async () => {
      const s = open();
      await s.createBucket(bucketFixture({ accountId: 'acct_2' }), []);
      await assert.rejects(
        s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({ result: null, mutation: mut({ bucketDeltas: [{ bucketId: 'bkt_a', held: 1 }] }) })),
      );
    });

    test('the view holds live buckets; expired ones only when a reservation holds them or leftovers are asked for', async () => {
      const s = open();
      await s.createBucket(bucketFixture({ id: 'bkt_live', sourceRef: 'l' }), []);
      await s.createBucket(bucketFixture({ id: 'bkt_old', sourceRef: 'o', expiresAtMs: T + 10 }), []);
      await s.createBucket(bucketFixture({ id: 'bkt_future', sourceRef: 'f', effectiveAtMs: T + 100, expiresAtMs: T + 200 }), []);
      const ids = async (scope: Parameters<ChargingStore['runAccountOp']>[0]): Promise<string[]> =>
        await s.runAccountOp(scope, (v) => ({ mutation: null, result: v.buckets.map((b) => b.id).sort() }));
      assert.deepEqual(await ids({ accountId: 'acct_1', nowMs: T + 50 }), ['bkt_future', 'bkt_live']);
      assert.deepEqual(await ids({ accountId: 'acct_1', nowMs: T + 50, includeExpiredLeftovers: true }), ['bkt_future', 'bkt_live', 'bkt_old']);
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({
          reservationUpsert: reservationFixture({ allocations: [{ bucketId: 'bkt_old', unit: 'tokens', amount: 5 }] }),
          bucketDeltas: [{ bucketId: 'bkt_old', held: 5 }],
        }),
      }));
      assert.deepEqual(await ids({ accountId: null, nowMs: T + 50, reservationId: 'rsv_req_1' }), ['bkt_future', 'bkt_live', 'bkt_old']);
    });

    test('a view by reservation id resolves the account inside the step; unknown ids give an empty view', async () => {
      const s = open();
      await s.createBucket(bucketFixture(), []);
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ reservationUpsert: reservationFixture(), bucketDeltas: [{ bucketId: 'bkt_a', held: 20 }] }),
      }));
      const v = await s.runAccountOp({ accountId: null, nowMs: T, reservationId: 'rsv_req_1' }, (view) => ({ mutation: null, result: view }));
      assert.equal(v.accountId, 'acct_1');
      assert.equal(v.reservation?.requestId, 'req_1');
      const other = await s.runAccountOp({ accountId: 'acct_2', nowMs: T, reservationId: 'rsv_req_1' }, (view) => ({ mutation: null, result: view }));
      assert.equal(other.reservation?.accountId, 'acct_1', 'the caller sees a reservation of another account and must refuse it');
      const empty = await s.runAccountOp({ accountId: null, nowMs: T, reservationId: 'rsv_nope' }, (view) => ({ mutation: null, result: view }));
      assert.equal(empty.accountId, '');
      assert.equal(empty.reservation, null);
      assert.deepEqual(empty.buckets, []);
    });

    test('a usage record is unique by request id; a second insert rolls back its whole step', async () => {
      const s = open();
      await s.createBucket(bucketFixture(), []);
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ usageRecord: usageFixture(), bucketDeltas: [{ bucketId: 'bkt_a', consumed: 20 }] }),
      }));
      await assert.rejects(
        s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
          result: null,
          mutation: mut({ usageRecord: usageFixture(), bucketDeltas: [{ bucketId: 'bkt_a', consumed: 20 }] }),
        })),
      );
      assert.equal((await s.listBuckets('acct_1'))[0]!.consumed, 20);
      assert.deepEqual(await s.getUsageRecord('req_1'), usageFixture());
      assert.equal((await s.listUsage('acct_1', T, T + 11)).length, 1);
      assert.equal((await s.listUsage('acct_1', T + 11, T + 20)).length, 0);
    });

    test('a usage record keeps its serving note (route, cache, compression, savings) and a plain one has none', async () => {
      const s = open();
      await s.createBucket(bucketFixture(), []);
      const serving = { route: 'auto:cheap -> m (cheapest)', cache: 'hit' as const, compressedTokens: 120, savings: { cache: 4200, compression: 35 } };
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ usageRecord: usageFixture({ serving }), bucketDeltas: [{ bucketId: 'bkt_a', consumed: 20 }] }),
      }));
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ usageRecord: usageFixture({ requestId: 'req_2', reservationId: 'rsv_req_2' }), bucketDeltas: [{ bucketId: 'bkt_a', consumed: 20 }] }),
      }));
      assert.deepEqual((await s.getUsageRecord('req_1'))?.serving, serving);
      const plain = await s.getUsageRecord('req_2');
      assert.ok(plain !== null && !('serving' in plain), 'a plain usage record has no serving note');
    });

    test('a duplicate ledger id rolls back the step', async () => {
      const s = open();
      const b = bucketFixture();
      await s.createBucket(b, [grantEntry(b)]);
      await assert.rejects(
        s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
          result: null,
          mutation: mut({ ledger: [grantEntry(b)], bucketDeltas: [{ bucketId: 'bkt_a', amount: 1000 }] }),
        })),
      );
      assert.equal((await s.listBuckets('acct_1'))[0]!.amount, 1000);
    });

    test('reservation upserts keep one row per id and request id; open ones are listed and found when expired', async () => {
      const s = open();
      await s.createBucket(bucketFixture(), []);
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ reservationUpsert: reservationFixture(), bucketDeltas: [{ bucketId: 'bkt_a', held: 20 }] }),
      }));
      assert.equal((await s.listOpenReservations('acct_1')).length, 1);
      assert.deepEqual(await s.findExpiredReservations(T + 60_000, 10), []);
      assert.deepEqual(await s.findExpiredReservations(T + 60_001, 10), [{ reservationId: 'rsv_req_1', accountId: 'acct_1' }]);
      await assert.rejects(
        s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({ result: null, mutation: mut({ reservationUpsert: reservationFixture({ id: 'rsv_2' }) }) })),
        Error,
        'a reservation id not derived from its request id is refused',
      );
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ reservationUpsert: reservationFixture({ state: 'voided', closedAtMs: T }), bucketDeltas: [{ bucketId: 'bkt_a', held: -20 }] }),
      }));
      assert.equal((await s.listOpenReservations('acct_1')).length, 0);
      assert.equal((await s.getReservation('rsv_req_1'))?.state, 'voided');
    });

    test('topUpWallet creates one wallet per account and currency and is idempotent by sourceRef', async () => {
      const s = open();
      const wallet = bucketFixture({ id: 'bkt_w', unit: 'money', currency: 'CNY', kind: 'wallet', amount: 0, sourceRef: 'wallet:CNY', priority: 80 });
      const first = await s.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 500, sourceRef: 'pay_1', atMs: T, walletIfNew: wallet });
      assert.deepEqual([first.applied, first.bucket.amount], [true, 500]);
      const second = await s.topUpWallet({
        accountId: 'acct_1',
        currency: 'CNY',
        amountMinor: 300,
        sourceRef: 'pay_2',
        atMs: T,
        walletIfNew: { ...wallet, id: 'bkt_w2' },
      });
      assert.deepEqual([second.applied, second.bucket.id, second.bucket.amount], [true, 'bkt_w', 800]);
      const replay = await s.topUpWallet({ accountId: 'acct_1', currency: 'CNY', amountMinor: 300, sourceRef: 'pay_2', atMs: T, walletIfNew: wallet });
      assert.deepEqual([replay.applied, replay.bucket.amount], [false, 800]);
      assert.equal(
        (await s.listLedger('acct_1')).reduce((n, e) => n + e.amount, 0),
        800,
      );
    });

    test('schedules are idempotent by sourceRef, renewals move their cursor, ending only moves earlier', async () => {
      const s = open();
      const sc = {
        id: 'sch_1',
        accountId: 'acct_1',
        memberId: null,
        unit: 'tokens' as const,
        currency: null,
        kind: 'plan_allowance' as const,
        amountPerCycle: 100,
        anchorMs: T,
        cycle: 'month' as const,
        priority: 20,
        models: null,
        rollover: false,
        sourceRef: 'sub_1',
        endsAtMs: null,
        nextCycleIndex: 0,
        nextCycleStartMs: T,
        createdAtMs: T,
      };
      assert.equal((await s.createSchedule(sc)).created, true);
      assert.equal((await s.createSchedule({ ...sc, id: 'sch_2' })).schedule.id, 'sch_1');
      assert.deepEqual(await s.findAccountsWithDueSchedules(T, 10), ['acct_1']);
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ schedulesUpdate: [{ scheduleId: 'sch_1', nextCycleIndex: 1, nextCycleStartMs: T + 99 }] }),
      }));
      assert.deepEqual(await s.findAccountsWithDueSchedules(T, 10), []);
      assert.equal((await s.endSchedule('sch_1', T + 500))?.endsAtMs, T + 500);
      assert.equal((await s.endSchedule('sch_1', T + 900))?.endsAtMs, T + 500);
      assert.equal(await s.endSchedule('sch_x', T), null);
      const view = await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, (v) => ({ mutation: null, result: v.schedules }));
      assert.equal(view[0]?.nextCycleIndex, 1);
    });

    test('member usage rows accumulate per cycle and never go negative; policy and cap upserts are read back', async () => {
      const s = open();
      const run = (m: Partial<AccountMutation>) =>
        s.runAccountOp({ accountId: 'acct_1', nowMs: T, memberId: 'mem_1' }, (v) => ({ mutation: mut(m), result: v }));
      await run({
        memberUsageDeltas: [{ memberId: 'mem_1', cycleIndex: 3, used: 10, held: 5 }],
        policyUpsert: { accountId: 'acct_1', overage: 'postpaid', creditLimitMinor: 100, currency: 'CNY' },
        memberCapUpsert: { accountId: 'acct_1', memberId: 'mem_1', tokensPerCycle: 50, cycle: 'month', anchorMs: 0 },
      });
      await run({
        memberUsageDeltas: [
          { memberId: 'mem_1', cycleIndex: 3, used: 1, held: -5 },
          { memberId: 'mem_1', cycleIndex: 4, used: 2, held: 0 },
        ],
      });
      await assert.rejects(run({ memberUsageDeltas: [{ memberId: 'mem_1', cycleIndex: 4, used: -3, held: 0 }] }));
      const v = await run({});
      assert.deepEqual(v.memberUsage.map((r) => [r.cycleIndex, r.used, r.held]).sort(), [
        [3, 11, 0],
        [4, 2, 0],
      ]);
      assert.equal(v.policy?.overage, 'postpaid');
      assert.equal(v.memberCap?.tokensPerCycle, 50);
    });

    test('events: pending ones are claimed with a lease, delivered or given up, and listed per account in order', async () => {
      const s = open();
      const ev = (id: string, atMs: number) => ({ id, accountId: 'acct_1', type: 'threshold_50' as const, subjectId: 'bkt_a', data: { percent: 50 }, atMs });
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T }, () => ({
        result: null,
        mutation: mut({ events: [ev('evt_1', T), ev('evt_2', T), ev('evt_3', T + 5)] }),
      }));
      const claimed = await s.claimPendingEvents(T, 10, 1000);
      assert.deepEqual(
        claimed.map((e) => e.id),
        ['evt_1', 'evt_2'],
      );
      assert.deepEqual(await s.claimPendingEvents(T + 10, 10, 1000).then((x) => x.map((e) => e.id)), ['evt_3'], 'leased events are not claimed twice');
      await s.markEventDelivered('evt_1', T + 1);
      await s.markEventAttemptFailed('evt_2', 1, T + 2000);
      await s.markEventAttemptFailed('evt_3', 5, null);
      assert.deepEqual(await s.claimPendingEvents(T + 2000, 10, 1000).then((x) => x.map((e) => [e.id, e.attempts])), [['evt_2', 1]]);
      const all = await s.listEvents('acct_1', null, 10);
      assert.deepEqual(
        all.map((e) => [e.id, e.deliveryState]),
        [
          ['evt_1', 'delivered'],
          ['evt_2', 'pending'],
          ['evt_3', 'failed'],
        ],
      );
      assert.deepEqual(
        (await s.listEvents('acct_1', 'evt_1', 1)).map((e) => e.id),
        ['evt_2'],
      );
      assert.deepEqual(all[0]!.data, { percent: 50 });
    });

    test('accounts with a bucket expired in the window are found until the leftover is forfeited', async () => {
      const s = open();
      await s.createBucket(bucketFixture({ expiresAtMs: T + 10 }), []);
      assert.deepEqual(await s.findAccountsWithExpiredLeftovers(0, T + 9, 10), []);
      assert.deepEqual(await s.findAccountsWithExpiredLeftovers(0, T + 10, 10), ['acct_1']);
      assert.deepEqual(await s.findAccountsWithExpiredLeftovers(T + 10, T + 50, 10), [], 'window start is exclusive');
      await s.runAccountOp({ accountId: 'acct_1', nowMs: T + 10 }, () => ({
        result: null,
        mutation: mut({ bucketDeltas: [{ bucketId: 'bkt_a', forfeited: 1000 }] }),
      }));
      assert.deepEqual(await s.findAccountsWithExpiredLeftovers(0, T + 10, 10), []);
    });
  });
}
