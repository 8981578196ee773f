/** Read models: balances as a user sees them, usage summaries by UTC day and model. */
import type { Bucket, BucketBalance, UsageRecord } from './types.ts';
import type { UsageSummaryRow } from './management-types.ts';
import { available, compareBuckets, isExpired } from './burn-down.ts';

export function toBalance(b: Bucket, nowMs: number): BucketBalance {
  const expired = isExpired(b, nowMs);
  return {
    id: b.id,
    unit: b.unit,
    currency: b.currency,
    kind: b.kind,
    memberId: b.memberId,
    amount: b.amount,
    used: b.consumed,
    reserved: b.held,
    forfeited: b.forfeited,
    remaining: expired ? 0 : Math.max(0, available(b)),
    effectiveAtMs: b.effectiveAtMs,
    expiresAtMs: b.expiresAtMs,
    expired,
    models: b.models,
    priority: b.priority,
    sourceRef: b.sourceRef,
  };
}

export function balances(buckets: Bucket[], nowMs: number): BucketBalance[] {
  return [...buckets].sort(compareBuckets).map((b) => toBalance(b, nowMs));
}

export function summarizeUsage(records: UsageRecord[]): UsageSummaryRow[] {
  const rows = new Map<string, UsageSummaryRow>();
  for (const u of records) {
    const day = new Date(u.settledAtMs).toISOString().slice(0, 10);
    const key = `${day}\u0000${u.model}`;
    let row = rows.get(key);
    if (row === undefined) {
      row = {
        day,
        model: u.model,
        requests: 0,
        tokensInput: 0,
        tokensOutput: 0,
        tokensCachedInput: 0,
        tokensReasoning: 0,
        costCoins: 0,
        chargedCoins: 0,
        chargedMinor: 0,
        chargedRequests: 0,
        leakCoins: 0,
      };
      rows.set(key, row);
    }
    row.requests += 1;
    row.tokensInput += u.usage.tokensInput;
    row.tokensOutput += u.usage.tokensOutput;
    row.tokensCachedInput += u.usage.tokensCachedInput;
    row.tokensReasoning += u.usage.tokensReasoning;
    row.costCoins += u.costCoins;
    row.leakCoins += u.leakCoins;
    for (const c of u.charges) {
      if (c.unit === 'tokens') row.chargedCoins += c.amount;
      else if (c.unit === 'money') row.chargedMinor += c.amount;
      else row.chargedRequests += c.amount;
    }
  }
  return [...rows.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
}
