/**
 * What people read: subscriptions, entitlements (what features and limits an account has now), and the
 * self-service balance in plain terms: what was bought, what is left, until when, and what happens past the cap.
 */
import type { KeyLimits } from '../accounts/index.ts';
import type { BucketBalance, OveragePolicy } from '../charging/index.ts';
import { cycleStartMs } from '../charging/index.ts';
import { fmtMoney, type Ctx } from './context.ts';
import { pointsBalance } from './payments.ts';
import { cycleWindow, iso, isoDay } from './periods.ts';
import { currentIndex, isLive, termAt } from './subscriptions.ts';
import type { Offer, Subscription } from './types.ts';

export function subscriptionView(ctx: Ctx, s: Subscription) {
  const now = ctx.now();
  const k = currentIndex(s, now);
  const w = s.cycle === null ? null : cycleWindow(s.anchorMs, s.cycle, k);
  const offer = termAt(s, k)?.offer ?? ctx.catalog().offers.get(s.offerId);
  const pending = s.terms.find((t) => t.fromIndex > k);
  const ends = s.cycle !== null && s.endIndex !== null ? cycleStartMs(s.anchorMs, s.cycle, s.endIndex) : null;
  return {
    id: s.id, accountId: s.accountId, offerId: s.offerId, offerName: offer?.name ?? s.offerId, type: s.type, status: s.status, quantity: s.quantity,
    channel: s.channel, parentId: s.parentId, cycle: s.cycle, anchor: iso(s.anchorMs), cycleIndex: s.cycle === null ? null : k,
    currentPeriodStart: iso(w?.startMs ?? s.createdAtMs), currentPeriodEnd: iso(w?.endMs ?? s.expiresAtMs),
    renewsAt: w !== null && isLive(s) && (s.endIndex === null || k + 1 < s.endIndex) ? iso(w.endMs) : null,
    cancelAt: iso(ends), endReason: s.endReason, endedAt: iso(s.endedAtMs),
    pendingChange: pending === undefined || s.cycle === null ? null : { offerId: pending.offer.id, quantity: pending.quantity, effectiveAt: iso(cycleStartMs(s.anchorMs, s.cycle, pending.fromIndex)) },
    price: offer === undefined ? null : `${fmtMoney(offer.priceMinor * s.quantity, offer.currency)}${s.cycle === null ? '' : ` per ${s.cycle}`}`,
    createdAt: iso(s.createdAtMs), updatedAt: iso(s.updatedAtMs),
  };
}

export interface Entitlements {
  accountId: string;
  plan: { subscriptionId: string; offerId: string; name: string; status: string } | null;
  qos: string;
  rateLimits: KeyLimits;
  models: string[] | null;
  overage: OveragePolicy;
  creditLimitMinor: number;
  seats: number | null;
  members: number | null;
  features: { feature: string; offerId: string; subscriptionId: string; quantity: number; until: string | null }[];
}

const QOS_RANK: Record<string, number> = { best_effort: 0, standard: 1, priority: 2, dedicated: 3 };

/** What the account's live subscriptions switch on now: for the gateway (limits, QoS) and features (add-ons). */
export async function entitlements(ctx: Ctx, accountId: string): Promise<Entitlements> {
  const now = ctx.now();
  const live = (await ctx.deps.store.listSubscriptions({ accountId, live: true })).filter((s) => s.expiresAtMs === null || s.expiresAtMs > now);
  const offerOf = (s: Subscription): Offer | undefined => termAt(s, currentIndex(s, now))?.offer ?? ctx.catalog().offers.get(s.offerId);
  const plan = live.find((s) => s.type === 'plan');
  const planOffer = plan === undefined ? undefined : offerOf(plan);
  const policySubs = live.filter((s) => s.type === 'plan' || s.type === 'payg').map(offerOf).filter((o): o is Offer => o !== undefined);
  const postpaid = policySubs.filter((o) => o.overage === 'postpaid');
  const overage: OveragePolicy = postpaid.length > 0 ? 'postpaid' : policySubs.length === 0 || policySubs.some((o) => o.overage === 'wallet') ? 'wallet' : 'block';
  let qos = planOffer?.qos ?? 'standard';
  const features: Entitlements['features'] = [];
  let extraSeats = 0;
  for (const s of live.filter((x) => x.type === 'addon')) {
    const o = offerOf(s);
    if (o === undefined) continue;
    if ((QOS_RANK[o.qos] ?? 0) > (QOS_RANK[qos] ?? 0)) qos = o.qos;
    extraSeats += o.seatsAdded * s.quantity;
    if (o.feature !== null) features.push({ feature: o.feature, offerId: o.id, subscriptionId: s.id, quantity: s.quantity, until: iso(s.expiresAtMs ?? (s.endIndex !== null && s.cycle !== null ? cycleStartMs(s.anchorMs, s.cycle, s.endIndex) : null)) });
  }
  const planSeats = planOffer?.seats !== null && planOffer !== undefined && plan !== undefined ? plan.quantity : null;
  return {
    accountId, plan: plan === undefined ? null : { subscriptionId: plan.id, offerId: plan.offerId, name: planOffer?.name ?? plan.offerId, status: plan.status },
    qos, rateLimits: planOffer?.rateLimits ?? {}, models: planOffer?.models ?? null, overage,
    creditLimitMinor: Math.max(0, ...postpaid.map((o) => o.creditLimitMinor)),
    seats: planSeats === null && extraSeats === 0 ? null : (planSeats ?? 0) + extraSeats, members: planOffer?.members ?? null, features,
  };
}

// ---------------------------------------------------------------- plain terms

function short(n: number): string {
  const f = (v: number, s: string): string => `${Number(v.toFixed(2))}${s}`;
  if (n >= 1e9) return f(n / 1e9, 'B');
  if (n >= 1e6) return f(n / 1e6, 'M');
  if (n >= 1e4) return f(n / 1e3, 'K');
  return n.toLocaleString('en-US');
}

export function plainAmount(unit: string, amount: number, currency: string | null): string {
  if (unit === 'money') return fmtMoney(amount, currency ?? 'CNY');
  return unit === 'tokens' ? `${short(amount)} tokens` : `${amount.toLocaleString('en-US')} requests`;
}

function bucketName(ctx: Ctx, b: BucketBalance, subs: Map<string, Subscription>): { name: string; sub: Subscription | undefined } {
  const parts = b.sourceRef.split(':');
  if (parts[0] === 'sub') {
    const sub = subs.get(parts[1] ?? '');
    const offer = ctx.catalog().offers.get(parts[2] ?? '') ?? sub?.terms.find((t) => t.offer.id === parts[2])?.offer;
    return { name: `${offer?.name ?? parts[2]}${b.sourceRef.endsWith(':prorated') ? ' (upgrade, rest of cycle)' : ''}`, sub };
  }
  if (parts[0] === 'code') return { name: `${ctx.catalog().offers.get(parts[2] ?? '')?.name ?? parts[2]} (redeemed code)`, sub: undefined };
  if (parts[0] === 'points') return { name: 'Points redemption', sub: undefined };
  const names: Record<string, string> = { wallet: 'Wallet', postpaid_line: 'Phone-bill credit', trial: 'Trial', manual: 'Grant', addon: 'Add-on', plan_allowance: 'Allowance', code: 'Code', points: 'Points' };
  return { name: names[b.kind] ?? b.kind, sub: undefined };
}

export async function balanceView(ctx: Ctx, accountId: string, memberId: string | null) {
  const now = ctx.now();
  const all = await ctx.deps.charging.listBuckets(accountId);
  const mine = all.filter((b) => !b.expired && (b.memberId === null || b.memberId === memberId) && (b.expiresAtMs === null || b.expiresAtMs > now));
  const subs = new Map((await ctx.deps.store.listSubscriptions({ accountId })).map((s) => [s.id, s]));
  const ent = await entitlements(ctx, accountId);
  const buckets = mine.filter((b) => b.kind !== 'wallet' && b.kind !== 'postpaid_line').map((b) => {
    const { name, sub } = bucketName(ctx, b, subs);
    const future = b.effectiveAtMs > now;
    let after = b.expiresAtMs === null ? 'does not expire' : `expires on ${isoDay(b.expiresAtMs)}; anything left then is lost`;
    let renewsAt: string | null = null;
    if (sub !== undefined && sub.cycle !== null && isLive(sub) && b.expiresAtMs !== null && !b.sourceRef.includes(':prorated') && !b.sourceRef.endsWith(':now')) {
      const next = termAt(sub, currentIndex(sub, b.expiresAtMs));
      const ends = sub.endIndex === null ? null : cycleStartMs(sub.anchorMs, sub.cycle, sub.endIndex);
      if (next?.offer.allowance != null && (ends === null || b.expiresAtMs < ends)) {
        renewsAt = iso(b.expiresAtMs);
        after = `renews on ${isoDay(b.expiresAtMs)} with ${plainAmount(next.offer.allowance.unit, next.offer.allowance.amount * next.quantity, next.offer.currency)}${next.offer.rollover ? ' (unused amount rolls over once)' : ' (unused amount is cleared)'}`;
      } else if (ends !== null) {
        after = `ends on ${isoDay(ends)} (subscription canceled); anything left then is lost`;
      }
    }
    const left = b.remaining;
    const text = future ? `${plainAmount(b.unit, b.amount, b.currency)} from ${isoDay(b.effectiveAtMs)}` : `${plainAmount(b.unit, left, b.currency)} left of ${plainAmount(b.unit, b.amount, b.currency)}; ${after}`;
    return {
      id: b.id, name, unit: b.unit, kind: b.kind, memberId: b.memberId, total: b.amount, used: b.used, reserved: b.reserved, left,
      percentUsed: b.amount > 0 ? Math.round((b.used * 100) / b.amount) : 0, validFrom: iso(b.effectiveAtMs), expiresAt: iso(b.expiresAtMs), renewsAt,
      models: b.models, text,
    };
  });
  const currency = ctx.catalog().currency;
  const wallet = mine.filter((b) => b.kind === 'wallet').reduce((s, b) => s + b.remaining, 0);
  const line = mine.find((b) => b.kind === 'postpaid_line');
  const postpaid = line === undefined || ent.overage !== 'postpaid' ? null : { creditLimitMinor: ent.creditLimitMinor, usedMinor: line.used, leftMinor: line.remaining, text: `${fmtMoney(line.used, currency)} on the phone bill so far, ${fmtMoney(line.remaining, currency)} of credit left` };
  const rate = ctx.deps.walletCoinsPerUnit;
  const rateText = rate === undefined ? '' : ` at about ${short(rate)} tokens per ${currency} (reference model)`;
  const planName = ent.plan?.name ?? 'the package';
  const pastCap = ent.overage === 'block'
    ? `When ${planName} runs out, requests are refused (error insufficient_quota) until it renews; buy an add-on to get more now.`
    : ent.overage === 'wallet'
      ? `When ${planName} runs out, requests are paid from the wallet (${fmtMoney(wallet, currency)} left)${rateText}; when the wallet is empty too, requests are refused.`
      : `When ${planName} runs out, requests are billed to the phone bill${rateText}, up to a credit limit of ${fmtMoney(ent.creditLimitMinor, currency)} a month.`;
  const tokensLeft = buckets.filter((b) => b.unit === 'tokens' && b.validFrom !== null && Date.parse(b.validFrom) <= now).reduce((s, b) => s + b.left, 0);
  const requestsLeft = buckets.filter((b) => b.unit === 'requests' && Date.parse(b.validFrom ?? '') <= now).reduce((s, b) => s + b.left, 0);
  const first = buckets.find((b) => b.left > 0 && b.expiresAt !== null);
  const parts = [tokensLeft > 0 ? plainAmount('tokens', tokensLeft, null) : null, requestsLeft > 0 ? plainAmount('requests', requestsLeft, null) : null, wallet > 0 ? `${fmtMoney(wallet, currency)} in the wallet` : null].filter((x) => x !== null);
  const summary = parts.length === 0 ? `Nothing left to spend. ${pastCap}` : `You have ${parts.join(', ')} left${first?.expiresAt ? `; the first allowance ${first.renewsAt ? 'renews' : 'expires'} on ${isoDay(Date.parse(first.expiresAt))}` : ''}.`;
  return {
    accountId, memberId, asOf: iso(now), summary, plan: ent.plan, buckets,
    wallet: { currency, balanceMinor: wallet, balance: fmtMoney(wallet, currency) }, postpaid, overage: ent.overage, pastCap,
    points: await pointsBalance(ctx, accountId), features: ent.features,
  };
}

// ---------------------------------------------------------------- legacy OpenAI billing endpoints

/** Value of an amount in major currency units: tokens at the wallet price, money as is; requests are not valued. */
function valueMajor(ctx: Ctx, unit: string, amount: number): number {
  if (unit === 'money') return amount / 100;
  if (unit === 'tokens') return ctx.deps.walletCoinsPerUnit ? amount / ctx.deps.walletCoinsPerUnit : 0;
  return 0;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * GET /v1/dashboard/billing/subscription as chat front-ends read it: hard_limit_usd is what the live buckets are
 * worth and /usage's total_usage (cents) what was used of them, so limit - usage/100 is what is left.
 * Amounts are in the account's currency (CNY), whatever the field names say.
 */
export async function legacySubscription(ctx: Ctx, accountId: string, memberId: string | null) {
  const bal = await balanceView(ctx, accountId, memberId);
  const total = bal.buckets.reduce((s, b) => s + valueMajor(ctx, b.unit, b.total), 0) + (bal.wallet.balanceMinor + (await walletUsed(ctx, accountId))) / 100 + (bal.postpaid?.creditLimitMinor ?? 0) / 100;
  const plan = bal.plan === null ? null : await ctx.deps.store.getSubscription(bal.plan.subscriptionId);
  const end = plan === null || plan === undefined ? null : subscriptionView(ctx, plan).currentPeriodEnd;
  return {
    object: 'billing_subscription', has_payment_method: true, canceled: false, canceled_at: null, delinquent: null,
    access_until: end === null ? 0 : Math.floor(Date.parse(end) / 1000), soft_limit: 0, hard_limit: 0, system_hard_limit: 0,
    soft_limit_usd: round2(total), hard_limit_usd: round2(total), system_hard_limit_usd: round2(total),
    plan: { title: bal.plan?.name ?? 'Pay as you go', id: bal.plan?.offerId ?? 'payg' }, account_name: accountId,
    po_number: null, billing_email: null, tax_ids: null, billing_address: null, business_address: null,
  };
}

async function walletUsed(ctx: Ctx, accountId: string): Promise<number> {
  return (await ctx.deps.charging.listBuckets(accountId)).filter((b) => b.kind === 'wallet').reduce((s, b) => s + b.used + b.reserved, 0);
}

export async function legacyUsage(ctx: Ctx, accountId: string, memberId: string | null, fromMs: number, toMs: number) {
  const bal = await balanceView(ctx, accountId, memberId);
  const usedMajor = bal.buckets.reduce((s, b) => s + valueMajor(ctx, b.unit, b.used + b.reserved), 0) + (await walletUsed(ctx, accountId)) / 100 + (bal.postpaid?.usedMinor ?? 0) / 100;
  const days = new Map<string, Map<string, number>>();
  for (const u of await ctx.deps.charging.listUsage(accountId, { fromMs, toMs })) {
    if (memberId !== null && u.memberId !== memberId) continue;
    const day = isoDay(u.settledAtMs);
    const perModel = days.get(day) ?? new Map<string, number>();
    const cents = u.charges.reduce((s, c) => s + valueMajor(ctx, c.unit, c.amount) * 100, 0);
    perModel.set(u.model, (perModel.get(u.model) ?? 0) + cents);
    days.set(day, perModel);
  }
  const daily = [...days.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([day, m]) => ({
    timestamp: Date.parse(`${day}T00:00:00Z`) / 1000, line_items: [...m.entries()].map(([name, cost]) => ({ name, cost: round2(cost) })),
  }));
  return { object: 'list', daily_costs: daily, total_usage: round2(usedMajor * 100) };
}
