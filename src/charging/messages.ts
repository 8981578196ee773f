/**
 * The insufficient_quota message: which bucket ran out and when it renews (issue #5), in plain words a user
 * can act on, plus machine-readable details for the API layer.
 */
import type { Bucket, OveragePolicy } from './types.ts';
import type { Work } from './work.ts';
import { available, compareBuckets, isCandidate, isLive, type EligibilityContext } from './burn-down.ts';

const CYCLE_WORD: Record<string, string> = { month: 'monthly', day: 'daily', year: 'yearly' };
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "20 Dec" (this year) or "20 Dec 2027" (UTC). */
function day(ms: number, nowMs: number): string {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}${y === new Date(nowMs).getUTCFullYear() ? '' : ` ${y}`}`;
}

/** 10000000 -> "10M", 500000 -> "500k", 2000 -> "2,000". */
function count(n: number): string {
  if (n >= 1_000_000 && n % 100_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 100_000 && n % 1_000 === 0) return `${n / 1_000}k`;
  return n.toLocaleString('en-US');
}

/** "10M-token monthly package", "50.00 CNY wallet": what a user calls the bucket, no internal ids or units. */
function describe(w: Work, b: Bucket): string {
  if (b.unit === 'money') return b.kind === 'postpaid_line' ? 'credit line' : 'wallet';
  const what = b.unit === 'tokens' ? 'token' : 'request';
  const s = b.scheduleId == null ? undefined : w.schedules.find((x) => x.id === b.scheduleId);
  const cycle = s === undefined ? '' : `${CYCLE_WORD[s.cycle] ?? ''} `.trimStart();
  const name: Record<string, string> = {
    plan_allowance: 'package',
    addon: 'add-on',
    trial: 'trial',
    points: 'points credit',
    code: 'redeemed credit',
    manual: 'grant',
  };
  return `${count(b.amount)}-${what} ${cycle}${name[b.kind] ?? 'allowance'}`;
}

function renewalOf(w: Work, b: Bucket | undefined, c: EligibilityContext): number | null {
  if (b?.scheduleId !== undefined && b.scheduleId !== null) {
    const s = w.schedules.find((x) => x.id === b.scheduleId);
    if (s !== undefined && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs)) return s.nextCycleStartMs;
  }
  const starts: number[] = [];
  for (const x of w.buckets.values()) if (x.effectiveAtMs > w.nowMs && isCandidate(x, c)) starts.push(x.effectiveAtMs);
  for (const s of w.schedules) {
    const scoped =
      (s.memberId === null || s.memberId === c.memberId) &&
      (s.models === null || s.models.includes(c.model) || (c.rate.modelGroups ?? []).some((g) => s.models!.includes(g)));
    if (scoped && (s.endsAtMs === null || s.nextCycleStartMs < s.endsAtMs)) starts.push(s.nextCycleStartMs);
  }
  return starts.length === 0 ? null : Math.min(...starts);
}

function continueHint(overage: OveragePolicy): string {
  if (overage === 'block') return 'an add-on continues now';
  if (overage === 'wallet') return 'an add-on or a wallet top-up continues now';
  return 'an add-on or a higher credit limit continues now';
}

/**
 * The insufficient_quota message (issue 13, item 4): plain words a user can act on, no internal ids, minor
 * units or coin jargon. When the balance is only held by requests in progress, it says so (a retry will do);
 * the details carry the machine-readable figures (heldCoins > 0 means: retry shortly).
 */
export function insufficientQuota(w: Work, c: EligibilityContext, needCoins: number): { message: string; details: Record<string, unknown> } {
  const candidates = [...w.buckets.values()].filter((b) => isLive(b, c.nowMs) && isCandidate(b, c)).sort(compareBuckets);
  // The bucket that ran out: the first allowance in burn-down order (what the user thinks of as "my plan").
  const ranOut = candidates.find((b) => b.kind !== 'wallet' && b.kind !== 'postpaid_line') ?? candidates[0];
  const renewsAtMs = renewalOf(w, ranOut, c);
  let heldCoins = 0;
  for (const b of candidates) if (b.unit === 'tokens') heldCoins += b.held;
  let message: string;
  if (ranOut === undefined) {
    message = `This account has no package or balance that pays for the model ${c.model}${renewsAtMs === null ? '' : ` until ${day(renewsAtMs, w.nowMs)}`}; a package, an add-on or a wallet top-up continues now.`;
  } else if (heldCoins > 0) {
    const free = candidates.reduce((n, b) => n + (b.unit === 'tokens' ? Math.max(0, available(b)) : 0), 0);
    message =
      `Your balance is busy: ${count(heldCoins)} tokens are held by requests still in progress and ${count(free)} are free, ` +
      `less than this request needs (about ${count(needCoins)}). Retry when they finish, or send a smaller max_tokens.`;
  } else {
    const renews = renewsAtMs === null ? 'it does not renew' : `it renews on ${day(renewsAtMs, w.nowMs)}`;
    const left = Math.max(0, available(ranOut));
    const state =
      left === 0
        ? 'is used up'
        : `has ${ranOut.unit === 'money' ? 'too little' : `${count(left)} ${ranOut.unit === 'tokens' ? 'tokens' : 'requests'}`} left, less than this request needs`;
    message = `Your ${describe(w, ranOut)} ${state}; ${renews}; ${continueHint(c.overage)}.`;
  }
  return {
    message,
    details: {
      bucketId: ranOut?.id ?? null,
      bucketKind: ranOut?.kind ?? null,
      remaining: ranOut === undefined ? null : Math.max(0, available(ranOut)),
      renewsAtMs,
      overage: c.overage,
      needCoins,
      heldCoins,
    },
  };
}
