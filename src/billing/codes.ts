/**
 * One-time redemption codes (recharge cards). A batch is generated for one offer; each code is shown once and
 * only its sha256 is stored. Codes are 16 Crockford base32 characters (75 random bits + 1 check character), so
 * a mistyped code is told apart from an unknown (forged) one without a lookup.
 */
import { ok, sha256Hex, type Random } from '../core/index.ts';
import { activeAccount, fail, fmtMoney, offerOnSale, type BR, type Ctx } from './context.ts';
import { runOrder, type Outcome, type PlanCtx } from './plan.ts';
import { creditWallet, newPayment } from './payments.ts';
import { DAY_MS, isoDay } from './periods.ts';
import { catchUpAccount } from './renew.ts';
import { newOrder } from './terms.ts';
import type { CodeBatch, CodeRecord, Order, Subscription } from './types.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const BODY = 15;

function checkChar(body: string): string {
  return ALPHABET[parseInt(sha256Hex(`tokengrid-code-check:${body}`).slice(0, 2), 16) % 32]!;
}

/** Upper-case, drop separators, read O as 0 and I/L as 1 (Crockford). Undefined when it cannot be a code. */
export function normalizeCode(text: string): string | undefined {
  const s = text.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return /^[0-9A-HJKMNP-TV-Z]{16}$/.test(s) ? s : undefined;
}

export const hashCode = (normalized: string): string => sha256Hex(`tokengrid-code:${normalized}`);

export function formatCode(normalized: string): string {
  return normalized.match(/.{4}/g)!.join('-');
}

export function isWellFormed(normalized: string): boolean {
  return checkChar(normalized.slice(0, BODY)) === normalized[BODY];
}

function newCode(random: Random): string {
  const bytes = random.bytes(BODY);
  let body = '';
  for (const b of bytes) body += ALPHABET[b % 32];
  return body + checkChar(body);
}

export interface GenerateInput {
  offerId: string;
  count: number;
  expiresAtMs?: number | null;
  note?: string | null;
  actor: string;
  idempotencyKey: string | null;
}

export interface GeneratedBatch {
  batch: CodeBatch;
  /** Plain codes, shown once; null on an idempotent replay (they are not stored). */
  codes: string[] | null;
}

export function generateCodes(ctx: Ctx, i: GenerateInput): Promise<BR<Outcome<GeneratedBatch>>> {
  const request = { op: 'codes', offerId: i.offerId, count: i.count, expiresAtMs: i.expiresAtMs ?? null, note: i.note ?? null };
  const random = ctx.deps.random;
  return runOrder(
    ctx,
    { scope: 'codes', idempotencyKey: i.idempotencyKey, request },
    (p) => decideCodeBatch(p, i, random),
    (v) => ({ batch: v.batch, codes: null }),
  );
}

/** The generateCodes planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideCodeBatch(ctx: PlanCtx, i: GenerateInput, random: Random): BR<GeneratedBatch> {
  const o = offerOnSale(ctx, i.offerId);
  if (!o.ok) return o;
  const offer = o.value;
  if (offer.type === 'plan' || offer.type === 'payg' || (offer.type === 'addon' && offer.renews)) {
    return fail('unprocessable', `Codes carry packs, trials or one-time add-ons; ${offer.id} is a ${offer.renews ? 'renewing ' : ''}${offer.type}.`);
  }
  const max = ctx.catalog().limits.codesPerBatchMax;
  if (!Number.isSafeInteger(i.count) || i.count < 1 || i.count > max) return fail('invalid', `count must be a whole number from 1 to ${max}`);
  const now = ctx.now();
  if (i.expiresAtMs != null && i.expiresAtMs <= now) return fail('invalid', 'expiresAt must be in the future');
  const batch: CodeBatch = {
    id: ctx.id('cb'),
    offerId: offer.id,
    offer,
    count: i.count,
    note: i.note ?? null,
    createdBy: i.actor,
    createdAtMs: now,
    expiresAtMs: i.expiresAtMs ?? null,
  };
  const codes: string[] = [];
  const records: CodeRecord[] = [];
  const seen = new Set<string>();
  while (codes.length < i.count) {
    const code = newCode(random);
    const hash = hashCode(code);
    // A code already in the store (astronomically unlikely) makes apply refuse the batch: it is planned again.
    if (seen.has(hash) || ctx.deps.store.getCode(hash) !== undefined) continue;
    seen.add(hash);
    codes.push(formatCode(code));
    records.push({ hash, batchId: batch.id, hint: code.slice(0, 4), redeemedBy: null, redeemedAtMs: null, orderId: null });
  }
  ctx.deps.store.insertCodeBatch(batch, records);
  return ok({ batch, codes });
}

export interface RedeemInput {
  accountId: string;
  code: string;
  actor: string;
  idempotencyKey: string | null;
}

export interface RedeemResult {
  order: Order;
  subscription: Subscription | null;
  offerId: string;
  walletMinor: number | null;
}

export async function redeemCode(ctx: Ctx, i: RedeemInput): Promise<BR<Outcome<RedeemResult>>> {
  const normalized = normalizeCode(i.code);
  if (normalized === undefined) return fail('invalid', 'A redemption code has 16 letters and digits, like 7K3M-Q9TX-2HVB-R8DN.');
  if (!isWellFormed(normalized))
    return fail('unprocessable', 'This is not a valid redemption code (its check character does not match: mistyped?). Nothing was changed.');
  const hash = hashCode(normalized);
  const request = { op: 'redeem_code', accountId: i.accountId, code: hash };
  return runOrder(ctx, { scope: `account:${i.accountId}`, idempotencyKey: i.idempotencyKey, request, needs: { codeHash: hash } }, (p) =>
    decideRedeem(p, i, hash),
  );
}

/** The redeemCode planner: pure, on the loaded view (ctx.view) alone; returns the answer, the plan is in ctx. */
export function decideRedeem(ctx: PlanCtx, i: RedeemInput, hash: string): BR<RedeemResult> {
  const account = activeAccount(ctx, i.accountId);
  if (!account.ok) return account;
  const rec = ctx.deps.store.getCode(hash);
  if (rec === undefined) return fail('unprocessable', 'This is not a valid redemption code. Nothing was changed.');
  if (rec.redeemedBy !== null) {
    return fail(
      'unprocessable',
      `This code was already redeemed on ${isoDay(rec.redeemedAtMs ?? 0)}${rec.redeemedBy === i.accountId ? ` by this account (order ${rec.orderId})` : ''}; a code works once.`,
    );
  }
  const batch = ctx.deps.store.getCodeBatch(rec.batchId)!;
  const now = ctx.now();
  if (batch.expiresAtMs !== null && batch.expiresAtMs <= now) return fail('unprocessable', `This code expired on ${isoDay(batch.expiresAtMs)}.`);
  catchUpAccount(ctx, i.accountId);
  const offer = batch.offer;
  const subs = ctx.deps.store.listSubscriptions({ accountId: i.accountId });
  if (offer.trialOnce && subs.some((s) => s.offerId === offer.id))
    return fail('unprocessable', `Account ${i.accountId} already took the trial ${offer.id}; a trial is offered once.`);

  const order = newOrder(ctx, {
    accountId: i.accountId,
    type: 'redeem_code',
    offerId: offer.id,
    subscriptionId: null,
    actor: i.actor,
    idempotencyKey: i.idempotencyKey,
    details: { batchId: batch.id, hint: rec.hint },
    lines: [
      {
        kind: 'code',
        description: `Recharge code ${rec.hint}-...: ${offer.name} (${fmtMoney(offer.priceMinor, offer.currency)} prepaid)`,
        quantity: 1,
        amountMinor: offer.priceMinor,
        offerId: offer.id,
      },
    ],
  });
  order.paidBy = 'code';
  let subscription: Subscription | null = null;
  let walletMinor: number | null = null;
  if (offer.allowance?.unit === 'money' && offer.type === 'pack') {
    // A money card is a payment into the wallet (like a top-up), not a service: no bill line, a payment.
    creditWallet(ctx, i.accountId, offer.currency, offer.allowance.amount, `code:${order.id}:${offer.id}`);
    walletMinor = offer.allowance.amount;
    order.lines = [];
    order.amountMinor = offer.allowance.amount;
  } else {
    const expiresAtMs = now + (offer.validityDays ?? 30) * DAY_MS;
    const ref = `code:${order.id}:${offer.id}`;
    subscription = {
      id: ctx.id('sub'),
      accountId: i.accountId,
      offerId: offer.id,
      type: offer.type,
      parentId: null,
      status: 'active',
      anchorMs: now,
      cycle: null,
      quantity: 1,
      terms: [{ fromIndex: 0, offer, quantity: 1, ref, scheduleId: null, scheduled: true }],
      renewedThroughIndex: 0,
      endIndex: null,
      endReason: null,
      expiresAtMs,
      endedAtMs: null,
      channel: 'external',
      createdAtMs: now,
      updatedAtMs: now,
    };
    order.subscriptionId = subscription.id;
    if (offer.allowance !== null) {
      const unit = offer.allowance.unit;
      const g = ctx.deps.charging.grantBucket({
        accountId: i.accountId,
        unit,
        currency: unit === 'money' ? offer.currency : null,
        amount: offer.allowance.amount,
        effectiveAtMs: now,
        expiresAtMs,
        kind: 'code',
        models: offer.models,
        sourceRef: ref,
      });
      if (!g.ok) throw new Error(`code grant: ${g.message}`);
    }
    ctx.deps.store.insertSubscription(subscription);
  }
  ctx.deps.store.updateCode({ ...rec, redeemedBy: i.accountId, redeemedAtMs: now, orderId: order.id });
  if (order.amountMinor > 0) {
    ctx.deps.store.insertPayment(
      newPayment(ctx, {
        accountId: i.accountId,
        orderId: order.id,
        channel: 'code',
        amountMinor: order.amountMinor,
        currency: offer.currency,
        status: 'succeeded',
        reference: batch.id,
      }),
    );
  }
  ctx.deps.store.insertOrder(order);
  return ok({ order, subscription, offerId: offer.id, walletMinor });
}
