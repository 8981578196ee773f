/** Threshold notifications (pure): detected where consumption moves, written in the same transaction. */
import type { Bucket, ChargingEventType, MemberCap } from './types.ts';
import type { Work } from './work.ts';

export const BUCKET_THRESHOLDS_PERCENT = [50, 80, 100] as const;
export const MEMBER_CAP_THRESHOLDS_PERCENT = [80, 100] as const;

/** Percent thresholds crossed when `used` went from before to after out of `total` (exact integer compare). */
export function crossed(thresholds: readonly number[], before: number, after: number, total: number): number[] {
  if (total <= 0 || after <= before) return [];
  return thresholds.filter((t) => before * 100 < t * total && after * 100 >= t * total);
}

/** Allowances only: a wallet grows by top-ups and a credit line is a limit, so percentages mean nothing there. */
export function hasThresholds(b: Bucket): boolean {
  return b.kind !== 'wallet' && b.kind !== 'postpaid_line';
}

/** Whether `crossed` would be non-empty, without building its array (this runs on every settle). */
function anyCrossed(thresholds: readonly number[], before: number, after: number, total: number): boolean {
  if (total <= 0 || after <= before) return false;
  for (const t of thresholds) if (before * 100 < t * total && after * 100 >= t * total) return true;
  return false;
}

export function emitBucketThresholds(w: Work, b: Bucket, consumedBefore: number, newId: () => string): void {
  if (!hasThresholds(b) || !anyCrossed(BUCKET_THRESHOLDS_PERCENT, consumedBefore, b.consumed, b.amount)) return;
  for (const t of crossed(BUCKET_THRESHOLDS_PERCENT, consumedBefore, b.consumed, b.amount)) {
    w.event({
      id: newId(),
      accountId: b.accountId,
      type: `threshold_${t}` as ChargingEventType,
      subjectId: b.id,
      atMs: w.nowMs,
      data: {
        bucketId: b.id,
        kind: b.kind,
        unit: b.unit,
        amount: b.amount,
        used: b.consumed,
        percent: t,
        expiresAtMs: b.expiresAtMs,
        memberId: b.memberId,
      },
    });
  }
}

export function emitMemberCapThresholds(w: Work, cap: MemberCap, cycleIndex: number, usedBefore: number, usedAfter: number, newId: () => string): void {
  if (cap.tokensPerCycle === null || !anyCrossed(MEMBER_CAP_THRESHOLDS_PERCENT, usedBefore, usedAfter, cap.tokensPerCycle)) return;
  for (const t of crossed(MEMBER_CAP_THRESHOLDS_PERCENT, usedBefore, usedAfter, cap.tokensPerCycle)) {
    w.event({
      id: newId(),
      accountId: cap.accountId,
      type: `member_cap_${t}` as ChargingEventType,
      subjectId: cap.memberId,
      atMs: w.nowMs,
      data: { memberId: cap.memberId, cycleIndex, cap: cap.tokensPerCycle, used: usedAfter, percent: t },
    });
  }
}
