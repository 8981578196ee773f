/**
 * void: the upstream failed before the first byte. Everything held goes back (a request-count plan is not
 * charged either) and NO usage record is written: nothing was delivered, and the gateway's log line keeps the
 * failure. The reservation row stays, state 'voided', for audit. Idempotent; a no-op on a closed reservation.
 */
import type { Ctx } from './context.ts';
import { catchUp } from './context.ts';
import { Work } from './work.ts';
import { releaseAll } from './release.ts';

export async function voidReservation(ctx: Ctx, reservationId: string): Promise<void> {
  const nowMs = ctx.deps.clock.nowMs();
  await ctx.deps.store.runAccountOp({ accountId: null, nowMs, reservationId }, (view) => {
    const w = new Work(view);
    if (w.reservation === null || w.reservation.state !== 'open') return { mutation: null, result: undefined };
    catchUp(ctx, w);
    releaseAll(w, w.reservation, 'voided');
    return { mutation: w.toMutation(), result: undefined };
  });
}
