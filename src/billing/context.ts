/** Shared plumbing of the billing use cases: deps, error codes, the idempotent atomic order runner. */
import { err, ok, sha256Hex, type Clock, type Err, type IdGenerator, type Random, type Result } from '../core/index.ts';
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
}

export type BillingErrorCode = 'invalid' | 'not_found' | 'conflict' | 'idempotency_key_reused' | 'unprocessable' | 'payment_required' | 'permission_denied';
export type BR<T> = Result<T, BillingErrorCode>;

export const fail = (code: BillingErrorCode, message: string): Err<BillingErrorCode> => err(code, message);

export interface Ctx {
  deps: BillingDeps;
  now(): number;
  id(prefix: string): string;
  catalog(): OfferCatalog;
  /** Runs fn after every earlier serialized call finished: one order at a time per process. */
  serial<T>(fn: () => Promise<T>): Promise<T>;
}

export function makeCtx(deps: BillingDeps): Ctx {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    deps,
    now: () => deps.clock.nowMs(),
    id: (prefix) => deps.ids.next(prefix),
    catalog: () => deps.offers(),
    serial<T>(fn: () => Promise<T>): Promise<T> {
      const run = tail.then(fn, fn);
      tail = run.catch(() => undefined);
      return run;
    },
  };
}

/** Thrown inside `atomically` to roll back on an expected failure found after the first write. */
class Abort {
  constructor(readonly error: Err<BillingErrorCode>) {}
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
 * Run an order: replay check, then `body` inside one store transaction, storing the outcome under the
 * Idempotency-Key in the same transaction. `body` returns an error Result to refuse (nothing is written when
 * it refuses before its first write; later refusals roll back). `stored` shapes what a replay returns.
 */
export function runOrder<T>(ctx: Ctx, spec: OrderSpec, body: () => Promise<BR<T>>, stored: (v: T) => unknown = (v) => v): Promise<BR<Outcome<T>>> {
  return ctx.serial(async () => {
    const { store } = ctx.deps;
    const requestHash = sha256Hex(canonical(spec.request));
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
    try {
      return await store.atomically(async () => {
        const r = await body();
        if (!r.ok) throw new Abort(r);
        if (spec.idempotencyKey !== null) {
          await store.putIdempotency({ scope: spec.scope, key: spec.idempotencyKey, requestHash, response: stored(r.value), createdAtMs: ctx.now() });
        }
        return ok({ value: r.value, replayed: false });
      });
    } catch (e) {
      if (e instanceof Abort) return e.error;
      throw e;
    }
  });
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
