/** Shared plumbing of the billing use cases: deps, error codes, account and offer checks (the order runner is in plan.ts). */
import { err, ok, type Clock, type Err, type IdGenerator, type Random, type Result } from '../core/index.ts';
import type { Account, AccountStore } from '../accounts/index.ts';
import type { ModelCatalog } from '../catalog/index.ts';
import type { ChargingService } from '../charging/index.ts';
import type { BillingStore } from './store.ts';
import type { CarrierChannel } from './carrier.ts';
import type { Offer, OfferCatalog } from './types.ts';

export interface BillingDeps {
  store: BillingStore;
  charging: ChargingService;
  accounts: AccountStore;
  clock: Clock;
  ids: IdGenerator;
  random: Random;
  offers: () => OfferCatalog;
  /** The model catalog: vendors and list costs for settlement when a usage record carries no vendor cost. */
  models?: () => ModelCatalog;
  /** Where phone-bill charges go at each bill run (file export, webhook). */
  carrier?: CarrierChannel;
  /** Tokens the rating engine sells per major currency unit (wallet price), for plain-terms balances. */
  walletCoinsPerUnit?: number;
  /**
   * Whether the account has a phone-bill channel (a linked phone, or a carrier billing arrangement the operator
   * set up). Self-service orders on the phone bill are refused without one (issue 12, attacker finding F2).
   */
  phoneBillChannel?: (accountId: string) => boolean;
  /** Where failures the use cases survive (a renewal that failed for one account) are logged. */
  log?: (level: 'error' | 'warn' | 'info', obj: Record<string, unknown>, msg: string) => void;
  /** Called once per account whose renewal failed in a renewal run (the composition root counts it in /metrics). */
  onRenewalFailure?: (f: { accountId: string; stage: 'allowance' | 'subscription' }) => void;
  /**
   * Test seam: flip a planner rule (billing.prop.test.ts plants a bug this way and shows the reference model
   * catches it). Production never sets it.
   */
  rules?: Partial<PlannerRules>;
}

/** Planner rules a test can flip (see BillingDeps.rules); the defaults are the product's rules. */
export interface PlannerRules {
  /** The new plan's price for the rest of the cycle on an upgrade rounds up (the house never undercharges). */
  upgradeChargeRounding: 'ceil' | 'floor';
  /** A full refund of what paid for the running cycle ends the subscription and takes its allowance back. */
  fullRefundEndsSubscription: boolean;
}

export const PLANNER_RULES: PlannerRules = { upgradeChargeRounding: 'ceil', fullRefundEndsSubscription: true };

export type BillingErrorCode = 'invalid' | 'not_found' | 'conflict' | 'idempotency_key_reused' | 'unprocessable' | 'payment_required' | 'permission_denied';
export type BR<T> = Result<T, BillingErrorCode>;

export const fail = (code: BillingErrorCode, message: string): Err<BillingErrorCode> => err(code, message);

export interface Ctx {
  deps: BillingDeps;
  now(): number;
  id(prefix: string): string;
  catalog(): OfferCatalog;
  rules: PlannerRules;
}

export function makeCtx(deps: BillingDeps): Ctx {
  return {
    deps,
    now: () => deps.clock.nowMs(),
    id: (prefix) => deps.ids.next(prefix),
    catalog: () => deps.offers(),
    rules: { ...PLANNER_RULES, ...deps.rules },
  };
}

/** What planners and the rows they make need of a context: the clock's now, ids, the catalog, the rules. */
export type Basics = Pick<Ctx, 'now' | 'id' | 'catalog' | 'rules'>;

/** The view's account must exist and be active to order. */
export function activeAccount(ctx: { view: { account: Account | undefined } }, accountId: string): BR<Account> {
  const a = ctx.view.account?.id === accountId ? ctx.view.account : undefined;
  if (a === undefined) return fail('not_found', `Account ${accountId} does not exist.`);
  if (a.status !== 'active') return fail('unprocessable', `Account ${accountId} is ${a.status}; reactivate it before ordering.`);
  return ok(a);
}

export function offerOnSale(ctx: Pick<Ctx, 'catalog'>, offerId: string): BR<Offer> {
  const o = ctx.catalog().offers.get(offerId);
  if (o === undefined) {
    const ids = [...ctx.catalog().offers.values()].filter((x) => x.status === 'active').map((x) => x.id);
    return fail('not_found', `Unknown offer ${offerId}. Offers on sale: ${ids.slice(0, 30).join(', ')}${ids.length > 30 ? ', ...' : ''} (GET /admin/offers).`);
  }
  if (o.status !== 'active') return fail('unprocessable', `Offer ${offerId} is retired and no longer sold.`);
  return ok(o);
}

export function fmtMoney(minor: number, currency = 'CNY'): string {
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')} ${currency}`;
}
