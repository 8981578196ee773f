/**
 * Burn-down order and the allocation walk (pure).
 * Order (issue #4): allowance before money; then earliest expiry first (never-expiring last); then priority;
 * then promotional kinds before paid ones; then earlier effective time; then id. Totally ordered and
 * time-independent, so settle can replay it.
 */
import type { Bucket, BucketKind, ModelRate, OveragePolicy, RatedCost } from './types.ts';
import { q, qCeil, qCmp, qDiv, qIsZero, qMul, qSub, Q0, Q1, type Q } from './rational.ts';

export const DEFAULT_PRIORITY: Record<BucketKind, number> = {
  trial: 10,
  plan_allowance: 20,
  addon: 30,
  code: 40,
  points: 50,
  manual: 60,
  wallet: 80,
  postpaid_line: 90,
};

const KIND_RANK: Record<BucketKind, number> = {
  trial: 0,
  code: 1,
  points: 2,
  manual: 3,
  plan_allowance: 4,
  addon: 5,
  wallet: 6,
  postpaid_line: 7,
};

function unitClass(b: Bucket): number {
  if (b.kind === 'postpaid_line') return 2;
  return b.unit === 'money' ? 1 : 0;
}

export function compareBuckets(a: Bucket, b: Bucket): number {
  return (
    unitClass(a) - unitClass(b) ||
    (a.expiresAtMs ?? Number.MAX_SAFE_INTEGER) - (b.expiresAtMs ?? Number.MAX_SAFE_INTEGER) ||
    a.priority - b.priority ||
    KIND_RANK[a.kind] - KIND_RANK[b.kind] ||
    a.effectiveAtMs - b.effectiveAtMs ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/** What can pay right now, given the balance's owner, model and price: availability aside. */
export interface EligibilityContext {
  nowMs: number;
  memberId: string | null;
  model: string;
  rate: ModelRate;
  currency: string;
  overage: OveragePolicy;
}

export function isLive(b: Bucket, nowMs: number): boolean {
  return b.effectiveAtMs <= nowMs && (b.expiresAtMs === null || nowMs < b.expiresAtMs);
}

export function isExpired(b: Bucket, nowMs: number): boolean {
  return b.expiresAtMs !== null && nowMs >= b.expiresAtMs;
}

export function paysForModel(b: Bucket, model: string, rate: ModelRate): boolean {
  if (b.models === null) return true;
  if (b.models.includes(model)) return true;
  return (rate.modelGroups ?? []).some((g) => b.models!.includes(g));
}

export function allowedByPolicy(b: Bucket, overage: OveragePolicy): boolean {
  if (b.kind === 'postpaid_line') return overage === 'postpaid';
  if (b.kind === 'wallet') return overage !== 'block';
  return true;
}

export function unitPriced(b: Bucket, rate: ModelRate, currency: string): boolean {
  if (b.unit === 'tokens') return true;
  if (b.unit === 'requests') return rate.perRequestCharge !== undefined;
  return b.currency === currency && (rate.priceMicrosPerMillionInput !== undefined || rate.coinsPerMajor !== undefined);
}

/** Eligible except for the amount left: used both to allocate and to explain an insufficient_quota. */
export function isCandidate(b: Bucket, c: EligibilityContext): boolean {
  return (
    (b.memberId === null || b.memberId === c.memberId) && paysForModel(b, c.model, c.rate) && allowedByPolicy(b, c.overage) && unitPriced(b, c.rate, c.currency)
  );
}

export function eligibleSorted(buckets: Iterable<Bucket>, c: EligibilityContext): Bucket[] {
  const out: Bucket[] = [];
  for (const b of buckets) if (isLive(b, c.nowMs) && isCandidate(b, c)) out.push(b);
  return out.sort(compareBuckets);
}

/**
 * A copy of a bucket, with new counter values where given. Written out field by field: in this V8 a spread of an
 * object that was itself made by a spread is several times slower than a literal, and the SQLite store's cache
 * copies a bucket on every change (it never changes a bucket a view may still hold).
 */
export function copyBucket(b: Bucket, amount = b.amount, consumed = b.consumed, held = b.held, forfeited = b.forfeited, floor = b.floor): Bucket {
  return {
    id: b.id,
    accountId: b.accountId,
    memberId: b.memberId,
    unit: b.unit,
    currency: b.currency,
    kind: b.kind,
    amount,
    consumed,
    held,
    forfeited,
    floor,
    effectiveAtMs: b.effectiveAtMs,
    expiresAtMs: b.expiresAtMs,
    priority: b.priority,
    models: b.models,
    rollover: b.rollover,
    sourceRef: b.sourceRef,
    scheduleId: b.scheduleId,
    cycleIndex: b.cycleIndex,
    createdAtMs: b.createdAtMs,
  };
}

export function available(b: Bucket): number {
  return b.amount - b.floor - b.consumed - b.held - b.forfeited;
}

/** Unrounded cost of the request in a bucket's unit, or null if the bucket's unit has no price. */
export function costIn(b: Bucket, cost: RatedCost): Q | null {
  if (b.unit === 'tokens') return cost.coins;
  if (b.unit === 'money') return cost.moneyMinor;
  return cost.requests === null ? null : q(cost.requests);
}

export interface Take {
  bucket: Bucket;
  amount: number;
}

/**
 * Walk buckets in order, each covering a fraction of the request (mixed units: an allowance can pay part
 * and the wallet the rest). Each bucket takes ceil(fraction left x cost in its unit), or all it has.
 * Within one unit the total is ceil(cost): rounding once. Requests buckets pay a whole request or nothing.
 * `availableOf` lets callers walk a working state.
 */
export function walk(sorted: Bucket[], cost: RatedCost, fraction: Q, availableOf: (b: Bucket) => number): { takes: Take[]; left: Q } {
  const takes: Take[] = [];
  let left = fraction;
  for (const b of sorted) {
    if (qIsZero(left)) break;
    const c = costIn(b, cost);
    if (c === null) continue;
    const avail = availableOf(b);
    if (b.unit === 'requests') {
      // A request is counted whole: only when nothing else paid a part of it.
      if (qCmp(left, Q1) !== 0 || cost.requests === null || avail < cost.requests) continue;
      takes.push({ bucket: b, amount: cost.requests });
      left = Q0;
      break;
    }
    if (qIsZero(c)) {
      left = Q0;
      break;
    }
    if (avail <= 0) continue;
    const want = qCeil(left === Q1 ? c : qMul(left, c)); // nothing paid yet: the whole cost, no product
    const take = Math.min(avail, want);
    takes.push({ bucket: b, amount: take });
    left = take === want ? Q0 : qSub(left, qDiv(q(take), c));
  }
  return { takes, left };
}
