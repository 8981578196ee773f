/** Shared pieces of the billing admin and self-service routes: deps, Idempotency-Key, views, money input. */
import { z } from 'zod';
import { TokenGridError, parseDecimalMinor, type Clock, type Result } from '../../core/index.ts';
import type { AccountDeps } from '../../accounts/index.ts';
import type { ChargingService } from '../../charging/index.ts';
import type { Bill, BillingService, BR, Order, Outcome, Subscription } from '../../billing/index.ts';
import { sendJson } from '../http.ts';
import type { RouteContext } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { failWith, isoOrNull, requireAccountAccess } from './common.ts';

export interface BillingRouteDeps {
  accounts: AccountDeps;
  charging: ChargingService;
  clock: Clock;
  bodyLimitBytes: number;
  billing: BillingService;
  /** Re-read the offer catalog file (hot reload); the error lists every problem, the old catalog stays. */
  reloadOffers: () => Result<{ version: string; offers: number; warnings: string[] }, string>;
  offersFile: string;
}

export const HEADER_IDEMPOTENCY = 'idempotency-key';

/** The Idempotency-Key header: required for orders (a retry with the same key and body replays the answer). */
export function idempotencyKey(rc: RouteContext, required = true): string | null {
  const v = rc.req.headers[HEADER_IDEMPOTENCY];
  if (typeof v !== 'string' || v.length === 0) {
    if (!required) return null;
    throw new TokenGridError(
      'invalid_request',
      'Send an Idempotency-Key header (a unique string such as a UUID) with every order; a retry with the same key and body returns the first answer and changes nothing.',
      'Idempotency-Key',
    );
  }
  if (v.length > 200 || !/^[\x21-\x7e]+$/.test(v))
    throw new TokenGridError('invalid_request', 'Idempotency-Key must be 1 to 200 visible ASCII characters.', 'Idempotency-Key');
  return v;
}

export function unwrap<T>(r: BR<Outcome<T>>): Outcome<T> {
  if (!r.ok) failWith(r.code, r.message);
  return r.value;
}

export function value<T>(r: BR<T>): T {
  if (!r.ok) failWith(r.code, r.message);
  return r.value;
}

export function sendOutcome(rc: RouteContext, status: number, body: unknown, replayed: boolean): void {
  sendJson(rc.res, status, body, replayed ? { 'idempotent-replayed': 'true' } : {});
}

export const actorOf = (admin: AdminIdentity): string => `admin:${admin.id}`;

export const dec = (minor: number): string => `${minor < 0 ? '-' : ''}${Math.floor(Math.abs(minor) / 100)}.${String(Math.abs(minor) % 100).padStart(2, '0')}`;

export const orderView = (o: Order) => ({
  ...o,
  amount: dec(o.amountMinor),
  effectiveAt: isoOrNull(o.effectiveAtMs),
  createdAt: isoOrNull(o.createdAtMs),
  lines: o.lines.map((l) => ({ ...l, amount: dec(l.amountMinor) })),
});

export const billView = (b: Bill) => ({
  ...b,
  periodStart: isoOrNull(b.periodStartMs),
  periodEnd: isoOrNull(b.periodEndMs),
  createdAt: isoOrNull(b.createdAtMs),
  total: dec(b.totalMinor),
  prepaid: dec(b.prepaidMinor),
  phoneBill: dec(b.phoneBillMinor),
  unpaid: dec(b.unpaidMinor),
  lines: b.lines.map((l) => ({ ...l, amount: dec(l.amountMinor) })),
  payments: b.payments.map((p) => ({ ...p, amount: dec(p.amountMinor), at: isoOrNull(p.atMs) })),
});

export function subscriptionBody(billing: BillingService, s: Subscription, order?: Order): Record<string, unknown> {
  return { ...billing.subscriptionView(s), ...(order === undefined ? {} : { order: orderView(order) }) };
}

/** "10.00" or 10 (major units) or amountMinor (integer minor units): exactly one. */
export const moneyInput = {
  amount: z.union([z.string().max(32), z.number()]).optional(),
  amountMinor: z.number().int().optional(),
};

export function minorFrom(body: { amount?: string | number; amountMinor?: number }): number {
  if ((body.amount === undefined) === (body.amountMinor === undefined))
    throw new TokenGridError('invalid_request', 'give exactly one of amount (like "10.00") or amountMinor (integer fen)', 'amount');
  if (body.amountMinor !== undefined) return body.amountMinor;
  const minor = parseDecimalMinor(String(body.amount).trim(), 100);
  if (minor === undefined)
    throw new TokenGridError('invalid_request', `amount must be a decimal with at most 2 places, like "10.00"; got ${JSON.stringify(body.amount)}`, 'amount');
  return minor;
}

export function accessGuard(deps: BillingRouteDeps) {
  const parentOf = async (id: string) => (await deps.accounts.store.getAccount(id))?.parentId;
  return async (admin: AdminIdentity, accountId: string): Promise<void> => {
    await requireAccountAccess(admin, accountId, parentOf);
    if ((await deps.accounts.store.getAccount(accountId)) === undefined) throw new TokenGridError('not_found', `Account ${accountId} does not exist.`);
  };
}

export function parseDate(q: URLSearchParams, name: string, fallbackMs: number): number {
  const v = q.get(name);
  if (v === null || v === '') return fallbackMs;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(ms)) throw new TokenGridError('invalid_request', `${name} must be a date like 2026-11-01 or an ISO time`, name);
  return ms;
}
