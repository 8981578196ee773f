/**
 * Public types of the charging module (issue: carrier-style online charging).
 * Units: tokens buckets hold token coins (1 coin = 1 token of the reference model); requests buckets hold
 * request counts; money buckets hold integer MINOR units of their currency (CNY fen). All amounts are
 * safe integers; rating uses bigint rationals internally and rounds up once per request and unit.
 */
import type { Clock, IdGenerator, Result } from '../core/index.ts';
import type { ServingNote, Usage } from '../wire/index.ts';
export type { SavingKind, ServingNote } from '../wire/index.ts';

// ---------------------------------------------------------------- rating

/** An exact rational multiplier, e.g. { num: 3, den: 2 } = 1.5 coins per token. num >= 0, den > 0. */
export interface Ratio {
  num: number;
  den: number;
}

/** Rates for one model. Prices are MICROS of the rate table's major currency unit per million tokens. */
export interface ModelRate {
  coinsPerTokenInput: Ratio;
  coinsPerTokenOutput: Ratio;
  coinsPerTokenCachedInput: Ratio;
  /** Default: coinsPerTokenInput. */
  coinsPerTokenCacheWrite?: Ratio;
  /** Default: coinsPerTokenOutput. */
  coinsPerTokenReasoning?: Ratio;
  /** Money prices (micros of the major unit per 1M tokens, e.g. 2 CNY/M = 2_000_000). Absent: money buckets cannot pay. */
  priceMicrosPerMillionInput?: number;
  priceMicrosPerMillionOutput?: number;
  priceMicrosPerMillionCachedInput?: number;
  /** Default: priceMicrosPerMillionInput. */
  priceMicrosPerMillionCacheWrite?: number;
  /** Default: priceMicrosPerMillionOutput. */
  priceMicrosPerMillionReasoning?: number;
  /** Requests charged per request by request-count buckets. Absent: requests buckets cannot pay for this model. */
  perRequestCharge?: number;
  /** Groups this model belongs to; a bucket scoped to a group can pay for it. */
  modelGroups?: string[];
  /**
   * The price money buckets pay, as token coins per major unit (a pay-as-you-go offer's 250000 per CNY): money
   * cost = coins x minorUnitsPerMajor / coinsPerMajor, exact. When set it replaces the priceMicrosPerMillion*
   * prices. Set at reserve from the account's policy (pricedRate), so the reservation keeps its price.
   */
  coinsPerMajor?: number;
}

export interface RateTable {
  /** Immutable once published: a reservation stores the rate it was priced with, settle uses that. */
  version: string;
  /** Currency of the money prices. Default 'CNY'. Money buckets in another currency cannot pay. */
  currency?: string;
  /** Minor units per major unit of `currency`. Default 100 (fen). */
  minorUnitsPerMajor?: number;
  models: Record<string, ModelRate>;
}

/** The exact (unrounded) cost of some usage, per unit; `null` when the model has no price in that unit. */
export interface RatedCost {
  /** Coins as a rational (bigint num/den, den > 0). */
  coins: { num: bigint; den: bigint };
  /** Money minor units as a rational, or null if the model has no money price. */
  moneyMinor: { num: bigint; den: bigint } | null;
  /** Requests (integer), or null if the model has no per-request charge. */
  requests: number | null;
}

// ---------------------------------------------------------------- buckets

export type BucketUnit = 'tokens' | 'requests' | 'money';
export type BucketKind = 'plan_allowance' | 'addon' | 'trial' | 'wallet' | 'points' | 'code' | 'manual' | 'postpaid_line';

export interface Bucket {
  id: string;
  accountId: string;
  /** Null: the account's pool (any key of the account may draw). Set: only that member's keys. */
  memberId: string | null;
  unit: BucketUnit;
  /** Money buckets only (e.g. 'CNY'); null otherwise. */
  currency: string | null;
  kind: BucketKind;
  /** Granted so far (wallets grow by top-ups; other kinds never change). */
  amount: number;
  /** Settled (charged) so far. */
  consumed: number;
  /** Held by open reservations. */
  held: number;
  /** Expired unused, or carried to a rollover bucket (breakage). */
  forfeited: number;
  /** <= 0; -creditLimit for postpaid lines. available = amount - floor - consumed - held - forfeited. */
  floor: number;
  effectiveAtMs: number;
  /** Exclusive; null = never expires. */
  expiresAtMs: number | null;
  /** Lower = burned first (tie-break after expiry). */
  priority: number;
  /** Model ids or model group names this bucket pays for; null = any model. */
  models: string[] | null;
  rollover: boolean;
  /** Caller-supplied idempotency key, unique per account. */
  sourceRef: string;
  scheduleId: string | null;
  cycleIndex: number | null;
  createdAtMs: number;
}

/** listBuckets row: what a user sees. */
export interface BucketBalance {
  id: string;
  unit: BucketUnit;
  currency: string | null;
  kind: BucketKind;
  memberId: string | null;
  amount: number;
  used: number;
  reserved: number;
  forfeited: number;
  /** amount - used - reserved - forfeited - floor (credit counts for postpaid lines); 0 once expired. */
  remaining: number;
  effectiveAtMs: number;
  expiresAtMs: number | null;
  expired: boolean;
  models: string[] | null;
  priority: number;
  sourceRef: string;
}

export type CycleUnit = 'month' | 'day' | 'year';

export interface AllowanceSchedule {
  id: string;
  accountId: string;
  memberId: string | null;
  unit: BucketUnit;
  currency: string | null;
  kind: BucketKind;
  amountPerCycle: number;
  anchorMs: number;
  cycle: CycleUnit;
  priority: number;
  models: string[] | null;
  rollover: boolean;
  sourceRef: string;
  endsAtMs: number | null;
  /** First cycle index whose bucket has not been created yet, and its start. */
  nextCycleIndex: number;
  nextCycleStartMs: number;
  createdAtMs: number;
}

export type OveragePolicy = 'block' | 'wallet' | 'postpaid';

export interface AccountPolicy {
  accountId: string;
  /** block: only non-money buckets; wallet: then wallet buckets; postpaid: then wallet, then the postpaid line. */
  overage: OveragePolicy;
  creditLimitMinor: number;
  currency: string | null;
  /**
   * The account's price for usage paid from money (wallet, postpaid line): token coins per major unit, e.g.
   * 250000 per CNY (its pay-as-you-go offer). Absent or null: the rate table's money prices.
   */
  coinsPerMajor?: number | null;
}

export interface MemberCap {
  accountId: string;
  memberId: string;
  /** Coins (rated token coins of the member's requests, whatever bucket paid) per cycle; null = no cap. */
  tokensPerCycle: number | null;
  cycle: CycleUnit;
  anchorMs: number;
}

/** One row per (account, member, cycle index): cycle usage is never reset in place. */
export interface MemberCapUsage {
  accountId: string;
  memberId: string;
  cycleIndex: number;
  used: number;
  held: number;
}

// ---------------------------------------------------------------- reservations, usage records, ledger, events

export interface Allocation {
  bucketId: string;
  unit: BucketUnit;
  amount: number;
}

export type ReservationState = 'open' | 'settled' | 'voided' | 'expired';

export interface Reservation {
  id: string;
  requestId: string;
  accountId: string;
  memberId: string | null;
  keyId: string;
  model: string;
  stream: boolean;
  state: ReservationState;
  rateVersion: string;
  /** The model's rate at reservation time (settle rates with it, even if the table changed). */
  rate: ModelRate;
  currency: string;
  minorUnitsPerMajor: number;
  tokensInputEstimate: number;
  tokensOutputMax: number;
  tokensOutputGranted: number;
  /** Held amounts per bucket (cumulative over extensions). */
  allocations: Allocation[];
  /** Coins held against the member cap, in cycle `capCycleIndex`. */
  capHeld: number;
  capCycleIndex: number | null;
  extensions: number;
  createdAtMs: number;
  validUntilMs: number;
  closedAtMs: number | null;
}

export type UsageStatus = 'ok' | 'upstream_error' | 'client_aborted' | 'timeout' | 'truncated';

export interface BucketCharge {
  bucketId: string;
  kind: BucketKind;
  unit: BucketUnit;
  currency: string | null;
  amount: number;
}

/** The CDR: one per request id. */
export interface UsageRecord {
  requestId: string;
  reservationId: string;
  accountId: string;
  memberId: string | null;
  keyId: string;
  model: string;
  upstreamModel: string;
  provider: string;
  deploymentId: string;
  region: string;
  usage: Usage;
  usageEstimated: boolean;
  status: UsageStatus;
  rateVersion: string;
  /** Rated cost, rounded up: coins always; money minor when priced; requests when priced. */
  costCoins: number;
  costMinor: number | null;
  costRequests: number | null;
  charges: BucketCharge[];
  /** Fraction of the actual cost no bucket could pay (expressed in coins, rounded up); 0 when the gateway honoured the grant. */
  leakCoins: number;
  vendorCostMicros: number | null;
  latencyMs: number;
  ttftMs: number | null;
  /** Reservation time (the cycle the request is charged to) and settle time. */
  startedAtMs: number;
  settledAtMs: number;
  /** The client's x-request-id: a correlation label only (the charging key is requestId, the server's). */
  clientRequestId?: string;
  /** How the gateway served the request beyond the plain path (issue 17): route choice, cache, compression, savings. */
  serving?: ServingNote;
}

export type LedgerOp = 'grant' | 'topup' | 'consume' | 'forfeit' | 'rollover';

/** Double entry: each transfer moves `amount` from `debit` to `credit` (`bucket:<id>` or `house:<name>`). */
export interface LedgerEntry {
  id: string;
  accountId: string;
  op: LedgerOp;
  debit: string;
  credit: string;
  unit: BucketUnit;
  currency: string | null;
  amount: number;
  requestId: string | null;
  atMs: number;
}

export type ChargingEventType = 'threshold_50' | 'threshold_80' | 'threshold_100' | 'member_cap_80' | 'member_cap_100';

export interface ChargingEvent {
  id: string;
  accountId: string;
  type: ChargingEventType;
  /** Bucket id or member id. */
  subjectId: string;
  data: Record<string, string | number | boolean | null>;
  atMs: number;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface StoredChargingEvent extends ChargingEvent {
  deliveryState: DeliveryState;
  attempts: number;
  nextAttemptAtMs: number | null;
  deliveredAtMs: number | null;
}

// ---------------------------------------------------------------- engine API

export interface ChargingConfig {
  /** Output tokens per stream slice (first reservation and each extension). */
  sliceTokens: number;
  /** A soft ask (tokensOutputAsk) holds at most 1/shareDivisor of what the balance could pay for output. */
  shareDivisor: number;
  /** A reservation granting fewer output tokens than this is refused (insufficient_quota). */
  tokensOutputMinGrant: number;
  /** Life of a reservation; extend renews it. */
  reservationTtlMs: number;
  /** Extra time before the sweeper expires a reservation past validUntilMs. */
  reservationGraceMs: number;
  /** Overage when an account has no policy. */
  defaultOverage: OveragePolicy;
  /** Max reservations/schedules/buckets handled per sweepExpired/renewDue call. */
  sweepBatchSize: number;
}

export const defaultChargingConfig: ChargingConfig = {
  sliceTokens: 4096,
  shareDivisor: 16,
  tokensOutputMinGrant: 16,
  reservationTtlMs: 10 * 60_000,
  reservationGraceMs: 60_000,
  defaultOverage: 'wallet',
  sweepBatchSize: 500,
};

export interface ReserveInput {
  requestId: string;
  accountId: string;
  memberId: string | null;
  keyId: string;
  model: string;
  tokensInputEstimate: number;
  tokensOutputMax: number;
  stream: boolean;
  /**
   * A soft first output ask (the client set no max_tokens, or a stream's first slice): at most this much is
   * held, and no more than 1/`shareDivisor` of what the balance could pay, so concurrent requests share a
   * small balance (issue 12, finding 10). Absent: the old rule (a stream holds one slice, else all of
   * tokensOutputMax, or the largest affordable part).
   */
  tokensOutputAsk?: number;
}

export interface ReserveGrant {
  reservationId: string;
  tokensOutputGranted: number;
  validUntilMs: number;
  rateVersion: string;
  /** True when no extension can grant more (granted == tokensOutputMax, or nothing more affordable now). */
  final: boolean;
}

/** duplicate_request: the request id already has a closed reservation (a retried id never charges twice). */
export type ReserveErrorCode = 'insufficient_quota' | 'model_not_priced' | 'member_cap_reached' | 'duplicate_request';

export interface ExtendInput {
  reservationId: string;
  tokensOutputMore: number;
}

export interface ExtendGrant {
  /** Total output granted so far. */
  tokensOutputGranted: number;
  /** Nothing more will be granted: end the stream at tokensOutputGranted with finish_reason length. */
  final: boolean;
  validUntilMs: number;
}

export type ExtendErrorCode = 'reservation_not_found' | 'reservation_not_open';

export interface SettleInput {
  reservationId: string;
  requestId: string;
  usage: Usage;
  usageEstimated: boolean;
  status: UsageStatus;
  provider: string;
  upstreamModel: string;
  region: string;
  deploymentId: string;
  latencyMs: number;
  ttftMs: number | null;
  vendorCostMicros?: number;
  /** The client's x-request-id, stored on the usage record as a label. */
  clientRequestId?: string;
  /** What the gateway's stages did (issue 17), stored on the usage record as is. */
  serving?: ServingNote;
  /**
   * Charge this fraction of the rated cost (coins and money; a per-request charge stays whole): an answer served
   * from the exact response cache is charged at the cache rate (issue 17 item 4). Absent: the whole cost.
   */
  chargeRatio?: { num: number; den: number };
}

export interface ChargingEngine {
  reserve(i: ReserveInput): Promise<Result<ReserveGrant, ReserveErrorCode>>;
  extend(i: ExtendInput): Promise<Result<ExtendGrant, ExtendErrorCode>>;
  /** Idempotent by requestId: a repeated settle returns the stored record and charges nothing. */
  settle(i: SettleInput): Promise<UsageRecord>;
  /** Upstream failed before the first byte: release everything. No usage record is written. Idempotent. */
  void(reservationId: string): Promise<void>;
  /** Expire reservations past validUntil + grace, forfeit expired buckets' leftovers. Returns reservations expired. */
  sweepExpired(): Promise<number>;
  /** Create due cycle buckets (idempotent per (schedule, cycleIndex)). Returns buckets created. */
  renewDue(): Promise<number>;
}
