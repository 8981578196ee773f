/**
 * What people read: subscriptions, entitlements (what features and limits an account has now), and the
 * self-service balance in plain terms: what was bought, what is left, until when, and what happens past the cap.
 */
import type { KeyLimits } from '../accounts/index.ts';
import type { BucketBalance, OveragePolicy, UsageRecord } from '../charging/index.ts';
import { cycleIndexAt, cycleStartMs, defaultChargingConfig } from '../charging/index.ts';
import { fmtMoney, type Ctx } from './context.ts';
import { pointsBalance } from './payments.ts';
import { cycleWindow, iso, isoDay } from './periods.ts';
import { currentIndex, isLive, termAt } from './terms.ts';
import type { Offer, Subscription } from './types.ts';

export function subscriptionView(ctx: Ctx, s: Subscription) {
  const now = ctx.now();
  const k = currentIndex(s, now);
  const w = s.cycle === null ? null : cycleWindow(s.anchorMs, s.cycle, k);
  const offer = termAt(s, k)?.offer ?? ctx.catalog().offers.get(s.offerId);
  const pending = s.terms.find((t) => t.fromIndex > k);
  const ends = s.cycle !== null && s.endIndex !== null ? cycleStartMs(s.anchorMs, s.cycle, s.endIndex) : null;
  return {
    id: s.id,
    accountId: s.accountId,
    offerId: s.offerId,
    offerName: offer?.name ?? s.offerId,
    type: s.type,
    status: s.status,
    quantity: s.quantity,
    channel: s.channel,
    parentId: s.parentId,
    cycle: s.cycle,
    anchor: iso(s.anchorMs),
    cycleIndex: s.cycle === null ? null : k,
    currentPeriodStart: iso(w?.startMs ?? s.createdAtMs),
    currentPeriodEnd: iso(w?.endMs ?? s.expiresAtMs),
    renewsAt: w !== null && isLive(s) && (s.endIndex === null || k + 1 < s.endIndex) ? iso(w.endMs) : null,
    cancelAt: iso(ends),
    endReason: s.endReason,
    endedAt: iso(s.endedAtMs),
    pendingChange:
      pending === undefined || s.cycle === null
        ? null
        : { offerId: pending.offer.id, quantity: pending.quantity, effectiveAt: iso(cycleStartMs(s.anchorMs, s.cycle, pending.fromIndex)) },
    price: offer === undefined ? null : `${fmtMoney(offer.priceMinor * s.quantity, offer.currency)}${s.cycle === null ? '' : ` per ${s.cycle}`}`,
    createdAt: iso(s.createdAtMs),
    updatedAt: iso(s.updatedAtMs),
  };
}

export interface Entitlements {
  accountId: string;
  plan: { subscriptionId: string; offerId: string; name: string; status: string } | null;
  qos: string;
  /** Data residency: regions every request must be served in (the intersection of the live plan and payg offers' pins); null: anywhere. */
  regions: string[] | null;
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
  const policySubs = live
    .filter((s) => s.type === 'plan' || s.type === 'payg')
    .map(offerOf)
    .filter((o): o is Offer => o !== undefined);
  const postpaid = policySubs.filter((o) => o.overage === 'postpaid');
  const overage: OveragePolicy =
    postpaid.length > 0 ? 'postpaid' : policySubs.length === 0 || policySubs.some((o) => o.overage === 'wallet') ? 'wallet' : 'block';
  let qos = planOffer?.qos ?? 'standard';
  const features: Entitlements['features'] = [];
  let extraSeats = 0;
  for (const s of live.filter((x) => x.type === 'addon')) {
    const o = offerOf(s);
    if (o === undefined) continue;
    if ((QOS_RANK[o.qos] ?? 0) > (QOS_RANK[qos] ?? 0)) qos = o.qos;
    extraSeats += o.seatsAdded * s.quantity;
    if (o.feature !== null)
      features.push({
        feature: o.feature,
        offerId: o.id,
        subscriptionId: s.id,
        quantity: s.quantity,
        until: iso(s.expiresAtMs ?? (s.endIndex !== null && s.cycle !== null ? cycleStartMs(s.anchorMs, s.cycle, s.endIndex) : null)),
      });
  }
  const planSeats = planOffer?.seats !== null && planOffer !== undefined && plan !== undefined ? plan.quantity : null;
  let regions: string[] | null = null;
  for (const o of policySubs) if (o.regions !== undefined) regions = regions === null ? [...o.regions] : regions.filter((r) => o.regions!.includes(r));
  return {
    accountId,
    plan: plan === undefined ? null : { subscriptionId: plan.id, offerId: plan.offerId, name: planOffer?.name ?? plan.offerId, status: plan.status },
    qos,
    regions,
    rateLimits: planOffer?.rateLimits ?? {},
    models: planOffer?.models ?? null,
    overage,
    creditLimitMinor: Math.max(0, ...postpaid.map((o) => o.creditLimitMinor)),
    seats: planSeats === null && extraSeats === 0 ? null : (planSeats ?? 0) + extraSeats,
    members: planOffer?.members ?? null,
    features,
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
  const names: Record<string, string> = {
    wallet: 'Wallet',
    postpaid_line: 'Phone-bill credit',
    trial: 'Trial',
    manual: 'Grant',
    addon: 'Add-on',
    plan_allowance: 'Allowance',
    code: 'Code',
    points: 'Points',
  };
  return { name: names[b.kind] ?? b.kind, sub: undefined };
}

/**
 * Everyday equivalents of an amount of token coins (the one documented table; README "Console"). Each is a
 * typical request's size in tokens; its price in coins follows the account's own model mix (30 days), or the
 * reference model (1 coin per token) for an account without usage yet.
 */
export const EVERYDAY_EQUIVALENTS = [
  { id: 'chat_question', name: 'chat questions', tokensInput: 600, tokensOutput: 400 },
  { id: 'code_page', name: 'pages of code', tokensInput: 3000, tokensOutput: 1000 },
  { id: 'document_summary', name: 'document summaries (10 pages)', tokensInput: 6000, tokensOutput: 500 },
] as const;

/** Days of usage the burn-rate forecast looks back at. */
export const FORECAST_DAYS = 7;
const DAY = 86_400_000;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** "18 Dec", with the year when it is not the year of `nowMs`. */
const dayMonth = (ms: number, nowMs: number): string => {
  const d = new Date(ms);
  const year = d.getUTCFullYear() === new Date(nowMs).getUTCFullYear() ? '' : ` ${d.getUTCFullYear()}`;
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}${year}`;
};
const grouped = (n: number): string => Math.round(n).toLocaleString('en-US');

/** The account's charging state that the balance depends on: the overage policy in force and the member's cap. */
async function chargingState(ctx: Ctx, accountId: string, memberId: string | null) {
  return ctx.deps.charging.accountState(accountId, memberId);
}

export interface MemberCapStatus {
  memberId: string;
  capCoins: number | null;
  usedCoins: number;
  heldCoins: number;
  leftCoins: number | null;
  cycleStart: string;
  resetsAt: string;
  reached: boolean;
  text: string;
}

/** A member's cap this cycle (coins): from charging's member cap and usage rows. Members without a cap are metered per calendar month. */
export async function memberCapStatus(ctx: Ctx, accountId: string, memberId: string): Promise<MemberCapStatus> {
  const st = await chargingState(ctx, accountId, memberId);
  const cap = st.cap !== null && st.cap.memberId === memberId ? st.cap : { tokensPerCycle: null, cycle: 'month' as const, anchorMs: 0 };
  const now = ctx.now();
  const k = cycleIndexAt(cap.anchorMs, cap.cycle, now);
  const row = st.usage.find((u) => u.memberId === memberId && u.cycleIndex === k);
  const used = row?.used ?? 0;
  const held = row?.held ?? 0;
  const resets = cycleStartMs(cap.anchorMs, cap.cycle, k + 1);
  const left = cap.tokensPerCycle === null ? null : Math.max(0, cap.tokensPerCycle - used - held);
  // Reached when less than one chat question (at the reference model) is left: the gateway refuses such requests.
  const reached =
    left !== null && (left <= 0 || left < Math.min(cap.tokensPerCycle!, EVERYDAY_EQUIVALENTS[0].tokensInput + EVERYDAY_EQUIVALENTS[0].tokensOutput));
  const text =
    cap.tokensPerCycle === null
      ? `No personal cap; ${short(used)} token coins used this ${cap.cycle}.`
      : reached
        ? `Your cap of ${short(cap.tokensPerCycle)} token coins is used up (${short(left!)} left, less than one request); requests are refused (member_cap_reached) until ${isoDay(resets)}, even while the shared pool has tokens left. Ask the account owner to raise the cap.`
        : `${short(left!)} of your ${short(cap.tokensPerCycle)} token-coin cap left until ${isoDay(resets)}.`;
  return {
    memberId,
    capCoins: cap.tokensPerCycle,
    usedCoins: used,
    heldCoins: held,
    leftCoins: left,
    cycleStart: iso(cycleStartMs(cap.anchorMs, cap.cycle, k))!,
    resetsAt: iso(resets)!,
    reached,
    text,
  };
}

/** Coins one token costs, input and output, averaged over the account's usage mix (reference model: 1 and 1). */
function mixRates(ctx: Ctx, records: UsageRecord[]): { input: number; output: number; basis: 'your_mix' | 'reference'; models: string[] } {
  const catalog = ctx.deps.models?.();
  let tin = 0;
  let tout = 0;
  let cin = 0;
  let cout = 0;
  const byModel = new Map<string, number>();
  for (const u of records) {
    const spec = catalog?.models.get(u.model);
    if (spec === undefined) continue;
    const i = u.usage.tokensInput;
    const o = u.usage.tokensOutput;
    tin += i;
    tout += o;
    cin += (i * spec.coins.input.num) / spec.coins.input.den;
    cout += (o * spec.coins.output.num) / spec.coins.output.den;
    byModel.set(u.model, (byModel.get(u.model) ?? 0) + i + o);
  }
  if (tin + tout === 0) return { input: 1, output: 1, basis: 'reference', models: [] };
  const models = [...byModel.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([m]) => m)
    .slice(0, 3);
  return { input: tin > 0 ? cin / tin : 1, output: tout > 0 ? cout / tout : 1, basis: 'your_mix', models };
}

export function equivalentsOf(coins: number, rates: { input: number; output: number; basis: 'your_mix' | 'reference' }) {
  const items = EVERYDAY_EQUIVALENTS.map((e) => {
    const coinsEach = e.tokensInput * rates.input + e.tokensOutput * rates.output;
    return { id: e.id, name: e.name, tokensEach: e.tokensInput + e.tokensOutput, coinsEach: Math.round(coinsEach), count: Math.floor(coins / coinsEach) };
  });
  const at = rates.basis === 'your_mix' ? 'at your usual models' : 'at the reference model';
  return { basis: rates.basis, items, text: `about ${grouped(items[0]!.count)} ${items[0]!.name} or ${grouped(items[1]!.count)} ${items[1]!.name} ${at}` };
}

/** What the coins of a token cost per model: the explanation of "token coins". */
function coinNote(ctx: Ctx): string {
  const catalog = ctx.deps.models?.();
  let top: { id: string; out: number } | null = null;
  for (const m of catalog?.models.values() ?? []) {
    if (m.kind !== 'chat') continue;
    const out = m.coins.output.num / m.coins.output.den;
    if (top === null || out > top.out) top = { id: m.id, out };
  }
  return (
    'Token packages hold token coins: 1 coin buys 1 token of the reference model. Premium models cost more coins per token' +
    (top === null || top.out <= 1
      ? '.'
      : ` (up to ${Number(top.out.toFixed(2))} coins per output token on ${top.id}), so a 10M package buys several times fewer tokens there.`)
  );
}

export async function balanceView(ctx: Ctx, accountId: string, memberId: string | null) {
  const now = ctx.now();
  const all = await ctx.deps.charging.listBuckets(accountId);
  const mine = all.filter((b) => !b.expired && (b.memberId === null || b.memberId === memberId) && (b.expiresAtMs === null || b.expiresAtMs > now));
  const subs = new Map((await ctx.deps.store.listSubscriptions({ accountId })).map((s) => [s.id, s]));
  const ent = await entitlements(ctx, accountId);
  const st = await chargingState(ctx, accountId, memberId);
  // The policy in force is charging's (set by orders, or by an operator on the account); entitlements only derive it from offers.
  const overage: OveragePolicy = st.policy?.overage ?? defaultChargingConfig.defaultOverage;
  const creditLimitMinor = st.policy?.creditLimitMinor ?? 0;
  const unitName = (unit: string): string => (unit === 'tokens' ? 'token coins' : unit);
  const amountText = (unit: string, n: number, currency: string | null): string =>
    unit === 'tokens' ? `${short(n)} token coins` : plainAmount(unit, n, currency);
  const buckets = mine
    .filter((b) => b.kind !== 'wallet' && b.kind !== 'postpaid_line')
    .map((b) => {
      const { name, sub } = bucketName(ctx, b, subs);
      const future = b.effectiveAtMs > now;
      let after = b.expiresAtMs === null ? 'does not expire' : `expires on ${isoDay(b.expiresAtMs)}; anything left then is lost`;
      let renewsAt: string | null = null;
      if (
        sub !== undefined &&
        sub.cycle !== null &&
        isLive(sub) &&
        b.expiresAtMs !== null &&
        !b.sourceRef.includes(':prorated') &&
        !b.sourceRef.endsWith(':now')
      ) {
        const next = termAt(sub, currentIndex(sub, b.expiresAtMs));
        const ends = sub.endIndex === null ? null : cycleStartMs(sub.anchorMs, sub.cycle, sub.endIndex);
        if (next?.offer.allowance != null && (ends === null || b.expiresAtMs < ends)) {
          renewsAt = iso(b.expiresAtMs);
          after = `renews on ${isoDay(b.expiresAtMs)} with ${amountText(next.offer.allowance.unit, next.offer.allowance.amount * next.quantity, next.offer.currency)}${next.offer.rollover ? ' (unused amount rolls over once)' : ' (unused amount is cleared)'}`;
        } else if (ends !== null) {
          after = `ends on ${isoDay(ends)} (subscription canceled); anything left then is lost`;
        }
      }
      const left = b.remaining;
      const text = future
        ? `${amountText(b.unit, b.amount, b.currency)} from ${isoDay(b.effectiveAtMs)}`
        : `${amountText(b.unit, left, b.currency)} left of ${amountText(b.unit, b.amount, b.currency)}; ${after}`;
      return {
        id: b.id,
        name,
        unit: b.unit,
        unitName: unitName(b.unit),
        kind: b.kind,
        memberId: b.memberId,
        total: b.amount,
        used: b.used,
        reserved: b.reserved,
        left,
        percentUsed: b.amount > 0 ? Math.round((b.used * 100) / b.amount) : 0,
        validFrom: iso(b.effectiveAtMs),
        expiresAt: iso(b.expiresAtMs),
        renewsAt,
        models: b.models,
        text,
      };
    });
  const currency = ctx.catalog().currency;
  const wallet = mine.filter((b) => b.kind === 'wallet').reduce((s, b) => s + b.remaining, 0);
  const line = mine.find((b) => b.kind === 'postpaid_line');
  const lineUsed = line === undefined ? 0 : line.used + line.reserved;
  const postpaid =
    overage !== 'postpaid'
      ? null
      : {
          creditLimitMinor,
          usedMinor: lineUsed,
          leftMinor: line?.remaining ?? creditLimitMinor,
          creditLimit: fmtMoney(creditLimitMinor, currency),
          used: fmtMoney(lineUsed, currency),
          left: fmtMoney(line?.remaining ?? creditLimitMinor, currency),
          text: `${fmtMoney(lineUsed, currency)} on the phone bill so far, ${fmtMoney(line?.remaining ?? creditLimitMinor, currency)} of ${fmtMoney(creditLimitMinor, currency)} credit left`,
        };
  const rate = ctx.deps.walletCoinsPerUnit;
  const rateText = rate === undefined ? '' : ` at about ${short(rate)} token coins per ${currency}`;
  const live = [...subs.values()].filter((s) => isLive(s) && (s.expiresAtMs === null || s.expiresAtMs > now));
  const payg = live.find((s) => s.type === 'payg');
  const paygOffer = payg === undefined ? undefined : (termAt(payg, 0)?.offer ?? ctx.catalog().offers.get(payg.offerId));
  const planName = ent.plan?.name ?? (paygOffer !== undefined ? null : 'your allowance');
  const cap = memberId === null ? null : await memberCapStatus(ctx, accountId, memberId);
  const tokensLeft = buckets.filter((b) => b.unit === 'tokens' && b.validFrom !== null && Date.parse(b.validFrom) <= now).reduce((s, b) => s + b.left, 0);
  const requestsLeft = buckets.filter((b) => b.unit === 'requests' && Date.parse(b.validFrom ?? '') <= now).reduce((s, b) => s + b.left, 0);
  const paidMoney = overage === 'block' ? 0 : wallet + (postpaid?.leftMinor ?? 0);
  const moneyCoins = rate === undefined ? 0 : Math.floor((paidMoney * rate) / 100);
  // What this key can spend now, in coins: allowances, then (per policy) wallet and phone-bill credit, bounded by the member's cap.
  const spendableRaw = tokensLeft + moneyCoins;
  const spendableCoins = cap?.reached ? 0 : cap?.leftCoins == null ? spendableRaw : Math.min(spendableRaw, cap.leftCoins);
  const pastCapBase =
    overage === 'block'
      ? `When ${planName ?? 'your allowance'} runs out, requests are refused (error insufficient_quota) until it renews; buy an add-on to get more now.`
      : overage === 'wallet'
        ? `${planName === null ? `${paygOffer!.name}: requests` : `When ${planName} runs out, requests`} are paid from the wallet (${fmtMoney(wallet, currency)} left)${rateText}; when the wallet is empty too, requests are refused.`
        : `${planName === null ? `${paygOffer!.name}: requests` : `When ${planName} runs out, requests`} are paid from the wallet first (${fmtMoney(wallet, currency)}), then billed to the phone bill${rateText}, up to a credit limit of ${fmtMoney(creditLimitMinor, currency)}; past that, requests are refused.`;
  const pastCap = cap?.capCoins != null ? `${pastCapBase} Your personal cap of ${short(cap.capCoins)} token coins a month applies first.` : pastCapBase;
  const first = buckets.find((b) => b.left > 0 && b.expiresAt !== null);
  const parts = [
    tokensLeft > 0 ? `${short(tokensLeft)} token coins` : null,
    requestsLeft > 0 ? plainAmount('requests', requestsLeft, null) : null,
    wallet > 0 ? `${fmtMoney(wallet, currency)} in the wallet${overage === 'block' ? ' (not used for requests: this package blocks past the cap)' : ''}` : null,
    postpaid !== null && postpaid.leftMinor > 0 ? `${fmtMoney(postpaid.leftMinor, currency)} of phone-bill credit` : null,
  ].filter((x) => x !== null);
  let summary: string;
  if (cap?.reached) summary = cap.text;
  else if (parts.length === 0 || (spendableCoins === 0 && requestsLeft === 0)) summary = `Nothing left to spend. ${pastCap}`;
  else {
    const capped =
      cap?.leftCoins != null && cap.leftCoins < spendableRaw
        ? ` Your personal cap leaves you ${short(cap.leftCoins)} token coins of it until ${isoDay(Date.parse(cap.resetsAt))}.`
        : '';
    summary = `You have ${parts.join(', ')} left${first?.expiresAt ? `; the first allowance ${first.renewsAt ? 'renews' : 'expires'} on ${isoDay(Date.parse(first.expiresAt))}` : ''}.${capped}`;
  }

  // Equivalents and forecast from the account's (or member's) own usage.
  const records = (await ctx.deps.charging.listUsage(accountId, { fromMs: now - 30 * DAY, toMs: now + 1 })).filter(
    (u) => memberId === null || u.memberId === memberId,
  );
  const rates = mixRates(ctx, records);
  const equivalents = { ...equivalentsOf(spendableCoins, rates), models: rates.models };
  const recent = records.filter((u) => u.settledAtMs >= now - FORECAST_DAYS * DAY);
  const burned = recent.reduce((s, u) => s + u.costCoins, 0);
  const firstAt = recent.reduce((m, u) => Math.min(m, u.settledAtMs), now);
  const spanDays = Math.max(1, Math.min(FORECAST_DAYS, (now - firstAt) / DAY));
  const perDay = burned / spanDays;
  const renewal = first?.expiresAt ? Date.parse(first.expiresAt) : null;
  let forecast: { coinsPerDay: number; basisDays: number; lastsUntil: string | null; beforeRenewal: boolean | null; text: string };
  if (perDay <= 0)
    forecast = {
      coinsPerDay: 0,
      basisDays: FORECAST_DAYS,
      lastsUntil: null,
      beforeRenewal: null,
      text: `No usage in the last ${FORECAST_DAYS} days, so no forecast yet.`,
    };
  else {
    const endMs = now + (spendableCoins / perDay) * DAY;
    const beforeRenewal = renewal === null ? null : endMs < renewal;
    const pace = `At this pace (about ${short(Math.round(perDay))} token coins a day)`;
    let text: string;
    if (spendableCoins === 0) text = `${pace}, nothing is left.`;
    else if (beforeRenewal === false)
      text = `${pace}, it lasts past ${dayMonth(renewal!, now)}, when the first allowance ${first?.renewsAt ? 'renews' : 'expires'}.`;
    else
      text = `${pace}, lasts until ${dayMonth(endMs, now)}${beforeRenewal === true ? `, before the first allowance ${first?.renewsAt ? 'renews' : 'expires'} on ${dayMonth(renewal!, now)}` : ''}.`;
    forecast = { coinsPerDay: Math.round(perDay), basisDays: FORECAST_DAYS, lastsUntil: iso(endMs), beforeRenewal, text };
  }
  return {
    accountId,
    memberId,
    asOf: iso(now),
    summary,
    plan: ent.plan,
    payg: paygOffer === undefined ? null : { subscriptionId: payg!.id, offerId: paygOffer.id, name: paygOffer.name },
    buckets,
    unitNote: coinNote(ctx),
    spendableCoins,
    equivalents,
    forecast,
    member: cap,
    wallet: { currency, balanceMinor: wallet, balance: fmtMoney(wallet, currency) },
    postpaid,
    overage,
    pastCap,
    points: await pointsBalance(ctx, accountId),
    features: ent.features,
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

/** Usage records of a range, as cents per day and model (what requests cost; plan fees and top-ups are not usage). */
async function usageCents(ctx: Ctx, accountId: string, memberId: string | null, fromMs: number, toMs: number) {
  const days = new Map<string, Map<string, number>>();
  let total = 0;
  for (const u of await ctx.deps.charging.listUsage(accountId, { fromMs, toMs })) {
    if (memberId !== null && u.memberId !== memberId) continue;
    if (u.settledAtMs < fromMs || u.settledAtMs >= toMs) continue;
    const day = isoDay(u.settledAtMs);
    const perModel = days.get(day) ?? new Map<string, number>();
    const cents = u.charges.reduce((s, c) => s + valueMajor(ctx, c.unit, c.amount) * 100, 0);
    perModel.set(u.model, (perModel.get(u.model) ?? 0) + cents);
    days.set(day, perModel);
    total += cents;
  }
  return { days, total };
}

/** What is left now, in major units: allowances at the wallet price, wallet money, and (postpaid) the phone-bill credit. */
function leftMajor(ctx: Ctx, bal: Awaited<ReturnType<typeof balanceView>>): number {
  return bal.buckets.reduce((s, b) => s + valueMajor(ctx, b.unit, b.left), 0) + bal.wallet.balanceMinor / 100 + (bal.postpaid?.leftMinor ?? 0) / 100;
}

/**
 * GET /v1/dashboard/billing/subscription as chat front-ends read it: they show hard_limit_usd - total_usage / 100
 * (usage of the month so far, /usage's default range) as what is left. So hard_limit_usd is what is left now plus
 * what requests cost this month. Amounts are in the account's currency (CNY), whatever the field names say.
 */
export async function legacySubscription(ctx: Ctx, accountId: string, memberId: string | null) {
  const bal = await balanceView(ctx, accountId, memberId);
  const now = ctx.now();
  const d = new Date(now);
  const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const used = (await usageCents(ctx, accountId, memberId, monthStart, now + 1)).total / 100;
  const total = leftMajor(ctx, bal) + used;
  const plan = bal.plan === null ? null : await ctx.deps.store.getSubscription(bal.plan.subscriptionId);
  const end = plan === null || plan === undefined ? null : subscriptionView(ctx, plan).currentPeriodEnd;
  return {
    object: 'billing_subscription',
    has_payment_method: true,
    canceled: false,
    canceled_at: null,
    delinquent: null,
    access_until: end === null ? 0 : Math.floor(Date.parse(end) / 1000),
    soft_limit: 0,
    hard_limit: 0,
    system_hard_limit: 0,
    soft_limit_usd: round2(total),
    hard_limit_usd: round2(total),
    system_hard_limit_usd: round2(total),
    plan: { title: bal.plan?.name ?? bal.payg?.name ?? 'Pay as you go', id: bal.plan?.offerId ?? bal.payg?.offerId ?? 'payg' },
    account_name: accountId,
    po_number: null,
    billing_email: null,
    tax_ids: null,
    billing_address: null,
    business_address: null,
  };
}

/** GET /v1/dashboard/billing/usage: what requests cost in [start_date, end_date), in cents; plan fees are not usage. */
export async function legacyUsage(ctx: Ctx, accountId: string, memberId: string | null, fromMs: number, toMs: number) {
  const { days, total } = await usageCents(ctx, accountId, memberId, fromMs, toMs);
  const daily = [...days.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([day, m]) => ({
      timestamp: Date.parse(`${day}T00:00:00Z`) / 1000,
      line_items: [...m.entries()].map(([name, cost]) => ({ name, cost: round2(cost) })),
    }));
  return { object: 'list', daily_costs: daily, total_usage: round2(total) };
}
