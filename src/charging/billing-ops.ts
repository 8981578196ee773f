/**
 * Charging operations billing plans carry (issue 14 item 1, "billing as decide/apply"). A billing use case never
 * calls charging while it decides: it appends these operations to its plan, with every id chosen up front, and
 * the billing store applies them inside the same transaction as the billing rows, through the charging store's
 * synchronous in-transaction entry (ChargingTxHost). `decideBillingOps` is the pure part: one AccountView in,
 * one AccountMutation (plus schedule rows, which are not account-view state) out, or a refusal when the view
 * no longer allows the plan (the wallet cannot pay any more): the
 * billing store then rolls back and reports a conflict, and the use case plans again on a fresh view.
 */
import { AssertionError } from '../core/index.ts';
import type { AccountScope, AccountView, Decision } from './store.ts';
import type { AccountPolicy, AllowanceSchedule, Bucket, BucketKind, BucketUnit, CycleUnit, OveragePolicy } from './types.ts';
import { DEFAULT_PRIORITY, available, isExpired } from './burn-down.ts';
import { cycleIndexAt, cycleStartMs } from './cycle.ts';
import { Work } from './work.ts';

export type ChargingOp =
  /** A one-off bucket (packs, trials, prorated allowance, codes, points). `id` is the new bucket's id. */
  | {
      op: 'grant';
      id: string;
      unit: BucketUnit;
      currency: string | null;
      amount: number;
      effectiveAtMs: number;
      expiresAtMs: number | null;
      kind: BucketKind;
      models: string[] | null;
      sourceRef: string;
    }
  /** Money into the account's wallet; `walletId` names the wallet bucket if it does not exist yet. */
  | { op: 'topUpWallet'; currency: string; amountMinor: number; sourceRef: string; walletId: string }
  /** Pay from the wallet: refused (the whole plan) when the wallet cannot pay all of it. */
  | { op: 'debitWallet'; currency: string; amountMinor: number; ref: string }
  /**
   * Forfeit a bucket's leftover as it is when the plan applies (what open reservations hold stays theirs).
   * `expect` is the leftover the plan saw and recorded on its order; requests in flight may have moved it a
   * little since, and that never refuses the plan (a refund on a busy account must not fail for it), unless
   * `strict`: the plan's answer was worked out on that leftover (an upgrade across units credits the old plan for
   * it), so less left when it applies refuses the plan, which is planned again (attack finding atk-billing F2).
   */
  | { op: 'forfeit'; bucketId: string; ref: string; expect: number; strict?: boolean }
  /** A bill moved the postpaid line's usage to the phone bill: the line's amount grows by it. */
  | { op: 'restoreCreditLine'; currency: string; amountMinor: number; ref: string }
  /** The account's overage policy; `lineId` names the postpaid line bucket if one must be created. */
  | { op: 'setPolicy'; overage: OveragePolicy; creditLimitMinor: number; currency: string | null; coinsPerMajor: number | null; lineId: string }
  /** A new allowance schedule (the engine mints its cycles lazily, on the account's next operation or renewal run). */
  | {
      op: 'createSchedule';
      id: string;
      unit: BucketUnit;
      currency: string | null;
      kind: BucketKind;
      amountPerCycle: number;
      anchorMs: number;
      cycle: CycleUnit;
      models: string[] | null;
      rollover: boolean;
      sourceRef: string;
      endsAtMs: number | null;
    }
  /** No cycles of the schedule start at or after atMs. */
  | { op: 'endSchedule'; scheduleId: string; atMs: number }
  /**
   * A check the plan made on usage, made again when it applies (attack finding atk-billing F5): what the live
   * buckets whose reference starts with `sourcePrefix`, effective from `fromMs`, used and hold must still be at most
   * `atMost`, else the plan is refused (and planned again). Writes nothing.
   */
  | { op: 'requireUse'; sourcePrefix: string; fromMs: number; atMost: number; ref: string };

export interface BillingOpsDecision {
  mutation: Decision<null>['mutation'];
  schedulesCreate: AllowanceSchedule[];
  schedulesEnd: { scheduleId: string; atMs: number }[];
  /** Why the view does not allow the plan any more (nothing is applied then). */
  refused: string | null;
}

/**
 * The synchronous charging side of one billing transaction. SQLite: the charging store's statements on the same
 * connection, inside the billing store's open transaction; memory: the memory store's maps.
 */
export interface ChargingTx {
  /** Load the account's view, decide, apply the mutation (throws on an invariant violation: a bug). */
  runAccountOp<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): T;
  /** Idempotent by (accountId, sourceRef). */
  createSchedule(s: AllowanceSchedule): void;
  endSchedule(scheduleId: string, endsAtMs: number): void;
}

/** What a billing store needs from the charging store sharing its database (see ChargingTx). */
export interface ChargingTxHost {
  /** Commit operations the charging store has queued, before the billing store opens its transaction. */
  flushPending(): void;
  /** The synchronous operations, valid only inside the billing store's open transaction. */
  tx(): ChargingTx;
  /** After that transaction committed or rolled back: forget anything cached about the account. */
  forget(accountId: string): void;
}

const MONEY_ONLY = (unit: BucketUnit, currency: string | null): string | null => (unit === 'money' ? currency : null);

/** The bucket a billing operation creates (a grant, a wallet, a postpaid line). */
export function newBucket(
  accountId: string,
  nowMs: number,
  b: Pick<Bucket, 'id' | 'unit' | 'currency' | 'kind' | 'amount' | 'effectiveAtMs' | 'expiresAtMs' | 'models' | 'sourceRef'>,
): Bucket {
  return {
    ...b,
    accountId,
    memberId: null,
    consumed: 0,
    held: 0,
    forfeited: 0,
    floor: 0,
    priority: DEFAULT_PRIORITY[b.kind],
    rollover: false,
    scheduleId: null,
    cycleIndex: null,
    createdAtMs: nowMs,
  };
}

const findMoney = (w: Work, kind: BucketKind, currency: string): Bucket | undefined =>
  [...w.buckets.values()].find((b) => b.kind === kind && b.currency === currency && b.memberId === null);

/** The schedule a createSchedule operation makes: it starts with the cycle running at nowMs. */
export function scheduleOf(accountId: string, nowMs: number, o: Extract<ChargingOp, { op: 'createSchedule' }>): AllowanceSchedule {
  if (!Number.isSafeInteger(o.amountPerCycle) || o.amountPerCycle < 0 || o.sourceRef.includes('#'))
    throw new AssertionError(`schedule ${o.sourceRef}: invalid amount or reference`);
  // Start with the cycle running now: a schedule created late must not mint the cycles it never had.
  const first = o.anchorMs <= nowMs ? cycleIndexAt(o.anchorMs, o.cycle, nowMs) : 0;
  return {
    id: o.id,
    accountId,
    memberId: null,
    unit: o.unit,
    currency: MONEY_ONLY(o.unit, o.currency),
    kind: o.kind,
    amountPerCycle: o.amountPerCycle,
    anchorMs: o.anchorMs,
    cycle: o.cycle,
    priority: DEFAULT_PRIORITY[o.kind],
    models: o.models,
    rollover: o.rollover,
    sourceRef: o.sourceRef,
    endsAtMs: o.endsAtMs,
    nextCycleIndex: first,
    nextCycleStartMs: cycleStartMs(o.anchorMs, o.cycle, first),
    createdAtMs: nowMs,
  };
}

/**
 * Decide a billing plan's charging operations on one account's view, in order (a later operation sees the earlier
 * ones: a top-up then a debit of an unpaid order). Pure: the same view and operations give the same decision.
 */
export function decideBillingOps(view: AccountView, ops: readonly ChargingOp[]): BillingOpsDecision {
  const w = new Work(view);
  const schedulesCreate: AllowanceSchedule[] = [];
  const schedulesEnd: { scheduleId: string; atMs: number }[] = [];
  const refuse = (refused: string): BillingOpsDecision => ({ mutation: null, schedulesCreate: [], schedulesEnd: [], refused });
  for (const o of ops) {
    switch (o.op) {
      case 'grant': {
        if (!Number.isSafeInteger(o.amount) || (o.expiresAtMs !== null && o.expiresAtMs <= o.effectiveAtMs) || o.sourceRef.includes('#'))
          throw new AssertionError(`grant ${o.sourceRef}: invalid amount, validity window or reference`);
        if (o.amount <= 0) break;
        const b = newBucket(w.accountId, w.nowMs, { ...o, currency: MONEY_ONLY(o.unit, o.currency) });
        w.createBucket(b);
        w.ledger('grant', o.sourceRef, { debit: `house:issuance:${b.kind}`, credit: `bucket:${b.id}`, bucket: b, amount: b.amount });
        break;
      }
      case 'topUpWallet': {
        let wallet = findMoney(w, 'wallet', o.currency);
        if (wallet === undefined) {
          wallet = newBucket(w.accountId, w.nowMs, {
            id: o.walletId,
            unit: 'money',
            currency: o.currency,
            kind: 'wallet',
            amount: 0,
            effectiveAtMs: w.nowMs,
            expiresAtMs: null,
            models: null,
            sourceRef: `wallet:${o.currency}`,
          });
          w.createBucket(wallet);
        }
        w.move(wallet.id, { amount: o.amountMinor });
        w.ledger('topup', o.sourceRef, { debit: 'house:issuance:wallet', credit: `bucket:${wallet.id}`, bucket: wallet, amount: o.amountMinor });
        break;
      }
      case 'debitWallet': {
        const wallet = findMoney(w, 'wallet', o.currency);
        const have = wallet === undefined ? 0 : available(wallet);
        if (wallet === undefined || have < o.amountMinor) return refuse(`${o.ref}: the wallet holds ${have}, less than ${o.amountMinor}`);
        w.move(wallet.id, { consumed: o.amountMinor });
        w.ledger('consume', o.ref, { debit: `bucket:${wallet.id}`, credit: 'house:revenue', bucket: wallet, amount: o.amountMinor });
        break;
      }
      case 'forfeit': {
        const b = w.buckets.get(o.bucketId);
        const amount = b === undefined ? 0 : Math.max(0, b.amount - b.consumed - b.held - b.forfeited);
        if (o.strict === true && amount < o.expect) return refuse(`${o.ref}: bucket ${o.bucketId} has ${amount} left, less than the ${o.expect} planned on`);
        if (b === undefined || amount === 0) break;
        w.move(b.id, { forfeited: amount });
        w.ledger('forfeit', o.ref, { debit: `bucket:${b.id}`, credit: 'house:breakage', bucket: b, amount });
        break;
      }
      case 'restoreCreditLine': {
        const line = findMoney(w, 'postpaid_line', o.currency);
        if (line === undefined || o.amountMinor <= 0) break;
        w.move(line.id, { amount: o.amountMinor });
        w.ledger('topup', o.ref, { debit: 'house:receivable:phone_bill', credit: `bucket:${line.id}`, bucket: line, amount: o.amountMinor });
        break;
      }
      case 'setPolicy': {
        const policy: AccountPolicy = { accountId: w.accountId, overage: o.overage, creditLimitMinor: o.creditLimitMinor, currency: o.currency };
        if (o.coinsPerMajor !== null) policy.coinsPerMajor = o.coinsPerMajor;
        w.setPolicy(policy);
        if (o.overage === 'postpaid' && o.currency !== null) {
          let line = findMoney(w, 'postpaid_line', o.currency);
          if (line === undefined) {
            line = newBucket(w.accountId, w.nowMs, {
              id: o.lineId,
              unit: 'money',
              currency: o.currency,
              kind: 'postpaid_line',
              amount: 0,
              effectiveAtMs: w.nowMs,
              expiresAtMs: null,
              models: null,
              sourceRef: `postpaid:${o.currency}`,
            });
            w.createBucket(line);
          }
          const owedFloor = line.floor + available(line); // the highest floor that keeps available >= 0
          const target = Math.min(-o.creditLimitMinor, owedFloor);
          if (target !== line.floor) w.move(line.id, { floor: target - line.floor });
        }
        break;
      }
      case 'createSchedule':
        schedulesCreate.push(scheduleOf(w.accountId, w.nowMs, o));
        break;
      case 'endSchedule':
        schedulesEnd.push({ scheduleId: o.scheduleId, atMs: o.atMs });
        break;
      case 'requireUse': {
        let used = 0;
        for (const b of w.buckets.values())
          if (b.sourceRef.startsWith(o.sourcePrefix) && b.effectiveAtMs >= o.fromMs && !isExpired(b, w.nowMs)) used += b.consumed + b.held;
        if (used > o.atMost) return refuse(`${o.ref}: ${used} used, more than the ${o.atMost} the plan checked`);
        break;
      }
    }
  }
  return { mutation: w.toMutation(), schedulesCreate, schedulesEnd, refused: null };
}

/**
 * Apply a plan's charging operations inside the caller's open transaction. Returns the refusal, or null when
 * applied; on a refusal nothing was written (the caller rolls its own rows back).
 */
export function applyBillingOps(tx: ChargingTx, accountId: string, nowMs: number, ops: readonly ChargingOp[]): string | null {
  if (ops.length === 0) return null;
  const d = tx.runAccountOp({ accountId, nowMs }, (view) => {
    const decided = decideBillingOps(view, ops);
    return { mutation: decided.mutation, result: decided };
  });
  if (d.refused !== null) return d.refused;
  for (const s of d.schedulesCreate) tx.createSchedule(s);
  for (const e of d.schedulesEnd) tx.endSchedule(e.scheduleId, e.atMs);
  return null;
}

/** True when a charging store can run billing's operations inside a billing transaction (SQLite, memory). */
export function isChargingTxHost(s: object): s is ChargingTxHost {
  const h = s as Partial<ChargingTxHost>;
  return typeof h.tx === 'function' && typeof h.flushPending === 'function' && typeof h.forget === 'function';
}
