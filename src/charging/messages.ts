/**
 * The insufficient_quota message: which bucket ran out and when it renews (issue #5), in plain words a user
 * can act on, plus machine-readable details for the API layer.
 */
import type { Bucket, OveragePolicy } from './types.ts';
import type { Work } from './work.ts';
import { available, compareBuckets, isCandidate, isLive, type EligibilityContext } from './burn-down.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

function describe(b: Bucket): string {
  const unit = b.unit === 'money' ? `${b.currency ?? ''} minor units` : b.unit === 'tokens' ? 'token coins' : 'requests';
  return `${b.kind} bucket ${b.id} (${unit})`;
}

function renewalOf(w: Work, b: Bucket | undefined, c: EligibilityContext): number | null {
  if (b?.scheduleId !== undefined && b.scheduleId !== null) {
    const s = w.schedules.find((x) => x.id === b.scheduleId);
    if (s !== undefined && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs)) return s.nextCycleStartMs;
  }
  const starts: number[] = [];
  for (const x of w.buckets.values()) if (x.effectiveAtMs > w.nowMs && isCandidate(x, c)) starts.push(x.effectiveAtMs);
  for (const s of w.schedules) {
    const scoped = (s.memberId === null || s.memberId === c.memberId) &&
      (s.models === null || s.models.includes(c.model) || (c.rate.modelGroups ?? []).some((g) => s.models!.includes(g)));
    if (scoped && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs)) starts.push(s.nextCycleStartMs);
  }
  return starts.length === 0 ? null : Math.min(...starts);
}

function policyHint(overage: OveragePolicy): string {
  if (overage === 'block') return 'Overage policy is block: buy an add-on or wait for the renewal.';
  if (overage === 'wallet') return 'The wallet cannot cover it either: top up the wallet.';
  return 'The wallet and the postpaid credit limit cannot cover it either.';
}

export function insufficientQuota(w: Work, c: EligibilityContext, needCoins: number): { message: string; details: Record<string, unknown> } {
  const candidates = [...w.buckets.values()].filter((b) => isLive(b, c.nowMs) && isCandidate(b, c)).sort(compareBuckets);
  // The bucket that ran out: the first allowance in burn-down order (what the user thinks of as "my plan").
  const ranOut = candidates.find((b) => b.kind !== 'wallet' && b.kind !== 'postpaid_line') ?? candidates[0];
  const renewsAtMs = renewalOf(w, ranOut, c);
  const renews = renewsAtMs === null ? 'it does not renew' : `it renews at ${iso(renewsAtMs)}`;
  const head = `Insufficient quota for model ${c.model} (needs about ${needCoins} token coins).`;
  const body = ranOut === undefined
    ? `No bucket of this account can pay for this model; ${renewsAtMs === null ? 'no allowance is scheduled' : `the next allowance starts at ${iso(renewsAtMs)}`}.`
    : `The ${describe(ranOut)} has ${Math.max(0, available(ranOut))} of ${ranOut.amount} left${ranOut.expiresAtMs === null ? '' : ` until ${iso(ranOut.expiresAtMs)}`}; ${renews}.`;
  return {
    message: `${head} ${body} ${policyHint(c.overage)}`,
    details: {
      bucketId: ranOut?.id ?? null, bucketKind: ranOut?.kind ?? null, remaining: ranOut === undefined ? null : Math.max(0, available(ranOut)),
      renewsAtMs, overage: c.overage, needCoins,
    },
  };
}
