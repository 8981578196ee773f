/**
 * Bills: a fold over the period's orders (by effectiveAtMs) and usage records (by settledAtMs), per account
 * and calendar month (UTC). A bill run is safe to re-run: an account's bill for a period is created once and
 * never changes; each order is marked with the one bill that includes it; a correction after that is a new
 * order (refund, credit) that lands on a later bill.
 */
import { ok } from '../core/index.ts';
import { fail, type Basics, type BR, type Ctx } from './context.ts';
import type { UsageRecord } from '../charging/index.ts';
import type { OrderQuery, PaymentQuery } from './store.ts';
import { deliverCarrierCharges } from './carrier-delivery.ts';
import { newPayment, restoreCreditLine } from './payments.ts';
import { iso, parsePeriod, periodOf, type Period } from './periods.ts';
import { renewDue } from './renew.ts';
import { planner, runPlan, type PlanCtx } from './plan.ts';
import type { Bill, BillLine, BillUsageRow, Order, PaidBy, Payment } from './types.ts';

const PREPAID = new Set<BillLine['paidBy']>(['wallet', 'external', 'code', 'points', 'none']);

export interface Draft {
  bill: Bill;
  orders: Order[];
}

/** What a bill is folded from: the account's bills, its orders (any order), their payments, the period's usage. */
export interface BillReads {
  listBills(q: { accountId: string }): Bill[];
  listOrders(q: OrderQuery): Order[];
  listPayments(q: PaymentQuery): Payment[];
  usage: UsageRecord[];
}

/** The bill an account would get for a period now (not stored). Null when the period holds nothing for it. */
export async function draftBill(ctx: Ctx, accountId: string, p: Period): Promise<Draft | null> {
  const { store, charging } = ctx.deps;
  const bills = await store.listBills({ accountId });
  const orders = await store.listOrders({ accountId, unbilled: true, toMs: p.endMs });
  const payments = await store.listPayments({ accountId });
  const usage = await charging.listUsage(accountId, { fromMs: p.startMs, toMs: p.endMs });
  const match = <T>(xs: T[], f: (x: T) => boolean): T[] => xs.filter(f);
  return billFrom(ctx, accountId, p, {
    listBills: () => bills,
    listOrders: (q) => match(orders, (o) => (q.toMs === undefined || o.effectiveAtMs < q.toMs) && (!q.unbilled || o.billId === null)),
    listPayments: (q) => match(payments, (x) => x.orderId === q.orderId),
    usage,
  });
}

/** The bill, folded (pure) from what `reads` answers. */
export function billFrom(ctx: Basics, accountId: string, p: Period, store: BillReads): Draft | null {
  const billed = new Set(store.listBills({ accountId }).map((b) => b.period));
  // Orders of this period, plus any straggler dated in a period whose bill was already final.
  const orders = store
    .listOrders({ accountId, unbilled: true, toMs: p.endMs })
    .filter((o) => o.effectiveAtMs >= p.startMs || billed.has(periodOf(o.effectiveAtMs)));
  const lines: BillLine[] = [];
  const payments: Bill['payments'] = [];
  let phoneTopUps = 0;
  for (const o of orders) {
    if (o.lines.length === 0 && o.amountMinor !== 0) {
      // A top-up or a money card: money in, not a charge.
      const pay = store.listPayments({ orderId: o.id })[0];
      payments.push({
        paymentId: pay?.id ?? o.id,
        channel: o.paidBy,
        amountMinor: o.amountMinor,
        status: pay?.status ?? 'succeeded',
        atMs: o.effectiveAtMs,
        orderId: o.id,
      });
      if (o.paidBy === 'phone_bill') phoneTopUps += o.amountMinor;
      continue;
    }
    const paidBy: BillLine['paidBy'] = o.status === 'unpaid' ? 'unpaid' : o.paidBy;
    for (const l of o.lines)
      lines.push({
        kind: l.kind,
        description: l.description,
        quantity: l.quantity,
        amountMinor: l.amountMinor,
        paidBy,
        orderId: o.id,
        offerId: l.offerId,
        model: null,
      });
  }
  const usage = new Map<string, BillUsageRow & { walletRequests: number; postpaidRequests: number }>();
  for (const u of store.usage) {
    let row = usage.get(u.model);
    if (row === undefined) {
      row = {
        model: u.model,
        requests: 0,
        tokensInput: 0,
        tokensOutput: 0,
        coinsFromAllowances: 0,
        requestsFromAllowances: 0,
        moneyFromAllowancesMinor: 0,
        walletMinor: 0,
        postpaidMinor: 0,
        walletRequests: 0,
        postpaidRequests: 0,
      };
      usage.set(u.model, row);
    }
    row.requests++;
    row.tokensInput += u.usage.tokensInput;
    row.tokensOutput += u.usage.tokensOutput;
    let wallet = false;
    let postpaid = false;
    for (const c of u.charges) {
      if (c.unit === 'tokens') row.coinsFromAllowances += c.amount;
      else if (c.unit === 'requests') row.requestsFromAllowances += c.amount;
      else if (c.kind === 'wallet') {
        row.walletMinor += c.amount;
        wallet = true;
      } else if (c.kind === 'postpaid_line') {
        row.postpaidMinor += c.amount;
        postpaid = true;
      } else row.moneyFromAllowancesMinor += c.amount;
    }
    if (wallet) row.walletRequests++;
    if (postpaid) row.postpaidRequests++;
  }
  const rows = [...usage.values()].sort((a, b) => (a.model < b.model ? -1 : 1));
  for (const r of rows) {
    const usageLine = (amountMinor: number, n: number, paidBy: PaidBy, how: string): void => {
      if (amountMinor !== 0)
        lines.push({
          kind: 'usage',
          description: `${r.model}: usage beyond the package, ${n} request(s), ${how}`,
          quantity: n,
          amountMinor,
          paidBy,
          orderId: null,
          offerId: null,
          model: r.model,
        });
    };
    usageLine(r.walletMinor, r.walletRequests, 'wallet', 'paid from the wallet');
    usageLine(r.postpaidMinor, r.postpaidRequests, 'phone_bill', 'postpaid (phone bill)');
  }
  if (lines.length === 0 && rows.length === 0 && payments.length === 0) return null;
  const sum = (f: (l: BillLine) => boolean): number => lines.filter(f).reduce((s, l) => s + l.amountMinor, 0);
  const bill: Bill = {
    id: ctx.id('bill'),
    accountId,
    period: p.period,
    periodStartMs: p.startMs,
    periodEndMs: p.endMs,
    currency: ctx.catalog().currency,
    status: 'final',
    lines,
    usage: rows.map(({ walletRequests: _w, postpaidRequests: _p, ...r }) => r),
    payments,
    totalMinor: sum(() => true),
    prepaidMinor: sum((l) => PREPAID.has(l.paidBy)),
    phoneBillMinor: sum((l) => l.paidBy === 'phone_bill') + phoneTopUps,
    unpaidMinor: sum((l) => l.paidBy === 'unpaid'),
    createdAtMs: ctx.now(),
  };
  return { bill, orders };
}

export type BillOutcome = { kind: 'existing' | 'skipped' | 'created'; bill: Bill | null };

/** The bill run's planner for one account: pure, on a view loaded with the period's usage (needs.usage). */
export function decideBill(p: PlanCtx, accountId: string, period: Period): BR<BillOutcome> {
  const { store } = p.deps;
  if (store.findBill(accountId, period.period) !== undefined) return ok({ kind: 'existing' as const, bill: null });
  const draft = billFrom(p, accountId, period, {
    listBills: (q) => store.listBills(q),
    listOrders: (q) => store.listOrders(q),
    listPayments: (q) => store.listPayments(q),
    usage: p.view.usage,
  });
  if (draft === null) return ok({ kind: 'skipped' as const, bill: null });
  const { bill } = draft;
  store.insertBill(bill);
  for (const o of draft.orders) store.updateOrder({ ...o, billId: bill.id });
  if (bill.phoneBillMinor !== 0) {
    store.insertPayment(
      newPayment(p, {
        accountId: accountId,
        orderId: null,
        billId: bill.id,
        channel: 'phone_bill',
        amountMinor: bill.phoneBillMinor,
        currency: bill.currency,
        status: 'pending',
      }),
    );
  }
  const postpaidUsage = bill.usage.reduce((sum, u) => sum + u.postpaidMinor, 0);
  restoreCreditLine(p, accountId, bill.currency, postpaidUsage, `bill:${bill.id}`);
  return ok({ kind: 'created' as const, bill });
}

export interface BillRunResult {
  period: string;
  accounts: number;
  /** Bills that exist for the period after the run. */
  bills: number;
  created: number;
  existing: number;
  skipped: number;
  renewals: number;
  /** Sums over the bills created by this run. */
  totalMinor: number;
  phoneBillMinor: number;
  unpaidMinor: number;
  carrier: { submitted: number; failed: number; pending: number };
  /**
   * Accounts whose bill could not be made this run (it kept changing while it was planned: re-plans ran out);
   * the run went on with the others, and running it again makes the missing bills (atk-billing F4).
   */
  failures: { accountId: string; error: string }[];
}

export async function runBills(ctx: Ctx, periodText: string): Promise<BR<BillRunResult>> {
  const p = parsePeriod(periodText);
  if (p === undefined) return fail('invalid', `period must be a month like 2026-11, got ${JSON.stringify(periodText)}`);
  if (p.endMs > ctx.now()) return fail('unprocessable', `Period ${p.period} ends at ${iso(p.endMs)}; bills are final, so they are run after the period ends.`);
  const period = p;
  const renewals = await renewDue(ctx);
  const accounts = await ctx.deps.accounts.listAccounts();
  const out: BillRunResult = {
    period: p.period,
    accounts: accounts.length,
    bills: 0,
    created: 0,
    existing: 0,
    skipped: 0,
    renewals,
    totalMinor: 0,
    phoneBillMinor: 0,
    unpaidMinor: 0,
    carrier: { submitted: 0, failed: 0, pending: 0 },
    failures: [],
  };
  for (const account of accounts) {
    // One plan per account: the bill, its orders marked, the phone-bill payment and the credit line's restore
    // apply together (a conflict, e.g. an order placed meanwhile, plans the account's bill again).
    const r = await runPlan<BillOutcome>(
      ctx,
      account.id,
      { usage: { fromMs: period.startMs, toMs: period.endMs } },
      planner((p) => decideBill(p, account.id, period)),
    );
    if (!r.ok) {
      if (r.code !== 'conflict') throw new Error(`bill run ${period.period} for ${account.id}: ${r.message}`);
      out.failures.push({ accountId: account.id, error: r.message });
      ctx.deps.log?.(
        'error',
        { accountId: account.id, period: period.period, err: r.message, alert: 'bill_failed' },
        'bill run: an account could not be billed; the run went on',
      );
      continue;
    }
    out[r.value.kind]++;
    if (r.value.bill !== null) {
      out.totalMinor += r.value.bill.totalMinor;
      out.phoneBillMinor += r.value.bill.phoneBillMinor;
      out.unpaidMinor += r.value.bill.unpaidMinor;
    }
  }
  out.bills = out.created + out.existing;
  out.carrier = await deliverCarrierCharges(ctx);
  return ok(out);
}

const csvCell = (v: string | number | null): string => {
  const s = v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
const dec = (minor: number): string => `${minor < 0 ? '-' : ''}${Math.floor(Math.abs(minor) / 100)}.${String(Math.abs(minor) % 100).padStart(2, '0')}`;

/** One row per line, then summary rows (kind total, prepaid, phone_bill, unpaid). Amounts are decimals. */
export function billCsv(b: Bill): string {
  const head = 'bill_id,account_id,period,line,kind,description,quantity,amount,currency,paid_by,order_id,offer_id,model';
  const rows = b.lines.map((l, i) => [
    b.id,
    b.accountId,
    b.period,
    i + 1,
    l.kind,
    l.description,
    l.quantity,
    dec(l.amountMinor),
    b.currency,
    l.paidBy,
    l.orderId,
    l.offerId,
    l.model,
  ]);
  for (const [kind, v] of [
    ['total', b.totalMinor],
    ['prepaid', b.prepaidMinor],
    ['phone_bill', b.phoneBillMinor],
    ['unpaid', b.unpaidMinor],
  ] as const) {
    rows.push([b.id, b.accountId, b.period, '', kind, '', '', dec(v), b.currency, '', '', '', '']);
  }
  return `${[head, ...rows.map((r) => r.map(csvCell).join(','))].join('\n')}\n`;
}
