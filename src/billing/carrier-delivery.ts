/** The bill run's second half: hand pending phone-bill payments to the carrier channel and record the answers. */
import type { CarrierCharge } from './carrier.ts';
import { ok } from '../core/index.ts';
import type { Ctx } from './context.ts';
import { planner, runPlan } from './plan.ts';

const MAX_ATTEMPTS = 5;

type Delivery = { submitted: number; failed: number; pending: number };

/**
 * One hand-over at a time per billing store (attack finding atk-billing F3): a second bill run or delivery started
 * while one is handing payments over listed the same pending payments and submitted them again (two carrier
 * files with the same charge). It now waits for the running hand-over and answers with its result. Between
 * processes (PostgreSQL, many nodes) the carrier's idempotency key, the payment id, is what dedupes.
 */
const running = new WeakMap<object, Promise<Delivery>>();

/** Hand pending phone-bill payments to the carrier (outside any transaction: this is network or disk I/O). */
export function deliverCarrierCharges(ctx: Ctx): Promise<Delivery> {
  const key = ctx.deps.store;
  const busy = running.get(key);
  if (busy !== undefined) return busy;
  const run = deliver(ctx).finally(() => {
    if (running.get(key) === run) running.delete(key);
  });
  running.set(key, run);
  return run;
}

async function deliver(ctx: Ctx): Promise<Delivery> {
  const { store, carrier } = ctx.deps;
  const pending = (await store.listPayments({ status: 'pending' })).filter((p) => p.channel === 'phone_bill' && p.billId !== null);
  if (carrier === undefined || pending.length === 0) return { submitted: 0, failed: 0, pending: pending.length };
  const charges: CarrierCharge[] = [];
  for (const p of pending) {
    const bill = await store.getBill(p.billId!);
    charges.push({
      paymentId: p.id,
      billId: p.billId!,
      accountId: p.accountId,
      period: bill?.period ?? '',
      amountMinor: p.amountMinor,
      currency: p.currency,
      description: `TokenGrid bill ${bill?.period ?? ''} (${p.billId})`,
    });
  }
  const results = await carrier.submit(charges);
  let submitted = 0;
  let failed = 0;
  for (const r of results) {
    const p = pending.find((x) => x.id === r.paymentId);
    if (p === undefined) continue;
    const attempts = p.attempts + 1;
    const status = r.ok ? 'submitted' : attempts >= MAX_ATTEMPTS ? 'failed' : 'pending';
    if (r.ok) submitted++;
    else failed++;
    const saved = await runPlan(
      ctx,
      p.accountId,
      { history: false },
      planner((plan) => {
        plan.deps.store.updatePayment({ ...p, attempts, status, reference: r.ok ? r.reference : r.error, updatedAtMs: plan.now() });
        return ok(true);
      }),
    );
    // An answer that cannot be saved (the account kept changing) leaves the payment pending: the next run hands it
    // over again under the same payment id (the carrier's idempotency key); the other answers are still saved.
    if (!saved.ok) {
      if (saved.code !== 'conflict') throw new Error(`carrier answer for payment ${p.id}: ${saved.message}`);
      ctx.deps.log?.('error', { paymentId: p.id, accountId: p.accountId, err: saved.message, alert: 'carrier_answer_unsaved' }, 'carrier answer not saved');
    }
  }
  return { submitted, failed, pending: pending.length - submitted };
}
