/** Ending holds (pure, on a Work): shared by settle, void and the expiry sweep. */
import type { Bucket, Reservation, ReservationState } from './types.ts';
import type { Work } from './work.ts';
import { isExpired } from './burn-down.ts';

/**
 * End a hold of `held` on a bucket, charging `take` of it. The rest goes back to the bucket, unless the bucket
 * expired meanwhile: then it is forfeited (breakage), never made available again after expiry.
 */
export function endHold(w: Work, b: Bucket, held: number, take: number, ref: string): void {
  w.move(b.id, { held: -held, consumed: take });
  const released = held - take;
  if (released > 0 && isExpired(b, w.nowMs)) {
    w.move(b.id, { forfeited: released });
    w.ledger('forfeit', `release:${ref}`, { debit: `bucket:${b.id}`, credit: 'house:breakage', bucket: b, amount: released });
  }
}

/** Release everything an open reservation holds (buckets and member cap) and close it. */
export function releaseAll(w: Work, r: Reservation, state: Exclude<ReservationState, 'open' | 'settled'>): Reservation {
  for (const a of r.allocations) endHold(w, w.bucket(a.bucketId), a.amount, 0, r.id);
  if (r.memberId !== null && r.capCycleIndex !== null && r.capHeld > 0) w.moveMember(r.memberId, r.capCycleIndex, { held: -r.capHeld });
  const closed: Reservation = { ...r, state, closedAtMs: w.nowMs };
  w.setReservation(closed);
  return closed;
}
