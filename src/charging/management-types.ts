/** Management API types: what the admin API and billing call to grant, top up, schedule and read balances. */
import type { Result } from '../core/index.ts';
import type {
  AccountPolicy, AllowanceSchedule, Bucket, BucketBalance, BucketKind, BucketUnit, CycleUnit, MemberCap, OveragePolicy,
  StoredChargingEvent, UsageRecord,
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
  setMemberCap(accountId: string, memberId: string, c: SetMemberCapInput): Promise<Result<MemberCap, ManagementErrorCode>>;
  listBuckets(accountId: string): Promise<BucketBalance[]>;
  listUsage(accountId: string, range: { fromMs: number; toMs: number }): Promise<UsageRecord[]>;
  usageSummary(accountId: string, range: { fromMs: number; toMs: number }): Promise<UsageSummaryRow[]>;
  listEvents(accountId: string, opts?: { afterId?: string; limit?: number }): Promise<StoredChargingEvent[]>;
  getUsageRecord(requestId: string): Promise<UsageRecord | null>;
}

