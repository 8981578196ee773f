/**
 * The ChargingStore port. Burn-down order, rating and every decision live in TypeScript (the pure planner);
 * the store's job is the atomic check-and-move of amounts and the durable records.
 *
 * Atomicity contract (`runAccountOp`): the store loads an AccountView, calls the pure `decide` callback, then
 * applies the returned AccountMutation, all as ONE atomic step per account (SQLite: one BEGIN IMMEDIATE
 * transaction; memory: synchronous). `decide` must be pure and deterministic given the view: an optimistic
 * implementation (Redis, PostgreSQL without locks) may call it again on a conflict with a fresh view.
 * While applying, the store re-checks every touched bucket (held >= 0, consumed >= 0,
 * consumed + held + forfeited <= amount - floor) and throws (rolling back) on a violation: a violation is a bug.
 */
import type {
  AccountPolicy,
  AllowanceSchedule,
  Bucket,
  ChargingEvent,
  LedgerEntry,
  MemberCap,
  MemberCapUsage,
  Reservation,
  StoredChargingEvent,
  UsageRecord,
} from './types.ts';

export interface AccountScope {
  /**
   * Null: the account of the reservation named by reservationId (resolved inside the atomic step, saving a
   * read on the hot path). If that reservation does not exist, decide gets an empty view (accountId '').
   */
  accountId: string | null;
  nowMs: number;
  /** Load this member's cap definition and usage rows (the reservation's member is loaded automatically). */
  memberId?: string | null;
  /**
   * Load this reservation (and its member's cap rows and allocation buckets, even expired ones). Reservation ids
   * are derived from request ids (`rsv_<requestId>`, see reservationIdFor), so this also finds a request's hold.
   */
  reservationId?: string;
  /** Load the usage record with this request id. */
  requestId?: string;
  /** Also load expired buckets that still hold amounts or have unforfeited leftovers (sweeps and renewals). */
  includeExpiredLeftovers?: boolean;
  /**
   * A hint: the operation usually only moves holds (reserve, extend). A store that keeps holds in memory may then
   * decide it without a transaction, and must fall back to its transactional path when the decision writes more.
   */
  holdsOnly?: boolean;
}

export interface AccountView {
  accountId: string;
  nowMs: number;
  policy: AccountPolicy | null;
  /** Not-yet-expired buckets of the account (incl. future-effective and empty ones), plus what the scope asks. */
  buckets: Bucket[];
  /** Schedules of the account that are not ended before their next cycle. */
  schedules: AllowanceSchedule[];
  memberCap: MemberCap | null;
  /** The member's two most recent usage rows plus the row the reservation holds against. */
  memberUsage: MemberCapUsage[];
  reservation: Reservation | null;
  usageRecord: UsageRecord | null;
}

export interface BucketDelta {
  bucketId: string;
  amount?: number;
  consumed?: number;
  held?: number;
  forfeited?: number;
  floor?: number;
}

export interface MemberUsageDelta {
  memberId: string;
  cycleIndex: number;
  used: number;
  held: number;
}

export interface AccountMutation {
  /** New buckets; unique by (accountId, sourceRef): a duplicate is a bug (the planner saw the view). */
  bucketsCreate: Bucket[];
  bucketDeltas: BucketDelta[];
  schedulesUpdate: { scheduleId: string; nextCycleIndex: number; nextCycleStartMs: number }[];
  reservationUpsert: Reservation | null;
  memberUsageDeltas: MemberUsageDelta[];
  usageRecord: UsageRecord | null;
  ledger: LedgerEntry[];
  events: ChargingEvent[];
  policyUpsert: AccountPolicy | null;
  memberCapUpsert: MemberCap | null;
}

export interface Decision<T> {
  mutation: AccountMutation | null;
  result: T;
}

export interface ChargingStore {
  runAccountOp<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T>;

  /** Insert a bucket and its ledger entries; idempotent by (accountId, sourceRef): returns the existing one. */
  createBucket(bucket: Bucket, ledger: LedgerEntry[]): Promise<{ bucket: Bucket; created: boolean }>;
  /**
   * Add `amountMinor` to the account's wallet bucket for `currency` (created from `walletIfNew` when missing),
   * with one ledger entry; idempotent by (accountId, sourceRef) of the top-up.
   */
  topUpWallet(i: {
    accountId: string;
    currency: string;
    amountMinor: number;
    sourceRef: string;
    atMs: number;
    walletIfNew: Bucket;
  }): Promise<{ bucket: Bucket; applied: boolean }>;
  /** Idempotent by (accountId, sourceRef). */
  createSchedule(s: AllowanceSchedule): Promise<{ schedule: AllowanceSchedule; created: boolean }>;
  endSchedule(scheduleId: string, endsAtMs: number): Promise<AllowanceSchedule | null>;

  listBuckets(accountId: string): Promise<Bucket[]>;
  listUsage(accountId: string, fromMs: number, toMs: number): Promise<UsageRecord[]>;
  getUsageRecord(requestId: string): Promise<UsageRecord | null>;
  getReservation(reservationId: string): Promise<Reservation | null>;
  listOpenReservations(accountId: string): Promise<Reservation[]>;
  listLedger(accountId: string): Promise<LedgerEntry[]>;
  listEvents(accountId: string, afterId: string | null, limit: number): Promise<StoredChargingEvent[]>;

  /** Work lists for the timers (ids only; each item is then handled by its own runAccountOp). */
  findExpiredReservations(beforeMs: number, limit: number): Promise<{ reservationId: string; accountId: string }[]>;
  /** Accounts with a bucket that expired in (fromMs, toMs] and still has an unforfeited leftover. */
  findAccountsWithExpiredLeftovers(fromMs: number, toMs: number, limit: number): Promise<string[]>;
  findAccountsWithDueSchedules(nowMs: number, limit: number): Promise<string[]>;

  /** Outbox for webhook delivery. */
  /** Due pending events; each returned event is leased (not returned again) until nowMs + leaseMs. */
  claimPendingEvents(nowMs: number, limit: number, leaseMs: number): Promise<StoredChargingEvent[]>;
  markEventDelivered(eventId: string, atMs: number): Promise<void>;
  /** nextAttemptAtMs null: give up (state 'failed'). */
  markEventAttemptFailed(eventId: string, attempts: number, nextAttemptAtMs: number | null): Promise<void>;
}

/** One reservation per request, enforced by the reservation's primary key (the design's "hold id = request id"). */
export function reservationIdFor(requestId: string): string {
  return `rsv_${requestId}`;
}

export function emptyMutation(): AccountMutation {
  return {
    bucketsCreate: [],
    bucketDeltas: [],
    schedulesUpdate: [],
    reservationUpsert: null,
    memberUsageDeltas: [],
    usageRecord: null,
    ledger: [],
    events: [],
    policyUpsert: null,
    memberCapUpsert: null,
  };
}
