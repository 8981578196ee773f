/** Row <-> domain mapping for the SQLite charging store. */
import type {
  AccountPolicy,
  AllowanceSchedule,
  Bucket,
  BucketKind,
  BucketUnit,
  CycleUnit,
  MemberCap,
  MemberCapUsage,
  OveragePolicy,
  Reservation,
  ReservationState,
  StoredChargingEvent,
  ServingNote,
  UsageRecord,
  UsageStatus,
  LedgerEntry,
  LedgerOp,
  ChargingEventType,
  DeliveryState,
} from '../../charging/index.ts';

export interface BucketRow {
  id: string;
  account_id: string;
  member_id: string | null;
  unit: string;
  currency: string | null;
  kind: string;
  amount: number;
  consumed: number;
  held: number;
  forfeited: number;
  floor: number;
  effective_at_ms: number;
  expires_at_ms: number | null;
  priority: number;
  models: string | null;
  rollover: number;
  source_ref: string;
  schedule_id: string | null;
  cycle_index: number | null;
  created_at_ms: number;
}

export const bucketFromRow = (r: BucketRow): Bucket => ({
  id: r.id,
  accountId: r.account_id,
  memberId: r.member_id,
  unit: r.unit as BucketUnit,
  currency: r.currency,
  kind: r.kind as BucketKind,
  amount: r.amount,
  consumed: r.consumed,
  held: r.held,
  forfeited: r.forfeited,
  floor: r.floor,
  effectiveAtMs: r.effective_at_ms,
  expiresAtMs: r.expires_at_ms,
  priority: r.priority,
  models: r.models === null ? null : (JSON.parse(r.models) as string[]),
  rollover: r.rollover === 1,
  sourceRef: r.source_ref,
  scheduleId: r.schedule_id,
  cycleIndex: r.cycle_index,
  createdAtMs: r.created_at_ms,
});

export const bucketToRow = (b: Bucket): BucketRow => ({
  id: b.id,
  account_id: b.accountId,
  member_id: b.memberId,
  unit: b.unit,
  currency: b.currency,
  kind: b.kind,
  amount: b.amount,
  consumed: b.consumed,
  held: b.held,
  forfeited: b.forfeited,
  floor: b.floor,
  effective_at_ms: b.effectiveAtMs,
  expires_at_ms: b.expiresAtMs,
  priority: b.priority,
  models: b.models === null ? null : JSON.stringify(b.models),
  rollover: b.rollover ? 1 : 0,
  source_ref: b.sourceRef,
  schedule_id: b.scheduleId,
  cycle_index: b.cycleIndex,
  created_at_ms: b.createdAtMs,
});

export interface ScheduleRow {
  id: string;
  account_id: string;
  member_id: string | null;
  unit: string;
  currency: string | null;
  kind: string;
  amount_per_cycle: number;
  anchor_ms: number;
  cycle: string;
  priority: number;
  models: string | null;
  rollover: number;
  source_ref: string;
  ends_at_ms: number | null;
  next_cycle_index: number;
  next_cycle_start_ms: number;
  created_at_ms: number;
}

export const scheduleFromRow = (r: ScheduleRow): AllowanceSchedule => ({
  id: r.id,
  accountId: r.account_id,
  memberId: r.member_id,
  unit: r.unit as BucketUnit,
  currency: r.currency,
  kind: r.kind as BucketKind,
  amountPerCycle: r.amount_per_cycle,
  anchorMs: r.anchor_ms,
  cycle: r.cycle as CycleUnit,
  priority: r.priority,
  models: r.models === null ? null : (JSON.parse(r.models) as string[]),
  rollover: r.rollover === 1,
  sourceRef: r.source_ref,
  endsAtMs: r.ends_at_ms,
  nextCycleIndex: r.next_cycle_index,
  nextCycleStartMs: r.next_cycle_start_ms,
  createdAtMs: r.created_at_ms,
});

export const scheduleToRow = (s: AllowanceSchedule): ScheduleRow => ({
  id: s.id,
  account_id: s.accountId,
  member_id: s.memberId,
  unit: s.unit,
  currency: s.currency,
  kind: s.kind,
  amount_per_cycle: s.amountPerCycle,
  anchor_ms: s.anchorMs,
  cycle: s.cycle,
  priority: s.priority,
  models: s.models === null ? null : JSON.stringify(s.models),
  rollover: s.rollover ? 1 : 0,
  source_ref: s.sourceRef,
  ends_at_ms: s.endsAtMs,
  next_cycle_index: s.nextCycleIndex,
  next_cycle_start_ms: s.nextCycleStartMs,
  created_at_ms: s.createdAtMs,
});

export interface PolicyRow {
  account_id: string;
  overage: string;
  credit_limit_minor: number;
  currency: string | null;
  coins_per_major?: number | null;
}
export const policyFromRow = (r: PolicyRow): AccountPolicy => ({
  accountId: r.account_id,
  overage: r.overage as OveragePolicy,
  creditLimitMinor: r.credit_limit_minor,
  currency: r.currency,
  ...(r.coins_per_major === undefined || r.coins_per_major === null ? {} : { coinsPerMajor: r.coins_per_major }),
});

export interface CapRow {
  account_id: string;
  member_id: string;
  tokens_per_cycle: number | null;
  cycle: string;
  anchor_ms: number;
}
export const capFromRow = (r: CapRow): MemberCap => ({
  accountId: r.account_id,
  memberId: r.member_id,
  tokensPerCycle: r.tokens_per_cycle,
  cycle: r.cycle as CycleUnit,
  anchorMs: r.anchor_ms,
});

export interface MemberUsageRow {
  account_id: string;
  member_id: string;
  cycle_index: number;
  used: number;
  held: number;
}
export const memberUsageFromRow = (r: MemberUsageRow): MemberCapUsage => ({
  accountId: r.account_id,
  memberId: r.member_id,
  cycleIndex: r.cycle_index,
  used: r.used,
  held: r.held,
});

/**
 * Reservations keep their indexed fields in columns and the rest (rate, allocations) in one JSON document. State,
 * validity and closing time are read from the columns: a close updates only those (see charging-schema.ts V2).
 */
export interface ReservationRow {
  id: string;
  request_id: string;
  account_id: string;
  member_id: string | null;
  state: string;
  valid_until_ms: number;
  created_at_ms: number;
  data: string;
  closed_at_ms: number | null;
}
/** The document with the column values laid over it (columns are authoritative; closed_at_ms NULL: pre-V2 row or open). */
export function reservationFromParts(data: string, state: string, validUntilMs: number, closedAtMs: number | null): Reservation {
  const r = JSON.parse(data) as Reservation;
  r.state = state as ReservationState;
  r.validUntilMs = validUntilMs;
  if (closedAtMs !== null) r.closedAtMs = closedAtMs;
  return r;
}
export const reservationFromRow = (r: ReservationRow): Reservation => reservationFromParts(r.data, r.state, r.valid_until_ms, r.closed_at_ms);

/** Fields a close may change; the rest of the document was written when the hold was made or last extended. */
const CLOSING_FIELDS = new Set<string>(['state', 'validUntilMs', 'closedAtMs']);

/** True when `next` differs from `prior` in closing fields only (allocations compared by value, the rest by identity). */
export function onlyClosingChanged(prior: Reservation, next: Reservation): boolean {
  const a = prior as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  const keys = Object.keys(b);
  if (keys.length !== Object.keys(a).length) return false;
  for (const k of keys) {
    if (CLOSING_FIELDS.has(k) || a[k] === b[k]) continue;
    if (k !== 'allocations') return false;
    const x = prior.allocations;
    const y = next.allocations;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) {
      if (x[i]!.bucketId !== y[i]!.bucketId || x[i]!.amount !== y[i]!.amount || x[i]!.unit !== y[i]!.unit) return false;
    }
  }
  return true;
}

export interface UsageRow {
  request_id: string;
  reservation_id: string;
  account_id: string;
  member_id: string | null;
  key_id: string;
  model: string;
  upstream_model: string;
  provider: string;
  deployment_id: string;
  region: string;
  tokens_input: number;
  tokens_output: number;
  tokens_cached_input: number;
  tokens_cache_write: number;
  tokens_reasoning: number;
  usage_estimated: number;
  status: string;
  rate_version: string;
  cost_coins: number;
  cost_minor: number | null;
  cost_requests: number | null;
  charges: string;
  leak_coins: number;
  vendor_cost_micros: number | null;
  latency_ms: number;
  ttft_ms: number | null;
  started_at_ms: number;
  settled_at_ms: number;
  client_request_id: string | null;
  serving: string | null;
}

export const usageFromRow = (r: UsageRow): UsageRecord => ({
  requestId: r.request_id,
  reservationId: r.reservation_id,
  accountId: r.account_id,
  memberId: r.member_id,
  keyId: r.key_id,
  model: r.model,
  upstreamModel: r.upstream_model,
  provider: r.provider,
  deploymentId: r.deployment_id,
  region: r.region,
  usage: {
    tokensInput: r.tokens_input,
    tokensOutput: r.tokens_output,
    tokensCachedInput: r.tokens_cached_input,
    tokensCacheWrite: r.tokens_cache_write,
    tokensReasoning: r.tokens_reasoning,
  },
  usageEstimated: r.usage_estimated === 1,
  status: r.status as UsageStatus,
  rateVersion: r.rate_version,
  costCoins: r.cost_coins,
  costMinor: r.cost_minor,
  costRequests: r.cost_requests,
  charges: JSON.parse(r.charges) as UsageRecord['charges'],
  leakCoins: r.leak_coins,
  vendorCostMicros: r.vendor_cost_micros,
  latencyMs: r.latency_ms,
  ttftMs: r.ttft_ms,
  startedAtMs: r.started_at_ms,
  settledAtMs: r.settled_at_ms,
  ...(r.client_request_id == null ? {} : { clientRequestId: r.client_request_id }),
  ...(r.serving == null ? {} : { serving: JSON.parse(r.serving) as ServingNote }),
});

export const usageToRow = (u: UsageRecord): UsageRow => ({
  request_id: u.requestId,
  reservation_id: u.reservationId,
  account_id: u.accountId,
  member_id: u.memberId,
  key_id: u.keyId,
  model: u.model,
  upstream_model: u.upstreamModel,
  provider: u.provider,
  deployment_id: u.deploymentId,
  region: u.region,
  tokens_input: u.usage.tokensInput,
  tokens_output: u.usage.tokensOutput,
  tokens_cached_input: u.usage.tokensCachedInput,
  tokens_cache_write: u.usage.tokensCacheWrite,
  tokens_reasoning: u.usage.tokensReasoning,
  usage_estimated: u.usageEstimated ? 1 : 0,
  status: u.status,
  rate_version: u.rateVersion,
  cost_coins: u.costCoins,
  cost_minor: u.costMinor,
  cost_requests: u.costRequests,
  charges: JSON.stringify(u.charges),
  leak_coins: u.leakCoins,
  vendor_cost_micros: u.vendorCostMicros,
  latency_ms: u.latencyMs,
  ttft_ms: u.ttftMs,
  started_at_ms: u.startedAtMs,
  settled_at_ms: u.settledAtMs,
  client_request_id: u.clientRequestId ?? null,
  serving: u.serving === undefined ? null : JSON.stringify(u.serving),
});

export interface LedgerRow {
  id: string;
  account_id: string;
  op: string;
  debit: string;
  credit: string;
  unit: string;
  currency: string | null;
  amount: number;
  request_id: string | null;
  at_ms: number;
}
export const ledgerFromRow = (r: LedgerRow): LedgerEntry => ({
  id: r.id,
  accountId: r.account_id,
  op: r.op as LedgerOp,
  debit: r.debit,
  credit: r.credit,
  unit: r.unit as BucketUnit,
  currency: r.currency,
  amount: r.amount,
  requestId: r.request_id,
  atMs: r.at_ms,
});
export const ledgerToRow = (e: LedgerEntry): LedgerRow => ({
  id: e.id,
  account_id: e.accountId,
  op: e.op,
  debit: e.debit,
  credit: e.credit,
  unit: e.unit,
  currency: e.currency,
  amount: e.amount,
  request_id: e.requestId,
  at_ms: e.atMs,
});

export interface EventRow {
  seq: number;
  id: string;
  account_id: string;
  type: string;
  subject_id: string;
  data: string;
  at_ms: number;
  delivery_state: string;
  attempts: number;
  next_attempt_at_ms: number | null;
  delivered_at_ms: number | null;
}
export const eventFromRow = (r: EventRow): StoredChargingEvent => ({
  id: r.id,
  accountId: r.account_id,
  type: r.type as ChargingEventType,
  subjectId: r.subject_id,
  data: JSON.parse(r.data) as StoredChargingEvent['data'],
  atMs: r.at_ms,
  deliveryState: r.delivery_state as DeliveryState,
  attempts: r.attempts,
  nextAttemptAtMs: r.next_attempt_at_ms,
  deliveredAtMs: r.delivered_at_ms,
});

// Positional forms for the hot path: better-sqlite3 builds row objects and binds named parameters about 2-3x
// slower than arrays, and the hot path reads and writes a few rows per request.
export const BUCKET_COLS = [
  'id',
  'account_id',
  'member_id',
  'unit',
  'currency',
  'kind',
  'amount',
  'consumed',
  'held',
  'forfeited',
  'floor',
  'effective_at_ms',
  'expires_at_ms',
  'priority',
  'models',
  'rollover',
  'source_ref',
  'schedule_id',
  'cycle_index',
  'created_at_ms',
] as const;
export const SCHEDULE_COLS = [
  'id',
  'account_id',
  'member_id',
  'unit',
  'currency',
  'kind',
  'amount_per_cycle',
  'anchor_ms',
  'cycle',
  'priority',
  'models',
  'rollover',
  'source_ref',
  'ends_at_ms',
  'next_cycle_index',
  'next_cycle_start_ms',
  'created_at_ms',
] as const;
export const USAGE_COLS = [
  'request_id',
  'reservation_id',
  'account_id',
  'member_id',
  'key_id',
  'model',
  'upstream_model',
  'provider',
  'deployment_id',
  'region',
  'tokens_input',
  'tokens_output',
  'tokens_cached_input',
  'tokens_cache_write',
  'tokens_reasoning',
  'usage_estimated',
  'status',
  'rate_version',
  'cost_coins',
  'cost_minor',
  'cost_requests',
  'charges',
  'leak_coins',
  'vendor_cost_micros',
  'latency_ms',
  'ttft_ms',
  'started_at_ms',
  'settled_at_ms',
  'client_request_id',
  'serving',
] as const;
export const LEDGER_COLS = ['account_id', 'id', 'op', 'debit', 'credit', 'unit', 'currency', 'amount', 'request_id', 'at_ms'] as const;

type Cols = readonly string[];
function fromArray<R>(cols: Cols, a: unknown[]): R {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < cols.length; i++) o[cols[i]!] = a[i];
  return o as R;
}
function toArray(cols: Cols, r: object): unknown[] {
  const o = r as Record<string, unknown>;
  return cols.map((c) => o[c]);
}

export const bucketFromArray = (a: unknown[]): Bucket => bucketFromRow(fromArray<BucketRow>(BUCKET_COLS, a));
export const bucketValues = (b: Bucket): unknown[] => toArray(BUCKET_COLS, bucketToRow(b));
export const scheduleFromArray = (a: unknown[]): AllowanceSchedule => scheduleFromRow(fromArray<ScheduleRow>(SCHEDULE_COLS, a));
/**
 * The INSERT's values, in USAGE_COLS order, written out (one per settle: no row object, no lookup by column
 * name). charging-rows.test.ts checks it against usageToRow.
 */
export function usageValues(u: UsageRecord): unknown[] {
  const t = u.usage;
  return [
    u.requestId,
    u.reservationId,
    u.accountId,
    u.memberId,
    u.keyId,
    u.model,
    u.upstreamModel,
    u.provider,
    u.deploymentId,
    u.region,
    t.tokensInput,
    t.tokensOutput,
    t.tokensCachedInput,
    t.tokensCacheWrite,
    t.tokensReasoning,
    u.usageEstimated ? 1 : 0,
    u.status,
    u.rateVersion,
    u.costCoins,
    u.costMinor,
    u.costRequests,
    JSON.stringify(u.charges),
    u.leakCoins,
    u.vendorCostMicros,
    u.latencyMs,
    u.ttftMs,
    u.startedAtMs,
    u.settledAtMs,
    u.clientRequestId ?? null,
    u.serving === undefined ? null : JSON.stringify(u.serving),
  ];
}

/** usageValues the long way (for its test). */
export const usageValuesByName = (u: UsageRecord): unknown[] => toArray(USAGE_COLS, usageToRow(u));
export const ledgerValues = (e: LedgerEntry): unknown[] => toArray(LEDGER_COLS, ledgerToRow(e));
