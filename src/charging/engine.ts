/** createChargingEngine: the hot-path engine and the management API over one ChargingStore. */
import type { ChargingDeps, ChargingService } from './service.ts';
import { makeCtx } from './context.ts';
import { reserve } from './reserve.ts';
import { extend } from './extend.ts';
import { settle } from './settle.ts';
import { voidReservation } from './void.ts';
import { renewDue, renewDueReport, sweepExpired } from './sweep.ts';
import {
  accountState,
  createAllowanceSchedule,
  debitWallet,
  endSchedule,
  forfeitBucket,
  grantBucket,
  restoreCreditLine,
  setAccountPolicy,
  setMemberCap,
  topUpWallet,
} from './management.ts';
import { balances, summarizeUsage } from './queries.ts';

export function createChargingEngine(deps: ChargingDeps): ChargingService {
  const ctx = makeCtx(deps);
  const { store, clock } = deps;
  return {
    reserve: (i) => reserve(ctx, i),
    extend: (i) => extend(ctx, i),
    settle: (i) => settle(ctx, i),
    void: (id) => voidReservation(ctx, id),
    sweepExpired: () => sweepExpired(ctx),
    renewDue: () => renewDue(ctx),
    renewDueReport: () => renewDueReport(ctx),
    grantBucket: (i) => grantBucket(ctx, i),
    topUpWallet: (i) => topUpWallet(ctx, i),
    createAllowanceSchedule: (i) => createAllowanceSchedule(ctx, i),
    endSchedule: (id, atMs) => endSchedule(ctx, id, atMs),
    setAccountPolicy: (id, p) => setAccountPolicy(ctx, id, p),
    setMemberCap: (a, m, c) => setMemberCap(ctx, a, m, c),
    forfeitBucket: (a, b, ref) => forfeitBucket(ctx, a, b, ref),
    debitWallet: (i) => debitWallet(ctx, i),
    restoreCreditLine: (i) => restoreCreditLine(ctx, i),
    accountState: (a, m) => accountState(ctx, a, m),
    listBuckets: async (accountId) => balances(await store.listBuckets(accountId), clock.nowMs()),
    listUsage: (accountId, r) => store.listUsage(accountId, r.fromMs, r.toMs),
    usageSummary: async (accountId, r) => summarizeUsage(await store.listUsage(accountId, r.fromMs, r.toMs)),
    listEvents: (accountId, o) => store.listEvents(accountId, o?.afterId ?? null, o?.limit ?? 100),
    getUsageRecord: (requestId) => store.getUsageRecord(requestId),
  };
}
