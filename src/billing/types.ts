/**
 * Public types of the billing module (issue 5): offers (the catalog), subscriptions, orders, payments,
 * redemption codes, points, bills, admin keys, and the BillingStore port.
 * Money: integer MINOR units (CNY fen). Time: epoch ms from the injected Clock.
 */
import type { KeyLimits } from '../accounts/index.ts';
import type { BucketKind, CycleUnit, OveragePolicy } from '../charging/index.ts';

// ---------------------------------------------------------------- offers

export type OfferType = 'plan' | 'pack' | 'trial' | 'payg' | 'addon';
export type AllowanceUnit = 'tokens' | 'requests' | 'money';
export type PaymentChannel = 'wallet' | 'phone_bill' | 'external';

export interface Allowance {
  unit: AllowanceUnit;
  /** Tokens (coins), requests, or money minor units. */
  amount: number;
}

export interface Offer {
  id: string;
  name: string;
  description: string;
  type: OfferType;
  /** Per cycle for plans and renewing add-ons, once for packs/trials/one-time add-ons; per seat when `seats` is set. */
  priceMinor: number;
  currency: string;
  /** Plans and renewing add-ons (add-ons follow their plan's cycle). */
  cycle: CycleUnit | null;
  /** Packs, trials and one-time add-ons bought without a plan: days the allowance lasts. */
  validityDays: number | null;
  /** Per cycle (plans), once (packs); per seat when `seats` is set. Null: no allowance (feature add-ons, payg). */
  allowance: Allowance | null;
  /** Model ids or model group names the allowance pays for; null = every model. */
  models: string[] | null;
  /** Requested model id or glob (`claude-*`) -> the package's model, so agents' hard-coded ids work (optional). */
  modelMap?: Record<string, string>;
  rateLimits: KeyLimits;
  /** Applied to the account while the offer is active (plans and payg). */
  overage: OveragePolicy;
  creditLimitMinor: number;
  /** Pay-as-you-go: tokens sold per 1 major currency unit (informational; the engine's rate table charges). */
  paygTokensPerUnit: number | null;
  qos: string;
  /** Data residency: the regions the account's requests must be served in (plans, payg); absent: anywhere. */
  regions?: string[];
  trialOnce: boolean;
  seats: { min: number; max: number } | null;
  /** Family plans: most members the account may have. */
  members: number | null;
  /** Add-ons: the feature switched on (security_pack, broadband_speedup, seat, tokens). */
  feature: string | null;
  /** Add-ons: renews with the plan each cycle (true) or lasts the current cycle only (false). */
  renews: boolean;
  /** Add-ons: plan offer ids it may be bought with; null = any plan (or none for one-time add-ons). */
  appliesTo: string[] | null;
  /** Extra seats granted per unit bought (seat add-ons). */
  seatsAdded: number;
  rollover: boolean;
  /** Default payment channel for orders of this offer. */
  channel: PaymentChannel;
  /** Retired offers are not sold; existing subscriptions keep running. */
  status: 'active' | 'retired';
  source: string | null;
  /** Field names whose values are assumptions (not public market figures). */
  assumed: string[];
}

export interface PointsRules {
  /** Points earned per major currency unit paid for orders. */
  earnPerUnit: number;
  tokensPerPoint: number;
  minRedeem: number;
  validityDays: number;
}

export interface OfferCatalog {
  version: string;
  currency: string;
  offers: ReadonlyMap<string, Offer>;
  points: PointsRules;
  limits: {
    topupMaxMinor: number;
    codesPerBatchMax: number /** Self-service phone-bill credit per account per month (default 200.00). */;
    phoneBillMonthlyMinor?: number;
  };
  /** Non-fatal findings (unknown models, payg rate that differs from the engine's). */
  warnings: string[];
}

// ---------------------------------------------------------------- subscriptions

export type SubscriptionStatus = 'active' | 'past_due' | 'canceled' | 'expired';

/** A run of cycles on one offer: [fromIndex, next term's fromIndex). Charging schedules implement it. */
export interface Term {
  fromIndex: number;
  offer: Offer;
  quantity: number;
  /** sourceRef of the term's allowance schedule (its buckets are `<ref>#<n>`): sub:<subId>:<offerId>:<orderId>. */
  ref: string;
  /** First cycle the schedule covers when later than fromIndex (mid-cycle upgrades and add-ons: prorated grant first). */
  scheduleFromIndex?: number;
  scheduleId: string | null;
  /** False while the schedule waits for its first cycle to start (a re-anchor would shift clamped dates). */
  scheduled: boolean;
}

export interface Subscription {
  id: string;
  accountId: string;
  /** The offer in force now (for plans: the current term's offer). */
  offerId: string;
  type: OfferType;
  /** Renewing add-ons: the plan subscription they belong to. */
  parentId: string | null;
  status: SubscriptionStatus;
  /** Recurring: cycle 0 starts here; cycles keep the anchor's day of month (31st, Feb 29 clamped). */
  anchorMs: number;
  cycle: CycleUnit | null;
  quantity: number;
  terms: Term[];
  /** Last cycle index whose fee has an order (0 = the subscribe order). */
  renewedThroughIndex: number;
  /** Cycles from this index on do not happen (cancel at cycle end, lapse after an unpaid renewal). */
  endIndex: number | null;
  endReason: 'canceled' | 'unpaid' | 'parent_ended' | 'refunded' | null;
  /** One-time offers: when the allowance ends. */
  expiresAtMs: number | null;
  endedAtMs: number | null;
  channel: PaymentChannel;
  createdAtMs: number;
  updatedAtMs: number;
}

// ---------------------------------------------------------------- orders, payments

export type OrderType = 'subscribe' | 'renew' | 'upgrade' | 'downgrade' | 'cancel' | 'addon' | 'topup' | 'redeem_code' | 'redeem_points' | 'refund' | 'credit';

export type LineKind = 'subscription' | 'addon' | 'pack' | 'proration' | 'usage' | 'refund' | 'credit' | 'code' | 'points';

export interface OrderLine {
  kind: LineKind;
  description: string;
  quantity: number;
  amountMinor: number;
  offerId: string | null;
}

export type OrderStatus = 'completed' | 'unpaid' | 'scheduled';
export type PaidBy = PaymentChannel | 'code' | 'points' | 'none';

export interface Order {
  id: string;
  accountId: string;
  type: OrderType;
  status: OrderStatus;
  offerId: string | null;
  subscriptionId: string | null;
  lines: OrderLine[];
  /** Sum of the lines (negative for refunds and credits). */
  amountMinor: number;
  currency: string;
  paidBy: PaidBy;
  /** Who: `admin:<id>`, `key:<id>` or `system`. */
  actor: string;
  idempotencyKey: string | null;
  /** The moment the order counts for (renewals: the cycle start). Bills are folded by it. */
  effectiveAtMs: number;
  createdAtMs: number;
  /** Set once, when a final bill includes the order. */
  billId: string | null;
  details: Record<string, string | number | boolean | null>;
}

export type PaymentStatus = 'succeeded' | 'deferred' | 'unpaid' | 'pending' | 'submitted' | 'failed' | 'refunded';

export interface Payment {
  id: string;
  accountId: string;
  orderId: string | null;
  billId: string | null;
  channel: PaymentChannel | 'code' | 'points';
  /** Positive: money taken from the customer (or owed); negative: money given back. */
  amountMinor: number;
  currency: string;
  status: PaymentStatus;
  /** Carrier reference, webhook answer, file name, or the payer's reference. */
  reference: string | null;
  attempts: number;
  createdAtMs: number;
  updatedAtMs: number;
}

// ---------------------------------------------------------------- codes, points

export interface CodeBatch {
  id: string;
  offerId: string;
  offer: Offer;
  count: number;
  note: string | null;
  createdBy: string;
  createdAtMs: number;
  expiresAtMs: number | null;
}

export interface CodeRecord {
  /** sha256 of the normalized code: the code itself is never stored. */
  hash: string;
  batchId: string;
  /** The first 4 characters, for support look-ups. */
  hint: string;
  redeemedBy: string | null;
  redeemedAtMs: number | null;
  orderId: string | null;
}

export interface PointsEntry {
  id: string;
  accountId: string;
  /** Positive: earned/granted; negative: redeemed. */
  points: number;
  reason: string;
  orderId: string | null;
  atMs: number;
}

// ---------------------------------------------------------------- bills

export interface BillLine {
  kind: LineKind;
  description: string;
  quantity: number;
  amountMinor: number;
  paidBy: PaidBy | 'unpaid';
  orderId: string | null;
  offerId: string | null;
  model: string | null;
}

export interface BillUsageRow {
  model: string;
  requests: number;
  tokensInput: number;
  tokensOutput: number;
  /** Token coins paid by allowances (tokens buckets). */
  coinsFromAllowances: number;
  requestsFromAllowances: number;
  /** Money paid by money allowances (credit plans, money packs): covered, not billed. */
  moneyFromAllowancesMinor: number;
  /** Money charged to the wallet and the postpaid line. */
  walletMinor: number;
  postpaidMinor: number;
}

export interface Bill {
  id: string;
  accountId: string;
  /** Calendar month, UTC: YYYY-MM. */
  period: string;
  periodStartMs: number;
  periodEndMs: number;
  currency: string;
  status: 'final';
  lines: BillLine[];
  usage: BillUsageRow[];
  /** Wallet top-ups and other payments received in the period (not charges). */
  payments: { paymentId: string; channel: string; amountMinor: number; status: PaymentStatus; atMs: number; orderId: string | null }[];
  totalMinor: number;
  /** Already paid: wallet, external, code, points. */
  prepaidMinor: number;
  /** To be charged to the phone bill. */
  phoneBillMinor: number;
  /** Owed and not paid by any channel (failed wallet renewals). */
  unpaidMinor: number;
  createdAtMs: number;
}

// ---------------------------------------------------------------- admin keys, idempotency

export type AdminRole = 'operator' | 'enterprise' | 'finance';

export interface AdminKeyRecord {
  id: string;
  name: string;
  role: AdminRole;
  accountIds: string[] | null;
  hash: string;
  prefix: string;
  createdBy: string;
  createdAtMs: number;
  revokedAtMs: number | null;
}

export interface IdempotencyRecord {
  scope: string;
  key: string;
  requestHash: string;
  /** The stored outcome, replayed as is. */
  response: unknown;
  createdAtMs: number;
}

/** Bucket kinds billing creates for each offer type. */
export const BUCKET_KIND: Record<OfferType, BucketKind> = {
  plan: 'plan_allowance',
  pack: 'plan_allowance',
  trial: 'trial',
  payg: 'manual',
  addon: 'addon',
};
