/**
 * Finance reports. Vendor settlement: what each upstream vendor is owed, per vendor, model and UTC day, from the
 * usage records (the vendor cost the gateway recorded, else the catalog's list cost, flagged as estimated).
 * Margin: revenue per offer (its orders and, for pay-as-you-go, the money usage) against the vendor cost of the
 * requests its buckets paid for (a request paid by several buckets is split by the share each paid).
 */
import type { UsageRecord } from '../charging/index.ts';
import type { Ctx } from './context.ts';
import { isoDay, type Period } from './periods.ts';

export interface SettlementRow {
  day: string;
  vendor: string;
  provider: string;
  model: string;
  upstreamModel: string;
  requests: number;
  tokensInput: number;
  tokensOutput: number;
  tokensCachedInput: number;
  costMicros: number;
  costMinor: number;
  /** Requests whose cost came from the catalog's list price (no vendor cost recorded). */
  estimatedRequests: number;
}

export interface SettlementReport {
  from: string;
  to: string;
  currency: string;
  rows: SettlementRow[];
  vendors: { vendor: string; requests: number; costMicros: number; costMinor: number }[];
  totalMinor: number;
}

/** 1 minor unit (fen) = 10,000 micro-units; half up. */
export const microsToMinor = (micros: number): number => Math.floor((micros + 5_000) / 10_000);

async function allUsage(ctx: Ctx, fromMs: number, toMs: number): Promise<UsageRecord[]> {
  const out: UsageRecord[] = [];
  // A loop, not push(...): a busy account's month (100k+ records) would overflow the call stack.
  for (const a of await ctx.deps.accounts.listAccounts()) for (const r of await ctx.deps.charging.listUsage(a.id, { fromMs, toMs })) out.push(r);
  return out;
}

function vendorCost(ctx: Ctx, u: UsageRecord): { micros: number; estimated: boolean } {
  if (u.vendorCostMicros !== null) return { micros: u.vendorCostMicros, estimated: false };
  const m = ctx.deps.models?.().models.get(u.model);
  if (m === undefined) return { micros: 0, estimated: true };
  const uncached = Math.max(0, u.usage.tokensInput - u.usage.tokensCachedInput);
  const micros =
    (uncached * m.cost.inputMicrosPerMillion +
      u.usage.tokensCachedInput * m.cost.cachedInputMicrosPerMillion +
      u.usage.tokensOutput * m.cost.outputMicrosPerMillion) /
    1_000_000;
  return { micros: Math.ceil(micros), estimated: true };
}

export async function vendorSettlement(ctx: Ctx, fromMs: number, toMs: number): Promise<SettlementReport> {
  const rows = new Map<string, SettlementRow>();
  for (const u of await allUsage(ctx, fromMs, toMs)) {
    const vendor = ctx.deps.models?.().models.get(u.model)?.vendor ?? u.provider;
    const day = isoDay(u.settledAtMs);
    const key = [day, vendor, u.provider, u.model, u.upstreamModel].join('\u0000');
    let r = rows.get(key);
    if (r === undefined) {
      r = {
        day,
        vendor,
        provider: u.provider,
        model: u.model,
        upstreamModel: u.upstreamModel,
        requests: 0,
        tokensInput: 0,
        tokensOutput: 0,
        tokensCachedInput: 0,
        costMicros: 0,
        costMinor: 0,
        estimatedRequests: 0,
      };
      rows.set(key, r);
    }
    const c = vendorCost(ctx, u);
    r.requests++;
    r.tokensInput += u.usage.tokensInput;
    r.tokensOutput += u.usage.tokensOutput;
    r.tokensCachedInput += u.usage.tokensCachedInput;
    r.costMicros += c.micros;
    if (c.estimated) r.estimatedRequests++;
  }
  const sorted = [...rows.values()].sort((a, b) => (a.day + a.vendor + a.model < b.day + b.vendor + b.model ? -1 : 1));
  const vendors = new Map<string, { vendor: string; requests: number; costMicros: number; costMinor: number }>();
  for (const r of sorted) {
    r.costMinor = microsToMinor(r.costMicros);
    const v = vendors.get(r.vendor) ?? { vendor: r.vendor, requests: 0, costMicros: 0, costMinor: 0 };
    v.requests += r.requests;
    v.costMicros += r.costMicros;
    vendors.set(r.vendor, v);
  }
  for (const v of vendors.values()) v.costMinor = microsToMinor(v.costMicros);
  const list = [...vendors.values()].sort((a, b) => (a.vendor < b.vendor ? -1 : 1));
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    currency: ctx.catalog().currency,
    rows: sorted,
    vendors: list,
    totalMinor: list.reduce((s, v) => s + v.costMinor, 0),
  };
}

export const PAYG = '(pay-as-you-go)';
export const OTHER = '(other grants)';

/** Which offer a bucket's allowance was sold under, from its sourceRef. */
export function offerOfSourceRef(ref: string, kind: string): string {
  if (ref.startsWith('sub:') || ref.startsWith('code:')) return ref.split(':')[2] ?? OTHER;
  if (kind === 'wallet' || kind === 'postpaid_line') return PAYG;
  if (ref.startsWith('points:')) return '(points)';
  return OTHER;
}

export interface MarginRow {
  offerId: string;
  name: string;
  revenueMinor: number;
  vendorCostMinor: number;
  marginMinor: number;
  /** Margin as a percentage of revenue, one decimal; null without revenue. */
  marginPct: string | null;
  orders: number;
  requests: number;
  /** Token coins delivered that no bucket could pay (usage records' leakCoins), attributed to the first paying offer. */
  leakCoins: number;
}

export async function marginReport(
  ctx: Ctx,
  p: Period,
): Promise<{ period: string; currency: string; rows: MarginRow[]; totals: Omit<MarginRow, 'offerId' | 'name' | 'marginPct'> }> {
  const rows = new Map<string, MarginRow & { costMicros: number }>();
  const row = (offerId: string): MarginRow & { costMicros: number } => {
    let r = rows.get(offerId);
    if (r === undefined) {
      const name = ctx.catalog().offers.get(offerId)?.name ?? offerId;
      r = { offerId, name, revenueMinor: 0, vendorCostMinor: 0, marginMinor: 0, marginPct: null, orders: 0, requests: 0, leakCoins: 0, costMicros: 0 };
      rows.set(offerId, r);
    }
    return r;
  };
  for (const a of await ctx.deps.accounts.listAccounts()) {
    for (const o of await ctx.deps.store.listOrders({ accountId: a.id, fromMs: p.startMs, toMs: p.endMs })) {
      if (o.lines.length === 0) continue;
      for (const l of o.lines) row(l.offerId ?? o.offerId ?? OTHER).revenueMinor += l.amountMinor;
      row(o.offerId ?? OTHER).orders++;
    }
    const usage = await ctx.deps.charging.listUsage(a.id, { fromMs: p.startMs, toMs: p.endMs });
    if (usage.length === 0) continue;
    const buckets = new Map((await ctx.deps.charging.listBuckets(a.id)).map((b) => [b.id, b]));
    // Prices per offer: money an account pays usage with is sold at its pay-as-you-go offer's price, so its revenue
    // and cost go to that offer's row (the pay-as-you-go subscription live at the request's time).
    const paygSubs = (await ctx.deps.store.listSubscriptions({ accountId: a.id })).filter((s) => s.type === 'payg');
    const moneyOffer = (atMs: number): string => paygSubs.find((s) => s.createdAtMs <= atMs && (s.endedAtMs === null || atMs < s.endedAtMs))?.offerId ?? PAYG;
    for (const u of usage) {
      const cost = vendorCost(ctx, u).micros;
      const shares = u.charges.map((c) => {
        const b = buckets.get(c.bucketId);
        const whole = c.unit === 'tokens' ? u.costCoins : c.unit === 'money' ? (u.costMinor ?? 0) : (u.costRequests ?? 0);
        const offerId = b === undefined ? OTHER : offerOfSourceRef(b.sourceRef, b.kind);
        return {
          offerId: offerId === PAYG ? moneyOffer(u.startedAtMs) : offerId,
          share: whole > 0 ? c.amount / whole : 0,
          money: c.unit === 'money' && (c.kind === 'wallet' || c.kind === 'postpaid_line') ? c.amount : 0,
        };
      });
      const total = shares.reduce((s, x) => s + x.share, 0);
      let left = cost;
      shares.forEach((x, i) => {
        const part = i === shares.length - 1 ? left : Math.round(total > 0 ? (cost * x.share) / total : 0);
        left -= part;
        const r = row(x.offerId);
        r.costMicros += part;
        r.revenueMinor += x.money;
        r.requests++;
      });
      if (shares.length === 0) {
        row(OTHER).costMicros += cost;
        row(OTHER).requests++;
      }
      if (u.leakCoins > 0) row(shares[0]?.offerId ?? OTHER).leakCoins += u.leakCoins;
    }
  }
  const list = [...rows.values()]
    .map(({ costMicros, ...r }) => {
      const vendorCostMinor = microsToMinor(costMicros);
      const marginMinor = r.revenueMinor - vendorCostMinor;
      return { ...r, vendorCostMinor, marginMinor, marginPct: r.revenueMinor > 0 ? ((marginMinor * 100) / r.revenueMinor).toFixed(1) : null };
    })
    .sort((a, b) => b.revenueMinor - a.revenueMinor || (a.offerId < b.offerId ? -1 : 1));
  const totals = list.reduce(
    (t, r) => ({
      revenueMinor: t.revenueMinor + r.revenueMinor,
      vendorCostMinor: t.vendorCostMinor + r.vendorCostMinor,
      marginMinor: t.marginMinor + r.marginMinor,
      orders: t.orders + r.orders,
      requests: t.requests + r.requests,
      leakCoins: t.leakCoins + r.leakCoins,
    }),
    { revenueMinor: 0, vendorCostMinor: 0, marginMinor: 0, orders: 0, requests: 0, leakCoins: 0 },
  );
  return { period: p.period, currency: ctx.catalog().currency, rows: list, totals };
}
