/**
 * Billing against a reference model: a year of random orders (subscribe, change, cancel, add-on, top-up, redeem,
 * refund, replays of an Idempotency-Key), renewals (clock jumps) and usage, over the real billing service and
 * stores. After every step the system must agree with a tiny model that keeps its own calendar, proration and
 * renewal rules: the wallet balance, every subscription's state, every order's amount and status, at most one
 * renewal order and one allowance bucket per (subscription, cycle), and each closed month's bill equal to the
 * sum of its orders and the money its usage records charged (the ledger).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createMemoryAccountStore } from '../store/memory/accounts-store.ts';
import { openMemoryChargingStore } from '../store/memory/charging-store.ts';
import { createMemoryBillingStore } from '../store/memory/billing-store.ts';
import { openSqlite } from '../store/sqlite/db.ts';
import { openSqliteAccountStore } from '../store/sqlite/accounts-store.ts';
import { openSqliteChargingStore } from '../store/sqlite/charging-store.ts';
import { openSqliteBillingStore } from '../store/sqlite/billing-store.ts';
import { openPostgresAccountStore } from '../store/postgres/accounts-store.ts';
import { openPostgresBillingStore } from '../store/postgres/billing-store.ts';
import { openPostgresChargingStore } from '../store/postgres/charging-store.ts';
import { afterReady, openTestDb, truncateAll } from '../store/postgres/test-support.ts';
import { billingHarness, type BillingHarness, type TestStores } from './test-kit.ts';
import { parsePeriod } from './periods.ts';
import type { PlannerRules } from './context.ts';

const CATALOG = `
version: prop
defaults: { channel: wallet }
limits: { topupMax: "1000.00", codesPerBatchMax: 50 }
points: { earnPerYuan: 1, tokensPerPoint: 100, minRedeem: 10, validityDays: 7 }
offers:
  basic: { name: Basic, type: plan, price: "9.97", cycle: month, allowance: { tokens: 100000 } }
  pro: { name: Pro, type: plan, price: "29.93", cycle: month, allowance: { tokens: 500000 } }
  boost: { name: Boost, type: addon, renews: true, feature: speed, qos: priority, price: "3.01" }
  extra: { name: Extra, type: addon, price: "2.00", allowance: { tokens: 3000 }, validityDays: 10 }
  pack: { name: Pack, type: pack, price: "2.50", allowance: { tokens: 3000 }, validityDays: 10 }
  card: { name: Card, type: pack, price: "30.00", allowance: { money: "30.00" }, validityDays: 365 }
`;
const PRICE: Record<string, number> = { basic: 997, pro: 2993, boost: 301, extra: 200, pack: 250, card: 3000 };
const DAY = 86_400_000;
const START = Date.UTC(2027, 0, 29, 9, 30); // near a month's end: cycles clamp on short months
const actor = 'admin:prop';

// ---- the model's own calendar and proration (independent of src/billing/periods.ts) ----
function monthStart(anchorMs: number, k: number): number {
  const a = new Date(anchorMs);
  const y = a.getUTCFullYear();
  const m = a.getUTCMonth() + k;
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return Date.UTC(y, m, Math.min(a.getUTCDate(), last), a.getUTCHours(), a.getUTCMinutes(), a.getUTCSeconds(), a.getUTCMilliseconds());
}
function indexAt(anchorMs: number, now: number): number {
  let k = 0;
  while (monthStart(anchorMs, k + 1) <= now) k++;
  return k;
}
function share(amount: number, anchorMs: number, k: number, now: number, up: boolean): number {
  const s = monthStart(anchorMs, k);
  const e = monthStart(anchorMs, k + 1);
  const num = BigInt(amount) * BigInt(e - now);
  const den = BigInt(e - s);
  return Number(up ? (num + den - 1n) / den : num / den);
}

// ---- the model ----
type Status = 'active' | 'past_due' | 'canceled' | 'expired';
interface MSub {
  id: string;
  offerId: string;
  kind: 'plan' | 'boost' | 'once';
  parentId: string | null;
  status: Status;
  anchorMs: number;
  /** Price per cycle from a cycle index on (plan terms). */
  terms: { from: number; offerId: string; order?: string }[];
  renewedThrough: number;
  endIndex: number | null;
  endReason: string | null;
  expiresAtMs: number | null;
}
interface MOrder {
  id: string;
  type: string;
  amount: number;
  status: 'completed' | 'unpaid';
  paidBy: string;
  subId: string | null;
  cycle: number | null;
  at: number;
  refunded: number;
}

class Model {
  wallet = 0;
  subs = new Map<string, MSub>();
  orders: MOrder[] = [];
  codes: { code: string; offerId: string; used: boolean }[] = [];

  plan(): MSub | undefined {
    return [...this.subs.values()].find((s) => s.kind === 'plan' && (s.status === 'active' || s.status === 'past_due'));
  }
  termAt(s: MSub, k: number): string {
    let o = s.terms[0]!.offerId;
    for (const t of s.terms) if (t.from <= k) o = t.offerId;
    return o;
  }
  live(s: MSub): boolean {
    return s.status === 'active' || s.status === 'past_due';
  }

  /** What catchUpAccount does: plans first, then add-ons; renewals in order; a renewal the wallet cannot pay is unpaid. */
  catchUp(now: number): void {
    const live = [...this.subs.values()].filter((s) => this.live(s));
    live.sort((a, b) => (a.parentId === null ? 0 : 1) - (b.parentId === null ? 0 : 1));
    for (const s of live) {
      if (!this.live(s)) continue;
      if (s.kind === 'once') {
        if (s.expiresAtMs !== null && s.expiresAtMs <= now) s.status = 'expired';
        continue;
      }
      for (;;) {
        const k = s.renewedThrough + 1;
        if (monthStart(s.anchorMs, k) > now) break;
        if (s.endIndex !== null && k >= s.endIndex) {
          s.status = 'canceled';
          break;
        }
        const price = PRICE[this.termAt(s, k)]!;
        const paid = this.wallet >= price;
        if (paid) this.wallet -= price;
        this.orders.push({
          id: '',
          type: 'renew',
          amount: price,
          status: paid ? 'completed' : 'unpaid',
          paidBy: 'wallet',
          subId: s.id,
          cycle: k,
          at: monthStart(s.anchorMs, k),
          refunded: 0,
        });
        if (!paid) {
          s.status = 'past_due';
          this.endFamily(s, k + 1, 'unpaid');
        }
        s.renewedThrough = k;
      }
    }
  }
  endFamily(s: MSub, index: number, reason: string): void {
    s.endIndex = index;
    s.endReason = reason;
    s.terms = s.terms.filter((t) => t.from < index);
    for (const c of this.subs.values()) {
      if (c.parentId === s.id && this.live(c) && c.kind === 'boost' && (c.endIndex === null || c.endIndex > index)) {
        c.endIndex = index;
        c.endReason = 'parent_ended';
      }
    }
  }
  settleUnpaid(now: number): void {
    for (const o of this.orders.filter((x) => x.status === 'unpaid').sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1))) {
      if (this.wallet < o.amount) break;
      this.wallet -= o.amount;
      o.status = 'completed';
      const s = o.subId === null ? undefined : this.subs.get(o.subId);
      const k = o.cycle!;
      if (
        o.type !== 'renew' ||
        s === undefined ||
        s.status !== 'past_due' ||
        s.endReason !== 'unpaid' ||
        s.renewedThrough !== k ||
        indexAt(s.anchorMs, now) !== k
      )
        continue;
      const family = [
        s,
        ...[...this.subs.values()].filter((c) => c.parentId === s.id && this.live(c) && c.endReason === 'parent_ended' && c.endIndex === k + 1),
      ];
      for (const f of family) {
        f.status = 'active';
        f.endIndex = null;
        f.endReason = null;
        if (f.kind === 'plan') f.terms.push({ from: k + 1, offerId: this.termAt(f, k) });
      }
    }
  }
}

// ---- actions ----
type Action =
  | { t: 'topup'; amount: number }
  | { t: 'subscribe'; offerId: 'basic' | 'pro' | 'pack' }
  | { t: 'change'; offerId: 'basic' | 'pro' }
  | { t: 'cancel'; which: 'plan' | 'boost' | 'once' }
  | { t: 'addon'; offerId: 'boost' | 'extra' }
  | { t: 'refund'; pick: number; partial: boolean }
  | { t: 'codes'; offerId: 'card' | 'pack' }
  | { t: 'redeem'; pick: number }
  | { t: 'use'; tokens: number }
  | { t: 'jump'; hours: number }
  | { t: 'replay'; pick: number; same: boolean }
  /** The same top-up sent twice at once under one key, with a request's usage in between. */
  | { t: 'race'; amount: number; tokens: number };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('topup' as const), amount: fc.integer({ min: 1, max: 5000 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('subscribe' as const), offerId: fc.constantFrom('basic' as const, 'pro' as const, 'pack' as const) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('change' as const), offerId: fc.constantFrom('basic' as const, 'pro' as const) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('cancel' as const), which: fc.constantFrom('plan' as const, 'boost' as const, 'once' as const) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('addon' as const), offerId: fc.constantFrom('boost' as const, 'extra' as const) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('refund' as const), pick: fc.nat(), partial: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('codes' as const), offerId: fc.constantFrom('card' as const, 'pack' as const) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('redeem' as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('use' as const), tokens: fc.integer({ min: 1, max: 400 }) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('jump' as const), hours: fc.integer({ min: 1, max: 40 * 24 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('replay' as const), pick: fc.nat(), same: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('race' as const), amount: fc.integer({ min: 1, max: 3000 }), tokens: fc.integer({ min: 1, max: 400 }) }), weight: 1 },
);

type Res = { ok: true; value: { value: unknown; replayed: boolean } } | { ok: false; code: string; message: string };
interface Sent {
  key: string;
  run: (key: string) => Promise<Res>;
  other: (key: string) => Promise<Res>;
  result: Res;
}

async function walletOf(h: BillingHarness, a: string): Promise<number> {
  return (await h.charging.listBuckets(a)).filter((b) => b.kind === 'wallet').reduce((s, b) => s + b.remaining, 0);
}

async function check(h: BillingHarness, m: Model, a: string, step: string): Promise<void> {
  assert.equal(await walletOf(h, a), m.wallet, `${step}: wallet`);
  const subs = await h.billing.listSubscriptions({ accountId: a });
  assert.equal(subs.length, m.subs.size, `${step}: subscription count`);
  for (const s of subs) {
    const ms = m.subs.get(s.id);
    assert.ok(ms !== undefined, `${step}: unexpected subscription ${s.id}`);
    assert.equal(s.status, ms.status, `${step}: ${s.id} (${s.offerId}) status`);
    if (ms.kind !== 'once') assert.equal(s.endIndex, ms.endIndex, `${step}: ${s.id} endIndex`);
    if (ms.kind === 'plan' && m.live(ms)) assert.equal(s.offerId, m.termAt(ms, indexAt(ms.anchorMs, h.clock.nowMs())), `${step}: ${s.id} current plan`);
  }
  const orders = (await h.billing.listOrders({ accountId: a })).filter((o) => o.type !== 'cancel' && o.type !== 'downgrade');
  assert.equal(orders.length, m.orders.length, `${step}: order count (${orders.map((o) => o.type).join(',')} vs ${m.orders.map((o) => o.type).join(',')})`);
  // Renewal orders: the model does not know their ids; match by (subscription, cycle), which must be unique.
  const renewals = new Map<string, (typeof orders)[number]>();
  for (const o of orders.filter((x) => x.type === 'renew')) {
    const key = `${o.subscriptionId}#${String(o.details.cycleIndex)}`;
    assert.ok(!renewals.has(key), `${step}: two renewal orders for ${key}`);
    renewals.set(key, o);
  }
  for (const mo of m.orders) {
    const o = mo.type === 'renew' ? renewals.get(`${mo.subId}#${mo.cycle}`) : orders.find((x) => x.id === mo.id);
    assert.ok(o !== undefined, `${step}: missing ${mo.type} order ${mo.id || `${mo.subId}#${mo.cycle}`}`);
    assert.equal(o.amountMinor, mo.type === 'refund' ? -mo.amount : mo.amount, `${step}: ${mo.type} ${o.id} amount`);
    assert.equal(o.status, mo.status, `${step}: ${mo.type} ${o.id} status`);
    if (mo.type === 'renew') mo.id = o.id;
  }
  // At most one allowance bucket per (subscription, cycle): a schedule's cycle buckets are `<term ref>#<n>`, n
  // counted from the schedule's own anchor, so the cycle is told by the bucket's start.
  const cycles = new Set<string>();
  for (const b of await h.charging.listBuckets(a)) {
    const mm = /^sub:([^:]+):.*#\d+$/.exec(b.sourceRef);
    if (mm === null) continue;
    const key = `${mm[1]}@${new Date(b.effectiveAtMs).toISOString()}`;
    assert.ok(!cycles.has(key), `${step}: two allowance buckets for ${key}`);
    cycles.add(key);
  }
}

/** A closed month's bill = its orders' lines + the money its usage records charged. */
async function checkBill(h: BillingHarness, a: string, period: string): Promise<void> {
  const p = parsePeriod(period)!;
  const bill = (await h.billing.listBills({ accountId: a, period }))[0];
  const orders = (await h.billing.listOrders({ accountId: a })).filter((o) => o.effectiveAtMs >= p.startMs && o.effectiveAtMs < p.endMs);
  const usage = await h.charging.listUsage(a, { fromMs: p.startMs, toMs: p.endMs });
  const ordersMinor = orders.flatMap((o) => o.lines).reduce((s, l) => s + l.amountMinor, 0);
  const usageMinor = usage
    .flatMap((u) => u.charges)
    .filter((c) => c.kind === 'wallet' || c.kind === 'postpaid_line')
    .reduce((s, c) => s + c.amount, 0);
  if (bill === undefined) {
    assert.equal(ordersMinor + usageMinor, 0, `${period}: no bill but activity`);
    return;
  }
  assert.equal(bill.totalMinor, ordersMinor + usageMinor, `${period}: bill total = orders + usage`);
  assert.equal(
    bill.lines.reduce((s, l) => s + l.amountMinor, 0),
    bill.totalMinor,
    `${period}: bill lines add up`,
  );
}

async function runScenario(make: () => TestStores, actions: Action[], rules?: Partial<PlannerRules>): Promise<void> {
  const h = billingHarness(make(), { startMs: START, catalogText: CATALOG, rules });
  const m = new Model();
  const a = await h.newAccount('Prop');
  const sent: Sent[] = [];
  let n = 0;
  const b = h.billing;
  const billed = new Set<string>();
  const send = async (run: (key: string) => Promise<Res>, other: (key: string) => Promise<Res>): Promise<Res> => {
    const key = `k${++n}`;
    const result = await run(key);
    sent.push({ key, run, other, result });
    return result;
  };
  for (const [i, act] of actions.entries()) {
    const step = `step ${i} ${JSON.stringify(act)}`;
    const now = h.clock.nowMs();
    if (act.t !== 'jump' && act.t !== 'codes' && act.t !== 'replay') m.catchUp(now);
    const plan = m.plan();
    switch (act.t) {
      case 'jump': {
        h.clock.advance(act.hours * 3_600_000);
        await b.renewDue();
        m.catchUp(h.clock.nowMs());
        // Bill every month that has closed (at most once); each must add up.
        const cur = new Date(h.clock.nowMs()).toISOString().slice(0, 7);
        for (let t = START; new Date(t).toISOString().slice(0, 7) < cur; t += 28 * DAY) {
          const period = new Date(t).toISOString().slice(0, 7);
          if (billed.has(period)) continue;
          billed.add(period);
          const r = await b.runBills(period);
          assert.ok(r.ok, `${step}: bill run ${period}`);
          await checkBill(h, a, period);
        }
        break;
      }
      case 'topup': {
        const r = await send(
          (k) => b.topUp({ accountId: a, amountMinor: act.amount, actor, idempotencyKey: k }),
          (k) => b.topUp({ accountId: a, amountMinor: act.amount + 1, actor, idempotencyKey: k }),
        );
        assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
        m.wallet += act.amount;
        m.orders.push({
          id: (r.value.value as { order: { id: string } }).order.id,
          type: 'topup',
          amount: act.amount,
          status: 'completed',
          paidBy: 'external',
          subId: null,
          cycle: null,
          at: now,
          refunded: 0,
        });
        m.settleUnpaid(now);
        break;
      }
      case 'subscribe': {
        const r = await send(
          (k) => b.subscribe({ accountId: a, offerId: act.offerId, actor, idempotencyKey: k }),
          (k) => b.subscribe({ accountId: a, offerId: act.offerId === 'pack' ? 'basic' : 'pack', actor, idempotencyKey: k }),
        );
        const price = PRICE[act.offerId]!;
        if (act.offerId !== 'pack' && plan !== undefined) {
          assert.ok(!r.ok && r.code === 'conflict', `${step}: second plan refused`);
          break;
        }
        if (m.wallet < price) {
          assert.ok(!r.ok && r.code === 'payment_required', `${step}: unaffordable refused`);
          break;
        }
        assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
        const v = r.value.value as { subscription: { id: string }; order: { id: string } };
        m.wallet -= price;
        const id = v.subscription.id;
        m.subs.set(
          id,
          act.offerId === 'pack'
            ? {
                id,
                offerId: 'pack',
                kind: 'once',
                parentId: null,
                status: 'active',
                anchorMs: now,
                terms: [{ from: 0, offerId: 'pack' }],
                renewedThrough: 0,
                endIndex: null,
                endReason: null,
                expiresAtMs: now + 10 * DAY,
              }
            : {
                id,
                offerId: act.offerId,
                kind: 'plan',
                parentId: null,
                status: 'active',
                anchorMs: now,
                terms: [{ from: 0, offerId: act.offerId }],
                renewedThrough: 0,
                endIndex: null,
                endReason: null,
                expiresAtMs: null,
              },
        );
        m.orders.push({ id: v.order.id, type: 'subscribe', amount: price, status: 'completed', paidBy: 'wallet', subId: id, cycle: 0, at: now, refunded: 0 });
        break;
      }
      case 'change': {
        if (plan === undefined) break;
        const r = await send(
          (k) => b.changePlan({ subscriptionId: plan.id, offerId: act.offerId, actor, idempotencyKey: k }),
          (k) => b.changePlan({ subscriptionId: plan.id, offerId: act.offerId === 'pro' ? 'basic' : 'pro', actor, idempotencyKey: k }),
        );
        if (plan.status === 'past_due') {
          assert.ok(!r.ok && r.code === 'payment_required', `${step}: past due refused`);
          break;
        }
        if (plan.endIndex !== null) {
          assert.ok(!r.ok && r.code === 'conflict', `${step}: ending plan refused`);
          break;
        }
        const k = indexAt(plan.anchorMs, now);
        const cur = m.termAt(plan, k);
        const pending = plan.terms.some((t) => t.from > k);
        if (cur === act.offerId && !pending) {
          assert.ok(!r.ok && r.code === 'conflict', `${step}: same plan refused`);
          break;
        }
        if (PRICE[act.offerId]! > PRICE[cur]!) {
          const charge = share(PRICE[act.offerId]!, plan.anchorMs, k, now, true) - share(PRICE[cur]!, plan.anchorMs, k, now, false);
          if (charge > m.wallet) {
            assert.ok(!r.ok && r.code === 'payment_required', `${step}: unaffordable upgrade refused`);
            break;
          }
          assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
          m.wallet -= charge;
          const upgradeId = (r.value.value as { order: { id: string } }).order.id;
          plan.terms = [...plan.terms.filter((t) => t.from <= k), { from: k, offerId: act.offerId, order: upgradeId }];
          m.orders.push({
            id: upgradeId,
            type: 'upgrade',
            amount: charge,
            status: 'completed',
            paidBy: 'wallet',
            subId: plan.id,
            cycle: k,
            at: now,
            refunded: 0,
          });
        } else {
          assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
          plan.terms = [...plan.terms.filter((t) => t.from <= k), { from: k + 1, offerId: act.offerId }];
        }
        break;
      }
      case 'cancel': {
        const s = [...m.subs.values()].find((x) => m.live(x) && x.kind === act.which);
        if (s === undefined) break;
        const r = await send(
          (k) => b.cancel({ subscriptionId: s.id, actor, idempotencyKey: k }),
          async () => ({ ok: false, code: 'skip', message: '' }),
        );
        if (s.kind === 'once') {
          assert.ok(!r.ok && r.code === 'unprocessable', `${step}: one-time cancel refused`);
          break;
        }
        if (s.endIndex !== null) {
          assert.ok(!r.ok && r.code === 'conflict', `${step}: already ending`);
          break;
        }
        assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
        m.endFamily(s, indexAt(s.anchorMs, now) + 1, 'canceled');
        break;
      }
      case 'addon': {
        const r = await send(
          (k) => b.buyAddon({ accountId: a, offerId: act.offerId, actor, idempotencyKey: k }),
          (k) => b.buyAddon({ accountId: a, offerId: act.offerId, quantity: 2, actor, idempotencyKey: k }),
        );
        const renewing = act.offerId === 'boost';
        if (renewing && plan === undefined) {
          assert.ok(!r.ok && r.code === 'unprocessable', `${step}: boost needs a plan`);
          break;
        }
        const k = plan === undefined ? 0 : indexAt(plan.anchorMs, now);
        const price = renewing ? share(PRICE.boost!, plan!.anchorMs, k, now, true) : PRICE.extra!;
        if (price > m.wallet) {
          assert.ok(!r.ok && r.code === 'payment_required', `${step}: unaffordable add-on refused`);
          break;
        }
        assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
        const v = r.value.value as { subscription: { id: string }; order: { id: string } };
        m.wallet -= price;
        const id = v.subscription.id;
        m.subs.set(
          id,
          renewing
            ? {
                id,
                offerId: 'boost',
                kind: 'boost',
                parentId: plan!.id,
                status: 'active',
                anchorMs: plan!.anchorMs,
                terms: [{ from: k, offerId: 'boost' }],
                renewedThrough: k,
                endIndex: plan!.endIndex,
                endReason: plan!.endIndex === null ? null : 'parent_ended',
                expiresAtMs: null,
              }
            : {
                id,
                offerId: 'extra',
                kind: 'once',
                parentId: plan?.id ?? null,
                status: 'active',
                anchorMs: now,
                terms: [{ from: 0, offerId: 'extra' }],
                renewedThrough: 0,
                endIndex: null,
                endReason: null,
                expiresAtMs: plan === undefined ? now + 10 * DAY : monthStart(plan.anchorMs, k + 1),
              },
        );
        m.orders.push({
          id: v.order.id,
          type: 'addon',
          amount: price,
          status: 'completed',
          paidBy: 'wallet',
          subId: id,
          cycle: renewing ? k : null,
          at: now,
          refunded: 0,
        });
        break;
      }
      case 'refund': {
        const candidates = m.orders.filter(
          (o) =>
            ['subscribe', 'renew', 'upgrade', 'addon'].includes(o.type) && o.status === 'completed' && o.amount > 0 && o.id !== '' && o.refunded < o.amount,
        );
        if (candidates.length === 0) break;
        const o = candidates[act.pick % candidates.length]!;
        const left = o.amount - o.refunded;
        const amount = act.partial && left > 1 ? Math.ceil(left / 2) : left;
        const r = await send(
          (k) => b.refund({ orderId: o.id, amountMinor: act.partial ? amount : undefined, reason: 'prop', actor, idempotencyKey: k }),
          (k) => b.refund({ orderId: o.id, amountMinor: 1, reason: 'other', actor, idempotencyKey: k }),
        );
        assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
        o.refunded += amount;
        m.wallet += amount;
        m.orders.push({
          id: (r.value.value as { id: string }).id,
          type: 'refund',
          amount,
          status: 'completed',
          paidBy: 'wallet',
          subId: o.subId,
          cycle: null,
          at: now,
          refunded: 0,
        });
        const s = o.subId === null ? undefined : m.subs.get(o.subId);
        if (amount === left && s !== undefined && m.live(s) && o.type === 'upgrade') {
          // A full refund of an upgrade in the running cycle reverts it: back to the plan before it for the rest of
          // the cycle, and the subscription ends at the end of the cycle (main's attacker fix F5, revertUpgrade).
          const k = indexAt(s.anchorMs, now);
          if (o.cycle! >= k) {
            if (s.endIndex === null || s.endIndex > k + 1) m.endFamily(s, k + 1, 'refunded');
            s.terms = s.terms.filter((t) => t.order !== o.id);
          }
        }
        if (amount === left && s !== undefined && m.live(s) && o.type !== 'upgrade') {
          const k = s.kind === 'once' ? 0 : indexAt(s.anchorMs, now);
          const paidFor = o.type === 'renew' ? o.cycle! : s.kind === 'once' ? 0 : indexAt(s.anchorMs, o.at);
          if (s.kind === 'once' || paidFor >= k) {
            if (s.kind !== 'once') m.endFamily(s, k + 1, 'refunded');
            s.status = 'canceled';
            s.endReason = 'refunded';
            if (s.kind === 'once') s.expiresAtMs = now;
          }
        }
        break;
      }
      case 'codes': {
        const r = await b.generateCodes({ offerId: act.offerId, count: 1, actor, idempotencyKey: null });
        assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
        m.codes.push({ code: r.value.value.codes![0]!, offerId: act.offerId, used: false });
        break;
      }
      case 'redeem': {
        if (m.codes.length === 0) break;
        const c = m.codes[act.pick % m.codes.length]!;
        const r = await send(
          (k) => b.redeemCode({ accountId: a, code: c.code, actor, idempotencyKey: k }),
          async () => ({ ok: false, code: 'skip', message: '' }),
        );
        if (c.used) {
          assert.ok(!r.ok && r.code === 'unprocessable', `${step}: code used twice`);
          break;
        }
        assert.ok(r.ok, `${step}: ${r.ok ? '' : r.message}`);
        c.used = true;
        const v = r.value.value as { order: { id: string }; subscription: { id: string } | null };
        if (c.offerId === 'card') m.wallet += 3000;
        else
          m.subs.set(v.subscription!.id, {
            id: v.subscription!.id,
            offerId: 'pack',
            kind: 'once',
            parentId: null,
            status: 'active',
            anchorMs: now,
            terms: [{ from: 0, offerId: 'pack' }],
            renewedThrough: 0,
            endIndex: null,
            endReason: null,
            expiresAtMs: now + 10 * DAY,
          });
        m.orders.push({
          id: v.order.id,
          type: 'redeem_code',
          amount: c.offerId === 'card' ? 3000 : PRICE.pack!,
          status: 'completed',
          paidBy: 'code',
          subId: v.subscription?.id ?? null,
          cycle: null,
          at: now,
          refunded: 0,
        });
        break;
      }
      case 'use': {
        await b.catchUp(a);
        const r = await h.use(a, act.tokens, act.tokens);
        if (r.ok) m.wallet -= r.record.charges.filter((c) => c.kind === 'wallet').reduce((s, c) => s + c.amount, 0);
        break;
      }
      case 'race': {
        // The request's hold takes from the wallet while the order runs: keep the order's own wallet debits (due
        // renewals, unpaid orders it would settle) out of the race, so the model's order of events is the system's.
        await b.catchUp(a);
        if (m.orders.some((o) => o.status === 'unpaid')) break;
        const key = `race${++n}`;
        const order = () => b.topUp({ accountId: a, amountMinor: act.amount, actor, idempotencyKey: key });
        const [r1, used, r2] = await Promise.all([order(), h.use(a, act.tokens, act.tokens), order()]);
        assert.ok(r1.ok && r2.ok, `${step}: both answered`);
        assert.equal([r1, r2].filter((r) => r.ok && r.value.replayed).length, 1, `${step}: exactly one of two concurrent same-key orders replays`);
        assert.deepEqual(JSON.parse(JSON.stringify(r1.value.value.order)), JSON.parse(JSON.stringify(r2.value.value.order)), `${step}: both get the one order`);
        if (used.ok) m.wallet -= used.record.charges.filter((c) => c.kind === 'wallet').reduce((x, c) => x + c.amount, 0);
        m.wallet += act.amount;
        m.orders.push({
          id: r1.value.value.order.id,
          type: 'topup',
          amount: act.amount,
          status: 'completed',
          paidBy: 'external',
          subId: null,
          cycle: null,
          at: now,
          refunded: 0,
        });
        m.settleUnpaid(now);
        break;
      }
      case 'replay': {
        if (sent.length === 0) break;
        const s = sent[act.pick % sent.length]!;
        if (!s.result.ok) break; // a refused order stored nothing: its key may be used again
        const before = { wallet: await walletOf(h, a), orders: (await b.listOrders({ accountId: a })).length };
        const r = act.same ? await s.run(s.key) : await s.other(s.key);
        if (act.same) {
          assert.ok(r.ok && r.value.replayed, `${step}: the same request under the same key replays`);
          assert.deepEqual(
            JSON.parse(JSON.stringify(r.value.value)),
            JSON.parse(JSON.stringify(s.result.value.value)),
            `${step}: replay returns the first answer`,
          );
        } else if (r.ok || r.code !== 'skip') {
          assert.ok(!r.ok && r.code === 'idempotency_key_reused', `${step}: another request under a used key is refused`);
        }
        assert.deepEqual({ wallet: await walletOf(h, a), orders: (await b.listOrders({ accountId: a })).length }, before, `${step}: a replay changes nothing`);
        break;
      }
    }
    await check(h, m, a, step);
  }
}

const stores: Record<string, { make: () => TestStores; runs: number }> = {
  memory: { make: () => ({ accounts: createMemoryAccountStore(), charging: openMemoryChargingStore(), billing: createMemoryBillingStore() }), runs: 60 },
  sqlite: {
    make: () => {
      const db = openSqlite(':memory:');
      return { accounts: openSqliteAccountStore(db), charging: openSqliteChargingStore(db), billing: openSqliteBillingStore(db) };
    },
    runs: 15,
  },
};
// PostgreSQL: one schema for the file, emptied before each run (fewer runs: every step is round trips to a server).
const pg = await openTestDb();
after(() => pg.drop());
stores.postgres = {
  make: () => {
    const ready = truncateAll(pg.db);
    const charging = openPostgresChargingStore(pg.db);
    return {
      accounts: afterReady(ready, openPostgresAccountStore(pg.db)),
      charging: afterReady(ready, charging),
      billing: afterReady(ready, openPostgresBillingStore(pg.db, { charging })),
    };
  },
  runs: 8,
};

for (const [name, s] of Object.entries(stores)) {
  describe(`billing agrees with the reference model (${name} stores)`, () => {
    test('a year of random orders, renewals, refunds, redemptions, replays and usage', async () => {
      // ~40 steps averaging ~10 days of clock per jump: most runs cover a year of renewals.
      const out = await fc.check(
        fc.asyncProperty(fc.array(actionArb, { minLength: 20, maxLength: 60 }), (actions) => runScenario(s.make, actions)),
        {
          numRuns: Number(process.env.BILLING_PROP_RUNS ?? s.runs),
          seed: process.env.BILLING_PROP_SEED === undefined ? undefined : Number(process.env.BILLING_PROP_SEED),
        },
      );
      // The first line of the failing check (the model's words), then fast-check's report with the counterexample.
      if (out.failed) assert.fail(`${String((out.errorInstance as Error)?.message ?? out.errorInstance).split('\n')[0]}\n${fc.defaultReportMessage(out)}`);
    });
  });
}

/**
 * The property test must be able to fail: plant a bug in one planner rule (through the BillingDeps.rules test
 * seam) and fast-check must find a year of orders on which billing and the reference model disagree.
 */
describe('the reference model catches a planted planner bug', () => {
  const planted: [string, Partial<PlannerRules>][] = [
    ['an upgrade charges the rest of the cycle rounded down', { upgradeChargeRounding: 'floor' }],
    ['a full refund of the running cycle leaves the subscription running', { fullRefundEndsSubscription: false }],
  ];
  for (const [bug, rules] of planted) {
    test(`planted: ${bug}`, async (t) => {
      const out = await fc.check(
        fc.asyncProperty(fc.array(actionArb, { minLength: 20, maxLength: 60 }), (actions) => runScenario(stores.memory!.make, actions, rules)),
        { numRuns: 200, seed: 14, endOnFailure: true },
      );
      assert.ok(out.failed, `fast-check found no counterexample for the planted bug "${bug}" in ${out.numRuns} runs`);
      // The model's words for the disagreement, e.g. "step 5 {...}: unaffordable upgrade refused".
      t.diagnostic(`counterexample after ${out.numRuns} run(s): ${String((out.errorInstance as Error)?.message ?? out.errorInstance).split('\n')[0]}`);
    });
  }
});
