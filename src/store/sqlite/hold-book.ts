/**
 * Memory-only holds of the SQLite charging store. A hold (an open reservation, the `held` amounts it puts on
 * buckets and on a member's cap row) is not a billing fact: nothing is owed until settle, and after a crash every
 * hold is released anyway (an in-flight request is never charged). So the embedded store keeps holds in the
 * process, like a carrier's online charging system keeps its reservations in memory, and writes to SQLite only
 * what is owed or granted (consumption, usage records, ledger, grants, renewals, and the closing row of a hold
 * that was voided or expired). A reserve or a stream extension is then decided in memory, without a transaction.
 *
 * What this needs (and what the store guarantees): one gateway process owns the data folder (app.ts takes a
 * lock), so no other process can hand out the same balance; every view the planner sees is the database's rows
 * plus these holds (the store overlays them), and the store re-checks the no-overspend bounds on those effective
 * values, since SQLite's CHECK constraints only see the durable part.
 *
 * Changes made inside a store transaction are recorded in an undo log; if the transaction rolls back, the holds
 * roll back with it (begin / commit / rollback mirror the SQLite transaction).
 */
import type { Bucket, MemberCapUsage, Reservation } from '../../charging/index.ts';

const memberKey = (accountId: string, memberId: string): string => `${accountId}\u0000${memberId}`;

/** Undo record kinds (see HoldBook.#undo). */
const UNDO_BUCKET = 0;
const UNDO_MEMBER = 1;
const UNDO_RESERVATION = 2;

export class HoldBook {
  readonly #bucketHeld = new Map<string, number>();
  /** accountId\0memberId -> cycleIndex -> held */
  readonly #memberHeld = new Map<string, Map<number, number>>();
  /** Open reservations whose holds live here. */
  readonly #open = new Map<string, Reservation>();
  /**
   * The undo log of the open transaction (null outside one): records of four slots, [what, key, cycleIndex,
   * value before] (a flat array rather than one closure per change: every settle writes some).
   */
  #undo: unknown[] | null = null;

  begin(): void {
    this.#undo = [];
  }

  commit(): void {
    this.#undo = null;
  }

  rollback(): void {
    const undo = this.#undo;
    this.#undo = null;
    if (undo === null) return;
    for (let i = undo.length - 4; i >= 0; i -= 4) {
      const what = undo[i] as number;
      const key = undo[i + 1] as string;
      const before = undo[i + 3];
      if (what === UNDO_BUCKET) {
        if (before === undefined) this.#bucketHeld.delete(key);
        else this.#bucketHeld.set(key, before as number);
      } else if (what === UNDO_MEMBER) {
        const cycleIndex = undo[i + 2] as number;
        let mm = this.#memberHeld.get(key);
        if (mm === undefined) this.#memberHeld.set(key, (mm = new Map()));
        if (before === undefined) mm.delete(cycleIndex);
        else mm.set(cycleIndex, before as number);
        if (mm.size === 0) this.#memberHeld.delete(key);
      } else if (before === undefined) this.#open.delete(key);
      else this.#open.set(key, before as Reservation);
    }
  }

  get size(): number {
    return this.#open.size;
  }

  isHeldHere(reservationId: string): boolean {
    return this.#open.has(reservationId);
  }

  reservation(id: string): Reservation | undefined {
    return this.#open.get(id);
  }

  /** The greatest request id of the open reservations held here ('' when none). */
  maxRequestId(): string {
    let max = '';
    for (const r of this.#open.values()) if (r.requestId > max) max = r.requestId;
    return max;
  }

  bucketHeld(bucketId: string): number {
    return this.#bucketHeld.get(bucketId) ?? 0;
  }

  /** The bucket as the planner must see it: its row plus the holds kept here. */
  overlay(b: Bucket): Bucket {
    const v = this.#bucketHeld.get(b.id);
    return v === undefined ? b : { ...b, held: b.held + v };
  }

  /** A member's usage rows (from the database) plus the holds kept here, including rows that exist only here. */
  overlayMember(accountId: string, memberId: string, rows: MemberCapUsage[]): MemberCapUsage[] {
    const m = this.#memberHeld.get(memberKey(accountId, memberId));
    if (m === undefined) return rows;
    const out = rows.map((r) => {
      const v = m.get(r.cycleIndex);
      return v === undefined ? r : { ...r, held: r.held + v };
    });
    for (const [cycleIndex, held] of m) {
      if (!rows.some((r) => r.cycleIndex === cycleIndex)) out.push({ accountId, memberId, cycleIndex, used: 0, held });
    }
    return out;
  }

  memberHeld(accountId: string, memberId: string, cycleIndex: number): number {
    return this.#memberHeld.get(memberKey(accountId, memberId))?.get(cycleIndex) ?? 0;
  }

  addBucketHeld(bucketId: string, delta: number): void {
    if (delta === 0) return;
    const before = this.#bucketHeld.get(bucketId);
    const next = (before ?? 0) + delta;
    if (next === 0) this.#bucketHeld.delete(bucketId);
    else this.#bucketHeld.set(bucketId, next);
    this.#undo?.push(UNDO_BUCKET, bucketId, 0, before);
  }

  addMemberHeld(accountId: string, memberId: string, cycleIndex: number, delta: number): void {
    if (delta === 0) return;
    const key = memberKey(accountId, memberId);
    let m = this.#memberHeld.get(key);
    if (m === undefined) this.#memberHeld.set(key, (m = new Map()));
    const before = m.get(cycleIndex);
    const next = (before ?? 0) + delta;
    if (next === 0) m.delete(cycleIndex);
    else m.set(cycleIndex, next);
    if (m.size === 0) this.#memberHeld.delete(key);
    this.#undo?.push(UNDO_MEMBER, key, cycleIndex, before);
  }

  /** Record an open reservation (state 'open'), or forget one that closed. */
  putReservation(r: Reservation): void {
    const before = this.#open.get(r.id);
    if (r.state === 'open') this.#open.set(r.id, r);
    else this.#open.delete(r.id);
    this.#undo?.push(UNDO_RESERVATION, r.id, 0, before);
  }

  openReservations(accountId: string): Reservation[] {
    const out: Reservation[] = [];
    for (const r of this.#open.values()) if (r.accountId === accountId) out.push(r);
    return out;
  }

  /** Open holds whose time limit is before `beforeMs` (the sweeper's work list), oldest first. */
  expired(beforeMs: number, limit: number): { reservationId: string; accountId: string; validUntilMs: number }[] {
    const out: { reservationId: string; accountId: string; validUntilMs: number }[] = [];
    for (const r of this.#open.values()) if (r.validUntilMs < beforeMs) out.push({ reservationId: r.id, accountId: r.accountId, validUntilMs: r.validUntilMs });
    out.sort((a, b) => a.validUntilMs - b.validUntilMs);
    return out.slice(0, limit);
  }
}
