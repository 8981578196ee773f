/** Management API types: what the admin API and billing call to grant, top up, schedule and read balances. */
import type { Result } from '../core/index.ts';
import type {
  AccountPolicy,
  AllowanceSchedule,
  Bucket,
  BucketBalance,
  BucketKind,
  BucketUnit,
  CycleUnit,
  MemberCap,
  MemberCapUsage,
  OveragePolicy,
  StoredChargingEvent,
  UsageRecord,
} from './types.ts';

export interface GrantBucketInput {
  accountId: string;
  memberId?: string | null;
  unit: BucketUnit;
  currency?: string | null;
  amount: number;
  effectiveAtMs: number;
  expiresAtMs: number | null;
  priority?: number;
  kind: BucketKind;
  models?: string[] | null;
  rollover?: boolean;
  sourceRef: string;
}

export interface TopUpWalletInput {
  accountId: string;
  currency: string;
  amountMinor: number;
  sourceRef: string;
}

export interface CreateScheduleInput {
  accountId: string;
  memberId?: string | null;
  unit: BucketUnit;
  currency?: string | null;
  kind?: BucketKind;
  amountPerCycle: number;
  anchorMs: number;
  cycle: CycleUnit;
  priority?: number;
  models?: string[] | null;
  rollover?: boolean;
  sourceRef: string;
  endsAtMs?: number | null;
}

export interface SetPolicyInput {
  overage: OveragePolicy;
  creditLimitMinor?: number;
  currency?: string;
  /**
   * Token coins one major unit of money buys for this account's usage paid from money (wallet, postpaid line):
   * the pay-as-you-go offer's price (e.g. 250000 per CNY). Null: the rate table's money prices. Absent: unchanged.
   */
  coinsPerMajor?: number | null;
}

/** One account whose due cycles could not be created (the run went on with the others). */
export interface RenewalFailure {
  accountId: string;
  error: string;
}

export interface RenewalReport {
  created: number;
  failures: RenewalFailure[];
}

export interface SetMemberCapInput {
  tokensPerCycle: number | null;
  cycle?: CycleUnit;
  anchorMs?: number;
}

export interface UsageSummaryRow {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  model: string;
  requests: number;
  tokensInput: number;
  tokensOutput: number;
  tokensCachedInput: number;
  tokensReasoning: number;
  costCoins: number;
  chargedCoins: number;
  chargedMinor: number;
  chargedRequests: number;
  /** Coins delivered that no bucket could pay (usage records' leakCoins): a loss to the operator. */
  leakCoins: number;
}

export type ManagementErrorCode = 'invalid' | 'not_found' | 'conflict';

export interface ChargingManagement {
  grantBucket(i: GrantBucketInput): Promise<Result<Bucket, ManagementErrorCode>>;
  topUpWallet(i: TopUpWalletInput): Promise<Result<Bucket, ManagementErrorCode>>;
  createAllowanceSchedule(i: CreateScheduleInput): Promise<Result<AllowanceSchedule, ManagementErrorCode>>;
  endSchedule(scheduleId: string, atMs: number): Promise<Result<AllowanceSchedule, ManagementErrorCode>>;
  setAccountPolicy(accountId: string, p: SetPolicyInput): Promise<Result<AccountPolicy, ManagementErrorCode>>;
  /** Forfeit a live bucket's unused part now (refunds); open holds keep theirs. Idempotent by ref. */
  forfeitBucket(accountId: string, bucketId: string, ref: string): Promise<Result<{ forfeited: number }, ManagementErrorCode>>;
  /**
   * Pay from the account's wallet for `currency` (one atomic operation with its consume ledger entry, id
   * `consume:<ref>:<bucket>`): paid false, and nothing moved, when the wallet cannot pay all of it.
   */
  debitWallet(i: { accountId: string; currency: string; amountMinor: number; ref: string }): Promise<Result<{ paid: boolean }, ManagementErrorCode>>;
  /** Give a billed amount back to the postpaid credit line (its amount grows); restored false when the account has none. */
  restoreCreditLine(i: { accountId: string; currency: string; amountMinor: number; ref: string }): Promise<Result<{ restored: boolean }, ManagementErrorCode>>;
  /** The overage policy in force, and a member's cap definition and newest usage rows (holds included). */
  accountState(accountId: string, memberId: string | null): Promise<{ policy: AccountPolicy | null; cap: MemberCap | null; usage: MemberCapUsage[] }>;
  /** renewDue with the per-account failures listed (a failing account never stops the others). */
  renewDueReport(): Promise<RenewalReport>;
  setMemberCap(accountId: string, memberId: string, c: SetMemberCapInput): Promise<Result<MemberCap, ManagementErrorCode>>;
  listBuckets(accountId: string): Promise<BucketBalance[]>;
  listUsage(accountId: string, range: { fromMs: number; toMs: number }): Promise<UsageRecord[]>;
  usageSummary(accountId: string, range: { fromMs: number; toMs: number }): Promise<UsageSummaryRow[]>;
  listEvents(accountId: string, opts?: { afterId?: string; limit?: number }): Promise<StoredChargingEvent[]>;
  getUsageRecord(requestId: string): Promise<UsageRecord | null>;
}
