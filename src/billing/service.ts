/** createBillingService: the billing use cases over one set of deps (what the API and the CLI call). */
import { ok, TokenGridError } from '../core/index.ts';
import { AdminKeyRegistry } from './admin-keys.ts';
import { billCsv, draftBill, runBills } from './bills.ts';
import { deliverCarrierCharges } from './carrier-delivery.ts';
import { buyAddon, changePlan } from './changes.ts';
import { generateCodes, redeemCode } from './codes.ts';
import { fail, makeCtx, type BillingDeps, type BR, type Ctx } from './context.ts';
import { pointsBalance } from './payments.ts';
import { parsePeriod } from './periods.ts';
import { catchUpPlanned, renewDue, renewDueReport } from './renew.ts';
import { marginReport, vendorSettlement } from './reports.ts';
import { cancel, subscribe } from './subscriptions.ts';
import type { Bill, Order, Payment, Subscription } from './types.ts';
import { balanceView, entitlements, legacySubscription, legacyUsage, memberCapStatus, subscriptionView } from './views.ts';
import { credit, grantPoints, redeemPoints, refund, topUp } from './wallet-orders.ts';

export function createBillingService(deps: BillingDeps) {
  const ctx: Ctx = makeCtx(deps);
  const adminKeys = new AdminKeyRegistry({ store: deps.store, clock: deps.clock, ids: deps.ids, random: deps.random });
  /** Lazy renewal before reads, so what people see is current even if the timer is late. */
  const fresh = async (accountId: string): Promise<number> => {
    // The engine mints cycle buckets lazily (on the account's next request); renew now so balances show the new cycle.
    await deps.charging.renewDue();
    const r = await catchUpPlanned(ctx, accountId);
    // A busy account (re-plans ran out: another node kept winning it) answers 409, not 500 (atk-billing F4).
    if (!r.ok) {
      if (r.code === 'conflict') throw new TokenGridError('conflict', `Renewals of account ${accountId} could not be brought up to date: ${r.message}`);
      throw new Error(`renewals of ${accountId}: ${r.message}`);
    }
    return r.value;
  };
  return {
    ctx,
    adminKeys,
    offers: () => deps.offers(),
    subscribe: (i: Parameters<typeof subscribe>[1]) => subscribe(ctx, i),
    changePlan: (i: Parameters<typeof changePlan>[1]) => changePlan(ctx, i),
    cancel: (i: Parameters<typeof cancel>[1]) => cancel(ctx, i),
    buyAddon: (i: Parameters<typeof buyAddon>[1]) => buyAddon(ctx, i),
    topUp: (i: Parameters<typeof topUp>[1]) => topUp(ctx, i),
    refund: (i: Parameters<typeof refund>[1]) => refund(ctx, i),
    credit: (i: Parameters<typeof credit>[1]) => credit(ctx, i),
    generateCodes: (i: Parameters<typeof generateCodes>[1]) => generateCodes(ctx, i),
    redeemCode: (i: Parameters<typeof redeemCode>[1]) => redeemCode(ctx, i),
    redeemPoints: (i: Parameters<typeof redeemPoints>[1]) => redeemPoints(ctx, i),
    grantPoints: (i: Parameters<typeof grantPoints>[1]) => grantPoints(ctx, i),
    pointsBalance: (accountId: string) => pointsBalance(ctx, accountId),
    renewDue: () => renewDue(ctx),
    /** The operator's renewal run: per-account failures listed and logged, never thrown. */
    renewDueReport: () => renewDueReport(ctx),
    catchUp: fresh,
    runBills: (period: string) => runBills(ctx, period),
    deliverCarrierCharges: () => deliverCarrierCharges(ctx),
    getBill: (id: string): Promise<Bill | undefined> => deps.store.getBill(id),
    listBills: (q: { accountId?: string; period?: string }): Promise<Bill[]> => deps.store.listBills(q),
    billCsv,
    /** The current (or any) period's bill as it stands now, not stored. */
    async previewBill(accountId: string, period: string): Promise<BR<Bill>> {
      const p = parsePeriod(period);
      if (p === undefined) return fail('invalid', `period must be a month like 2026-11, got ${JSON.stringify(period)}`);
      const existing = await deps.store.findBill(accountId, period);
      if (existing !== undefined) return ok(existing);
      await fresh(accountId);
      const d = await draftBill(ctx, accountId, p);
      return ok(
        d?.bill ?? {
          id: '',
          accountId,
          period,
          periodStartMs: p.startMs,
          periodEndMs: p.endMs,
          currency: deps.offers().currency,
          status: 'final',
          lines: [],
          usage: [],
          payments: [],
          totalMinor: 0,
          prepaidMinor: 0,
          phoneBillMinor: 0,
          unpaidMinor: 0,
          createdAtMs: ctx.now(),
        },
      );
    },
    vendorSettlement: (fromMs: number, toMs: number) => vendorSettlement(ctx, fromMs, toMs),
    async marginReport(period: string) {
      const p = parsePeriod(period);
      if (p === undefined) return fail('invalid', `period must be a month like 2026-11, got ${JSON.stringify(period)}`);
      return ok(await marginReport(ctx, p));
    },
    getOrder: (id: string): Promise<Order | undefined> => deps.store.getOrder(id),
    listOrders: (q: { accountId?: string; fromMs?: number; toMs?: number }): Promise<Order[]> => deps.store.listOrders(q),
    listPayments: (q: { accountId?: string; orderId?: string; billId?: string }): Promise<Payment[]> => deps.store.listPayments(q),
    getSubscription: (id: string): Promise<Subscription | undefined> => deps.store.getSubscription(id),
    listSubscriptions: (q: { accountId?: string; live?: boolean }): Promise<Subscription[]> => deps.store.listSubscriptions(q),
    subscriptionView: (s: Subscription) => subscriptionView(ctx, s),
    async entitlements(accountId: string) {
      await fresh(accountId);
      return entitlements(ctx, accountId);
    },
    async balance(accountId: string, memberId: string | null) {
      await fresh(accountId);
      return balanceView(ctx, accountId, memberId);
    },
    /** A member's cap this cycle, in token coins (self-service and console). */
    memberCap: (accountId: string, memberId: string) => memberCapStatus(ctx, accountId, memberId),
    async legacySubscription(accountId: string, memberId: string | null) {
      await fresh(accountId);
      return legacySubscription(ctx, accountId, memberId);
    },
    async legacyUsage(accountId: string, memberId: string | null, fromMs: number, toMs: number) {
      await fresh(accountId);
      return legacyUsage(ctx, accountId, memberId, fromMs, toMs);
    },
    listCodeBatches: () => deps.store.listCodeBatches(),
    async codeBatch(id: string) {
      const b = await deps.store.getCodeBatch(id);
      return b === undefined ? undefined : { ...b, redeemed: await deps.store.countRedeemed(id) };
    },
  };
}

export type BillingService = ReturnType<typeof createBillingService>;
