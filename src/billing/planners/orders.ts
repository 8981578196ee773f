/**
 * The billing planners as pure functions of a loaded view (issue 14 item 1): `(view, input, ids) => Result<{ plan,
 * value }>`, no await, no store, no clock but view.nowMs, ids from the injected source. Each runs its use case's
 * decide function (`decide*` in the use case's file: the logic, on a PlanCtx over the view) on a fresh sheet and
 * closes it into a BillingPlan: rows, ChargingOps, the account versions the view was loaded at. The use cases
 * (topUp, subscribe, ...) are loadView -> these -> BillingStore.apply, planned again on a conflict (plan.ts).
 */
import { ok } from '../../core/index.ts';
import type { Random } from '../../core/index.ts';
import type { BR } from '../context.ts';
import type { BillingView } from '../view.ts';
import { decideAddon, decideChange, type AddonInput, type ChangeInput, type ChangeResult } from '../changes.ts';
import { decideCodeBatch, decideRedeem, type GenerateInput, type GeneratedBatch, type RedeemInput, type RedeemResult } from '../codes.ts';
import { decideBill, type BillOutcome } from '../bills.ts';
import type { Period } from '../periods.ts';
import { catchUpAccount } from '../renew.ts';
import { decideCancel, decideSubscribe, type CancelInput, type SubscribeInput, type SubscriptionResult } from '../subscriptions.ts';
import type { Order } from '../types.ts';
import {
  decideCredit,
  decideGrantPoints,
  decideRedeemPoints,
  decideRefund,
  decideTopUp,
  type CreditInput,
  type GrantPointsInput,
  type PointsRedeemInput,
  type PointsRedeemResult,
  type RefundInput,
  type TopUpInput,
  type TopUpResult,
} from '../wallet-orders.ts';
import { planWith, type IdSource, type Planned } from './sheet.ts';

type P<T> = BR<Planned<T>>;

export const planTopUp = (view: BillingView, i: TopUpInput, ids: IdSource): P<TopUpResult> =>
  planWith(view, ids, (p) => decideTopUp(p, i, i.currency ?? view.catalog.currency, i.channel ?? 'external'));
export const planRefund = (view: BillingView, i: RefundInput, ids: IdSource): P<Order> => planWith(view, ids, (p) => decideRefund(p, i));
export const planCredit = (view: BillingView, i: CreditInput, ids: IdSource): P<Order> => planWith(view, ids, (p) => decideCredit(p, i, i.channel ?? 'wallet'));
export const planRedeemPoints = (view: BillingView, i: PointsRedeemInput, ids: IdSource): P<PointsRedeemResult> =>
  planWith(view, ids, (p) => decideRedeemPoints(p, i));
export const planGrantPoints = (view: BillingView, i: GrantPointsInput, ids: IdSource) => planWith(view, ids, (p) => decideGrantPoints(p, i));
export const planSubscribe = (view: BillingView, i: SubscribeInput, ids: IdSource): P<SubscriptionResult> => planWith(view, ids, (p) => decideSubscribe(p, i));
export const planCancel = (view: BillingView, i: CancelInput, ids: IdSource): P<SubscriptionResult> => planWith(view, ids, (p) => decideCancel(p, i));
export const planChange = (view: BillingView, i: ChangeInput, ids: IdSource): P<ChangeResult> =>
  planWith(view, ids, (p) => decideChange(p, i, view.accountId!));
export const planAddOn = (view: BillingView, i: AddonInput, ids: IdSource): P<SubscriptionResult> => planWith(view, ids, (p) => decideAddon(p, i));
/** `hash`: the code's hash (codes.ts hashCode of the normalized code); the view was loaded with needs.codeHash. */
export const planRedeem = (view: BillingView, hash: string, i: RedeemInput, ids: IdSource): P<RedeemResult> =>
  planWith(view, ids, (p) => decideRedeem(p, i, hash));
export const planCodeBatch = (view: BillingView, i: GenerateInput, random: Random, ids: IdSource): P<GeneratedBatch> =>
  planWith(view, ids, (p) => decideCodeBatch(p, i, random));
/** The account's subscriptions caught up to view.nowMs: renewal orders, lapses, deferred schedules. */
export const planRenew = (view: BillingView, ids: IdSource): P<number> => planWith(view, ids, (p) => ok(catchUpAccount(p, view.accountId!)));
/** The account's bill for a period (the view loaded with needs.usage of the period): existing, skipped or created. */
export const planBill = (view: BillingView, period: Period, ids: IdSource): P<BillOutcome> =>
  planWith(view, ids, (p) => decideBill(p, view.accountId!, period));
