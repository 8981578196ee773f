/** Shared plumbing of the billing use cases: deps, error codes, the idempotent order runner (load, plan, apply: plan.ts). */
import { err, ok, sha256Hex, type Clock, type Err, type IdGenerator, type Random, type Result } from '../core/index.ts';
import type { Account, AccountStore } from '../accounts/index.ts';
import type { ModelCatalog } from '../catalog/index.ts';
import type { ChargingService } from '../charging/index.ts';
import type { BillingStore } from './store.ts';
import type { CarrierChannel } from './carrier.ts';
import type { Offer, OfferCatalog } from './types.ts';
import { KEY_TAKEN, runPlan, type PlanCtx } from './plan.ts';

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
}

export type BillingErrorCode = 'invalid' | 'not_found' | 'conflict' | 'idempotency_key_reused' | 'unprocessable' | 'payment_required' | 'permission_denied';
export type BR<T> = Result<T, BillingErrorCode>;

export const fail = (code: BillingErrorCode, message: string): Err<BillingErrorCode> => err(code, message);

export interface Ctx {
  deps: BillingDeps;
  now(): number;
  id(prefix: string): string;
  catalog(): OfferCatalog;
}

export function makeCtx(deps: BillingDeps): Ctx {
  return {
    deps,
    now: () => deps.clock.nowMs(),
    id: (prefix) => deps.ids.next(prefix),
    catalog: () => deps.offers(),
  };
}

export interface OrderSpec {
  /** Idempotency keys are unique per scope (an account, or `codes` for batches). */
  scope: string;
  idempotencyKey: string | null;
  /** Everything that defines the request: a replay with a different one is refused. */
  request: unknown;
}

export interface Outcome<T> {
  value: T;
  replayed: boolean;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Run an order: replay check, then `body` plans the order (plan.ts: it reads, and records what it would write),
 * then the plan applies in one store transaction with the outcome stored under the Idempotency-Key. `body` returns
 * an error Result to refuse: nothing is written. On a conflict (the account changed meanwhile) the order is planned
 * again on fresh reads; if another request stored the same key first, this one replays it. `stored` shapes what a
 * replay returns.
 */
export async function runOrder<T>(
  ctx: Ctx,
  spec: OrderSpec,
  body: (p: PlanCtx) => Promise<BR<T>>,
  stored: (v: T) => unknown = (v) => v,
): Promise<BR<Outcome<T>>> {
  const { store } = ctx.deps;
  const requestHash = sha256Hex(canonical(spec.request));
  for (let round = 0; round < 2; round++) {
    if (spec.idempotencyKey !== null) {
      const prior = await store.getIdempotency(spec.scope, spec.idempotencyKey);
      if (prior !== undefined) {
        if (prior.requestHash !== requestHash) {
          return err(
            'idempotency_key_reused',
            `Idempotency-Key ${spec.idempotencyKey} was already used with a different request; nothing was changed. Use a new key for a new order.`,
          );
        }
        return ok({ value: prior.response as T, replayed: true });
      }
    }
    const accounts = spec.scope.startsWith('account:') ? [spec.scope.slice('account:'.length)] : [];
    const r = await runPlan(ctx, accounts, body, (p, value) => {
      if (spec.idempotencyKey !== null)
        p.draft.putIdempotency({ scope: spec.scope, key: spec.idempotencyKey, requestHash, response: stored(value), createdAtMs: ctx.now() });
    });
    if (r.ok) return ok({ value: r.value, replayed: false });
    if (r.code === KEY_TAKEN && r.message === '') continue; // a concurrent duplicate stored the key first: replay it
    return r;
  }
  return fail('conflict', `Idempotency-Key ${spec.idempotencyKey} is being used by another request right now; try again.`);
}

export async function activeAccount(ctx: Ctx, accountId: string): Promise<BR<Account>> {
  const a = await ctx.deps.accounts.getAccount(accountId);
  if (a === undefined) return fail('not_found', `Account ${accountId} does not exist.`);
  if (a.status !== 'active') return fail('unprocessable', `Account ${accountId} is ${a.status}; reactivate it before ordering.`);
  return ok(a);
}

export function offerOnSale(ctx: Ctx, offerId: string): BR<Offer> {
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
