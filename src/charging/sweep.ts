/**
 * Timers' work: expire reservations past validUntil + grace (a crashed or abandoned request never locks
 * balance), forfeit expired buckets' leftovers, and create due cycle buckets. Each item is its own atomic
 * account operation, and all of it also happens lazily inside reserve/extend/settle, so correctness never
 * depends on the timers running on time.
 */
import type { Ctx } from './context.ts';
import { catchUp } from './context.ts';
import { Work } from './work.ts';
import { releaseAll } from './release.ts';
import type { RenewalFailure, RenewalReport } from './management-types.ts';

export async function sweepExpired(ctx: Ctx): Promise<number> {
  const { store, clock } = ctx.deps;
  const nowMs = clock.nowMs();
  let expired = 0;
  const due = await store.findExpiredReservations(nowMs - ctx.config.reservationGraceMs, ctx.config.sweepBatchSize);
  for (const d of due) {
    expired += await store.runAccountOp({ accountId: d.accountId, nowMs, reservationId: d.reservationId }, (view) => {
      const w = new Work(view);
      const r = w.reservation;
      if (r === null || r.state !== 'open' || r.validUntilMs + ctx.config.reservationGraceMs >= nowMs) return { mutation: null, result: 0 };
      catchUp(ctx, w);
      releaseAll(w, r, 'expired');
      return { mutation: w.toMutation(), result: 1 };
    });
  }
  // Leftovers are forfeited once, right after expiry (a hold released later is forfeited by its release), so
  // only buckets that expired since the last complete pass need a look; the first pass of a process looks at all.
  const accounts = await store.findAccountsWithExpiredLeftovers(ctx.sweptLeftoversUntilMs, nowMs, ctx.config.sweepBatchSize);
  for (const accountId of accounts) await catchUpAccount(ctx, accountId, nowMs);
  if (accounts.length < ctx.config.sweepBatchSize) ctx.sweptLeftoversUntilMs = nowMs;
  return expired;
}

export async function renewDue(ctx: Ctx): Promise<number> {
  return (await renewDueReport(ctx)).created;
}

/**
 * Create due cycles account by account. One account's failure (e.g. a store constraint) never stops the others:
 * it is caught, listed in `failures`, and the run goes on (the caller logs and alerts; the auditor reports it).
 */
export async function renewDueReport(ctx: Ctx): Promise<RenewalReport> {
  const nowMs = ctx.deps.clock.nowMs();
  let created = 0;
  const failures: RenewalFailure[] = [];
  for (const accountId of await ctx.deps.store.findAccountsWithDueSchedules(nowMs, ctx.config.sweepBatchSize)) {
    try {
      created += await catchUpAccount(ctx, accountId, nowMs);
    } catch (e) {
      failures.push({ accountId, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return { created, failures };
}

export function catchUpAccount(ctx: Ctx, accountId: string, nowMs: number): Promise<number> {
  return ctx.deps.store.runAccountOp({ accountId, nowMs, includeExpiredLeftovers: true }, (view) => {
    const w = new Work(view);
    const created = catchUp(ctx, w);
    return { mutation: w.toMutation(), result: created };
  });
}
