/**
 * Management use cases (admin API, billing/products build on them). Creations are idempotent by a
 * caller-supplied sourceRef: a repeat with the same parameters returns the same object, a repeat with
 * different ones is a conflict.
 */
import { err, ok, type Result } from '../core/index.ts';
import type { AccountPolicy, AllowanceSchedule, Bucket, MemberCap, MemberCapUsage } from './types.ts';
import type { CreateScheduleInput, GrantBucketInput, ManagementErrorCode, SetMemberCapInput, SetPolicyInput, TopUpWalletInput } from './management-types.ts';
import { DEFAULT_PRIORITY, available } from './burn-down.ts';
import { cycleIndexAt, cycleStartMs } from './cycle.ts';
import { catchUpAccount } from './sweep.ts';
import { Work } from './work.ts';
import type { Ctx } from './context.ts';

type R<T> = Result<T, ManagementErrorCode>;
const isInt = (n: unknown, min = 0): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= min;

/**
 * Reserved namespaces (issue 12, finding 8). System references are `<kind>:<ids>` (`sub:...`, `order:...`,
 * `wallet:CNY`, `grant:<request id>`) and a cycle bucket's is `<schedule ref>#<n>`. A reference a client chose is
 * stored as `client:<ref>`, a prefix no system reference uses, so it can never equal one (a grant named like the
 * next cycle's bucket once made every renewal of the account fail on the unique constraint).
 */
export const CLIENT_REF_PREFIX = 'client:';
export const clientRef = (ref: string): string => `${CLIENT_REF_PREFIX}${ref}`;

/** A sourceRef grants and top-ups may use: '#' is reserved for cycle buckets (`<schedule ref>#<n>`). */
function refProblem(sourceRef: string): string | null {
  if (sourceRef.length === 0) return 'sourceRef is required';
  if (sourceRef.includes('#')) {
    const shown = sourceRef.startsWith(CLIENT_REF_PREFIX)
      ? `reference ${JSON.stringify(sourceRef.slice(CLIENT_REF_PREFIX.length))}`
      : `sourceRef ${JSON.stringify(sourceRef)}`;
    return `${shown} contains '#', which is reserved for allowance cycles; choose a reference without it`;
  }
  return null;
}

function checkUnit(unit: string, currency: string | null | undefined): string | null {
  if (unit !== 'tokens' && unit !== 'requests' && unit !== 'money') return `unknown unit ${unit}`;
  if (unit === 'money' && (currency === null || currency === undefined || currency.length === 0)) return 'money needs a currency';
  if (unit !== 'money' && currency !== null && currency !== undefined) return 'only money has a currency';
  return null;
}

export async function grantBucket(ctx: Ctx, i: GrantBucketInput): Promise<R<Bucket>> {
  if (i.kind === 'wallet' && i.unit === 'money' && i.expiresAtMs === null && (i.memberId ?? null) === null) {
    return topUpWallet(ctx, { accountId: i.accountId, currency: i.currency ?? '', amountMinor: i.amount, sourceRef: i.sourceRef });
  }
  const problem =
    checkUnit(i.unit, i.currency) ??
    (!isInt(i.amount) ? 'amount must be a non-negative integer' : null) ??
    (i.kind === 'postpaid_line' ? 'postpaid lines come from setAccountPolicy' : null) ??
    (i.kind === 'wallet' ? 'a wallet is per account and currency, never expires: use topUpWallet' : null) ??
    (!isInt(i.effectiveAtMs) || (i.expiresAtMs !== null && (!isInt(i.expiresAtMs) || i.expiresAtMs <= i.effectiveAtMs))
      ? 'validity window is empty or invalid'
      : null) ??
    refProblem(i.sourceRef);
  if (problem !== null) return err('invalid', problem);
  const nowMs = ctx.deps.clock.nowMs();
  const b: Bucket = {
    id: ctx.newId('bkt'),
    accountId: i.accountId,
    memberId: i.memberId ?? null,
    unit: i.unit,
    currency: i.unit === 'money' ? (i.currency ?? null) : null,
    kind: i.kind,
    amount: i.amount,
    consumed: 0,
    held: 0,
    forfeited: 0,
    floor: 0,
    effectiveAtMs: i.effectiveAtMs,
    expiresAtMs: i.expiresAtMs,
    priority: i.priority ?? DEFAULT_PRIORITY[i.kind],
    models: i.models ?? null,
    rollover: i.rollover ?? false,
    sourceRef: i.sourceRef,
    scheduleId: null,
    cycleIndex: null,
    createdAtMs: nowMs,
  };
  const ledger =
    b.amount === 0
      ? []
      : [
          {
            id: `grant:${b.sourceRef}:${b.id}`,
            accountId: b.accountId,
            op: 'grant' as const,
            debit: `house:issuance:${b.kind}`,
            credit: `bucket:${b.id}`,
            unit: b.unit,
            currency: b.currency,
            amount: b.amount,
            requestId: null,
            atMs: nowMs,
          },
        ];
  const res = await ctx.deps.store.createBucket(b, ledger);
  if (!res.created && (res.bucket.amount !== b.amount || res.bucket.unit !== b.unit || res.bucket.kind !== b.kind)) {
    return err('conflict', `sourceRef ${i.sourceRef} was already used for a different bucket (${res.bucket.id}).`);
  }
  return ok(res.bucket);
}

export async function topUpWallet(ctx: Ctx, i: TopUpWalletInput): Promise<R<Bucket>> {
  if (!isInt(i.amountMinor, 1)) return err('invalid', 'amountMinor must be a positive integer');
  if (i.currency.length === 0 || i.sourceRef.length === 0) return err('invalid', 'currency and sourceRef are required');
  const refBad = refProblem(i.sourceRef);
  if (refBad !== null) return err('invalid', refBad);
  const nowMs = ctx.deps.clock.nowMs();
  const walletIfNew: Bucket = {
    id: ctx.newId('bkt'),
    accountId: i.accountId,
    memberId: null,
    unit: 'money',
    currency: i.currency,
    kind: 'wallet',
    amount: 0,
    consumed: 0,
    held: 0,
    forfeited: 0,
    floor: 0,
    effectiveAtMs: nowMs,
    expiresAtMs: null,
    priority: DEFAULT_PRIORITY.wallet,
    models: null,
    rollover: false,
    sourceRef: `wallet:${i.currency}`,
    scheduleId: null,
    cycleIndex: null,
    createdAtMs: nowMs,
  };
  const res = await ctx.deps.store.topUpWallet({ ...i, atMs: nowMs, walletIfNew });
  return ok(res.bucket);
}

export async function createAllowanceSchedule(ctx: Ctx, i: CreateScheduleInput): Promise<R<AllowanceSchedule>> {
  const kind = i.kind ?? 'plan_allowance';
  const problem =
    checkUnit(i.unit, i.currency) ??
    (!isInt(i.amountPerCycle) ? 'amountPerCycle must be a non-negative integer' : null) ??
    (!['month', 'day', 'year'].includes(i.cycle) ? 'cycle must be month, day or year' : null) ??
    (kind === 'wallet' || kind === 'postpaid_line' ? `a schedule cannot create ${kind} buckets` : null) ??
    (!isInt(i.anchorMs) ? 'anchorMs must be an integer' : null) ??
    refProblem(i.sourceRef);
  if (problem !== null) return err('invalid', problem);
  const nowMs = ctx.deps.clock.nowMs();
  // Start with the cycle running now: a schedule created late must not mint the cycles it never had.
  const first = i.anchorMs <= nowMs ? cycleIndexAt(i.anchorMs, i.cycle, nowMs) : 0;
  const s: AllowanceSchedule = {
    id: ctx.newId('sch'),
    accountId: i.accountId,
    memberId: i.memberId ?? null,
    unit: i.unit,
    currency: i.unit === 'money' ? (i.currency ?? null) : null,
    kind,
    amountPerCycle: i.amountPerCycle,
    anchorMs: i.anchorMs,
    cycle: i.cycle,
    priority: i.priority ?? DEFAULT_PRIORITY[kind],
    models: i.models ?? null,
    rollover: i.rollover ?? false,
    sourceRef: i.sourceRef,
    endsAtMs: i.endsAtMs ?? null,
    nextCycleIndex: first,
    nextCycleStartMs: cycleStartMs(i.anchorMs, i.cycle, first),
    createdAtMs: nowMs,
  };
  const res = await ctx.deps.store.createSchedule(s);
  if (!res.created && (res.schedule.amountPerCycle !== s.amountPerCycle || res.schedule.unit !== s.unit || res.schedule.cycle !== s.cycle)) {
    return err('conflict', `sourceRef ${i.sourceRef} was already used for a different schedule (${res.schedule.id}).`);
  }
  await catchUpAccount(ctx, i.accountId, nowMs);
  return ok(res.schedule);
}

/** Stops cycles starting at or after atMs; buckets already created keep their validity. */
export async function endSchedule(ctx: Ctx, scheduleId: string, atMs: number): Promise<R<AllowanceSchedule>> {
  if (!isInt(atMs)) return err('invalid', 'atMs must be an integer');
  const s = await ctx.deps.store.endSchedule(scheduleId, atMs);
  return s === null ? err('not_found', `Schedule ${scheduleId} does not exist.`) : ok(s);
}

export async function setAccountPolicy(ctx: Ctx, accountId: string, p: SetPolicyInput): Promise<R<AccountPolicy>> {
  if (!['block', 'wallet', 'postpaid'].includes(p.overage)) return err('invalid', 'overage must be block, wallet or postpaid');
  const limit = p.creditLimitMinor ?? 0;
  if (!isInt(limit)) return err('invalid', 'creditLimitMinor must be a non-negative integer');
  if (p.coinsPerMajor !== undefined && p.coinsPerMajor !== null && !isInt(p.coinsPerMajor, 1))
    return err('invalid', 'coinsPerMajor must be a positive integer');
  if (p.overage === 'postpaid' && (p.currency === undefined || p.currency.length === 0)) return err('invalid', 'postpaid needs a currency');
  const nowMs = ctx.deps.clock.nowMs();
  return ctx.deps.store.runAccountOp({ accountId, nowMs }, (view) => {
    const w = new Work(view);
    const policy: AccountPolicy = { accountId, overage: p.overage, creditLimitMinor: limit, currency: p.currency ?? null };
    // Absent: keep the account's price (an operator changing the overage keeps its pay-as-you-go price); null clears it.
    const price = p.coinsPerMajor === undefined ? (w.policy?.coinsPerMajor ?? null) : p.coinsPerMajor;
    if (price !== null) policy.coinsPerMajor = price;
    w.setPolicy(policy);
    if (p.currency !== undefined && (p.overage === 'postpaid' || p.creditLimitMinor !== undefined)) setCreditLine(ctx, w, p.currency, limit);
    return { mutation: w.toMutation(), result: ok(policy) };
  });
}

/** One postpaid line per account and currency; its floor is -limit, never above what is already owed. */
function setCreditLine(ctx: Ctx, w: Work, currency: string, limit: number): void {
  let line = [...w.buckets.values()].find((b) => b.kind === 'postpaid_line' && b.currency === currency && b.memberId === null);
  if (line === undefined) {
    line = {
      id: ctx.newId('bkt'),
      accountId: w.accountId,
      memberId: null,
      unit: 'money',
      currency,
      kind: 'postpaid_line',
      amount: 0,
      consumed: 0,
      held: 0,
      forfeited: 0,
      floor: 0,
      effectiveAtMs: w.nowMs,
      expiresAtMs: null,
      priority: DEFAULT_PRIORITY.postpaid_line,
      models: null,
      rollover: false,
      sourceRef: `postpaid:${currency}`,
      scheduleId: null,
      cycleIndex: null,
      createdAtMs: w.nowMs,
    };
    w.createBucket(line);
  }
  const owedFloor = line.floor + available(line); // the highest floor that keeps available >= 0
  const target = Math.min(-limit, owedFloor);
  if (target !== line.floor) w.move(line.id, { floor: target - line.floor });
}

/**
 * Take back the unused part of a bucket now (a refunded plan or pack): its leftover is forfeited, with a ledger
 * entry. What open reservations hold stays theirs (they settle on it); idempotent by `ref` per bucket.
 */
export async function forfeitBucket(ctx: Ctx, accountId: string, bucketId: string, ref: string): Promise<R<{ forfeited: number }>> {
  if (ref.length === 0) return err('invalid', 'ref is required');
  const nowMs = ctx.deps.clock.nowMs();
  return ctx.deps.store.runAccountOp({ accountId, nowMs }, (view) => {
    const w = new Work(view);
    const b = w.buckets.get(bucketId);
    if (b === undefined) return { mutation: null, result: ok({ forfeited: 0 }) }; // expired already: its leftover is breakage
    const amount = Math.max(0, b.amount - b.consumed - b.held - b.forfeited);
    if (amount === 0) return { mutation: null, result: ok({ forfeited: 0 }) };
    w.move(b.id, { forfeited: amount });
    w.ledger('forfeit', ref, { debit: `bucket:${b.id}`, credit: 'house:breakage', bucket: b, amount });
    return { mutation: w.toMutation(), result: ok({ forfeited: amount }) };
  });
}

export async function setMemberCap(ctx: Ctx, accountId: string, memberId: string, c: SetMemberCapInput): Promise<R<MemberCap>> {
  if (c.tokensPerCycle !== null && !isInt(c.tokensPerCycle)) return err('invalid', 'tokensPerCycle must be a non-negative integer or null');
  const cap: MemberCap = { accountId, memberId, tokensPerCycle: c.tokensPerCycle, cycle: c.cycle ?? 'month', anchorMs: c.anchorMs ?? 0 };
  const nowMs = ctx.deps.clock.nowMs();
  return ctx.deps.store.runAccountOp({ accountId, nowMs, memberId }, (view) => {
    const w = new Work(view);
    w.setMemberCap(cap);
    return { mutation: w.toMutation(), result: ok(cap) };
  });
}

/**
 * Pay an order from the wallet: one atomic operation (consume + its ledger entry), so billing never writes to the
 * charging store itself. Paid false, and nothing moved, when the wallet cannot pay all of it.
 */
export async function debitWallet(ctx: Ctx, i: { accountId: string; currency: string; amountMinor: number; ref: string }): Promise<R<{ paid: boolean }>> {
  if (!isInt(i.amountMinor, 1)) return err('invalid', 'amountMinor must be a positive integer');
  if (i.ref.length === 0) return err('invalid', 'ref is required');
  const nowMs = ctx.deps.clock.nowMs();
  return ctx.deps.store.runAccountOp<R<{ paid: boolean }>>({ accountId: i.accountId, nowMs }, (view) => {
    const w = new Work(view);
    const wallet = [...w.buckets.values()].find((b) => b.kind === 'wallet' && b.currency === i.currency && b.memberId === null);
    if (wallet === undefined || available(wallet) < i.amountMinor) return { mutation: null, result: ok({ paid: false }) };
    w.move(wallet.id, { consumed: i.amountMinor });
    w.ledger('consume', i.ref, { debit: `bucket:${wallet.id}`, credit: 'house:revenue', bucket: wallet, amount: i.amountMinor });
    return { mutation: w.toMutation(), result: ok({ paid: true }) };
  });
}

/**
 * A bill moved the postpaid line's usage to the phone bill: the line's amount grows by what was billed (ledger
 * `topup:<ref>:<line>` from the phone-bill receivable), so the credit limit applies to each month's unbilled usage.
 */
export async function restoreCreditLine(
  ctx: Ctx,
  i: { accountId: string; currency: string; amountMinor: number; ref: string },
): Promise<R<{ restored: boolean }>> {
  if (!isInt(i.amountMinor, 1)) return err('invalid', 'amountMinor must be a positive integer');
  const nowMs = ctx.deps.clock.nowMs();
  return ctx.deps.store.runAccountOp<R<{ restored: boolean }>>({ accountId: i.accountId, nowMs }, (view) => {
    const w = new Work(view);
    const line = [...w.buckets.values()].find((b) => b.kind === 'postpaid_line' && b.currency === i.currency && b.memberId === null);
    if (line === undefined) return { mutation: null, result: ok({ restored: false }) };
    w.move(line.id, { amount: i.amountMinor });
    w.ledger('topup', i.ref, { debit: 'house:receivable:phone_bill', credit: `bucket:${line.id}`, bucket: line, amount: i.amountMinor });
    return { mutation: w.toMutation(), result: ok({ restored: true }) };
  });
}

/** The overage policy in force, and a member's cap and newest usage rows (a read: no transaction, holds included). */
export async function accountState(
  ctx: Ctx,
  accountId: string,
  memberId: string | null,
): Promise<{ policy: AccountPolicy | null; cap: MemberCap | null; usage: MemberCapUsage[] }> {
  const nowMs = ctx.deps.clock.nowMs();
  return ctx.deps.store.runAccountOp({ accountId, nowMs, memberId, holdsOnly: true }, (v) => ({
    mutation: null,
    result: { policy: v.policy, cap: v.memberCap, usage: v.memberUsage.map((u) => ({ ...u })) },
  }));
}
