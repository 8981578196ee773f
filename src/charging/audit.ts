/**
 * The auditor: bucket counters are a cache of the ledger, so they must equal its fold; held must equal the
 * open reservations' allocations; CDR charges must equal ledger debits. Used by tests after every step and
 * usable by an operator command. Returns the problems found (empty = consistent).
 */
import type { ChargingStore } from './store.ts';
import type { AllowanceSchedule, Bucket, LedgerEntry, Reservation, UsageRecord } from './types.ts';

export interface AuditReport {
  problems: string[];
  /** chargedByRecords: sum of usage record charges; debitedByLedger: sum of ledger debits made for requests. */
  totals: { chargedByRecords: number; debitedByLedger: number };
}

const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);

export function auditData(buckets: Bucket[], ledger: LedgerEntry[], open: Reservation[], records: UsageRecord[]): AuditReport {
  const problems: string[] = [];
  const credited = new Map<string, number>();
  const consumed = new Map<string, number>();
  const consumedByRequests = new Map<string, number>();
  const forfeited = new Map<string, number>();
  for (const e of ledger) {
    if (e.amount <= 0 || !Number.isSafeInteger(e.amount)) problems.push(`ledger ${e.id}: amount ${e.amount}`);
    if (e.credit.startsWith('bucket:')) add(credited, e.credit.slice(7), e.amount);
    if (!e.debit.startsWith('bucket:')) continue;
    const bucketId = e.debit.slice(7);
    add(e.op === 'consume' ? consumed : forfeited, bucketId, e.amount);
    // Requests are charged with their request id; other debits (a wallet paying an order) carry none.
    if (e.op === 'consume' && e.requestId !== null) add(consumedByRequests, bucketId, e.amount);
  }
  const held = new Map<string, number>();
  for (const r of open) for (const a of r.allocations) add(held, a.bucketId, a.amount);
  const charged = new Map<string, number>();
  for (const u of records) for (const c of u.charges) add(charged, c.bucketId, c.amount);
  for (const b of buckets) {
    const tag = `bucket ${b.id}`;
    if (b.held < 0 || b.consumed < 0 || b.forfeited < 0) problems.push(`${tag}: negative counter`);
    if (b.consumed + b.held + b.forfeited > b.amount - b.floor)
      problems.push(`${tag}: overspent (${b.consumed}+${b.held}+${b.forfeited} > ${b.amount}-${b.floor})`);
    if ((credited.get(b.id) ?? 0) !== b.amount) problems.push(`${tag}: amount ${b.amount} != ledger credits ${credited.get(b.id) ?? 0}`);
    if ((consumed.get(b.id) ?? 0) !== b.consumed) problems.push(`${tag}: consumed ${b.consumed} != ledger consume ${consumed.get(b.id) ?? 0}`);
    if ((forfeited.get(b.id) ?? 0) !== b.forfeited) problems.push(`${tag}: forfeited ${b.forfeited} != ledger ${forfeited.get(b.id) ?? 0}`);
    if ((held.get(b.id) ?? 0) !== b.held) problems.push(`${tag}: held ${b.held} != open allocations ${held.get(b.id) ?? 0}`);
    if ((charged.get(b.id) ?? 0) !== (consumedByRequests.get(b.id) ?? 0)) {
      problems.push(`${tag}: usage record charges ${charged.get(b.id) ?? 0} != ledger request debits ${consumedByRequests.get(b.id) ?? 0}`);
    }
  }
  let chargedByRecords = 0;
  for (const v of charged.values()) chargedByRecords += v;
  let debitedByLedger = 0;
  for (const v of consumedByRequests.values()) debitedByLedger += v;
  if (chargedByRecords !== debitedByLedger) problems.push(`records charge ${chargedByRecords} != ledger debits ${debitedByLedger}`);
  return { problems, totals: { chargedByRecords, debitedByLedger } };
}

/**
 * Cycles that should exist and do not: a schedule whose next cycle started more than `graceMs` before `nowMs`
 * (every account operation and the renewal timer create due cycles, so one still missing means its renewal
 * failed). Pure: the caller gives the account's schedules.
 */
export function auditSchedules(schedules: AllowanceSchedule[], nowMs: number, graceMs: number): string[] {
  const problems: string[] = [];
  for (const s of schedules) {
    const due = s.nextCycleStartMs + graceMs <= nowMs && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs);
    if (due) {
      problems.push(
        `schedule ${s.id} (${s.sourceRef}): cycle ${s.nextCycleIndex} due since ${new Date(s.nextCycleStartMs).toISOString()} ` +
          'was not created: renewal failing',
      );
    }
  }
  return problems;
}

/** Default grace for a missing cycle: a few renewal-timer periods (the timer runs every minute). */
export const RENEWAL_AUDIT_GRACE_MS = 5 * 60_000;

/** The account's ledger checks and, when `nowMs` is given, its renewals (auditSchedules). */
export async function auditAccount(store: ChargingStore, accountId: string, opts: { nowMs?: number; graceMs?: number } = {}): Promise<AuditReport> {
  const [buckets, ledger, open, records] = await Promise.all([
    store.listBuckets(accountId),
    store.listLedger(accountId),
    store.listOpenReservations(accountId),
    store.listUsage(accountId, 0, Number.MAX_SAFE_INTEGER),
  ]);
  const report = auditData(buckets, ledger, open, records);
  if (opts.nowMs !== undefined) {
    const nowMs = opts.nowMs;
    // A read: decide returns no mutation, so nothing is written (and no cycle is created by the audit itself).
    const schedules = await store.runAccountOp({ accountId, nowMs }, (view) => ({ mutation: null, result: view.schedules }));
    report.problems.push(...auditSchedules(schedules, nowMs, opts.graceMs ?? RENEWAL_AUDIT_GRACE_MS));
  }
  return report;
}
