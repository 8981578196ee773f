/**
 * An exactly consistent in-process cache of the charging rows the hot path reads (an account's live buckets,
 * schedules, policy, member caps and usage rows, and open reservations), so a reserve or settle runs its
 * transaction with almost no reads.
 *
 * Why it stays exact: every write to the charging tables through this connection goes through the store,
 * which applies the same mutation to the cache only AFTER the transaction committed (a rolled-back
 * transaction leaves the cache untouched). Writes by any OTHER connection (another process such as the CLI,
 * or a second Database handle) change SQLite's `PRAGMA data_version`, which the store reads at the start of
 * every transaction while holding the write lock: any change drops the whole cache. Planners must treat
 * views as read-only (the Work copies what it changes).
 */
import { copyBucket } from '../../charging/index.ts';
import type { AccountMutation, AccountPolicy, AllowanceSchedule, Bucket, MemberCap, MemberCapUsage, Reservation } from '../../charging/index.ts';

export interface CacheLoaders {
  liveBuckets(accountId: string, nowMs: number): Bucket[];
  schedules(accountId: string): AllowanceSchedule[];
  policy(accountId: string): AccountPolicy | null;
  cap(accountId: string, memberId: string): MemberCap | null;
  latestMemberUsage(accountId: string, memberId: string): MemberCapUsage[];
}

interface MemberState {
  cap: MemberCap | null;
  /** All rows with cycleIndex >= the second newest row that existed when loaded, plus any created since. */
  rows: Map<number, MemberCapUsage>;
}

export class AccountEntry {
  #schedules: AllowanceSchedule[];
  /** The schedules not ended before their next cycle (what views show), made when first asked for. */
  #active: AllowanceSchedule[] | null = null;

  constructor(
    readonly buckets: Map<string, Bucket>,
    schedules: AllowanceSchedule[],
    public policy: AccountPolicy | null,
    readonly members = new Map<string, MemberState>(),
  ) {
    this.#schedules = schedules;
  }

  get schedules(): AllowanceSchedule[] {
    return this.#schedules;
  }

  /** Replace the schedules (never change the array or its elements in place: views share them). */
  set schedules(v: AllowanceSchedule[]) {
    this.#schedules = v;
    this.#active = null;
  }

  /** Schedules that are not ended before their next cycle. Shared by every view until the schedules change: read only. */
  get activeSchedules(): AllowanceSchedule[] {
    return (this.#active ??= this.#schedules.filter((sc) => sc.endsAtMs === null || sc.nextCycleStartMs < sc.endsAtMs));
  }
}

export class ChargingCache {
  readonly #accounts = new Map<string, AccountEntry>();
  /** The account last moved to the end of the LRU order (undefined when unknown): asking for it again moves nothing. */
  #newest: string | undefined;
  readonly #openReservations = new Map<string, Reservation>();
  readonly #accountsMax: number;
  readonly #reservationsMax: number;

  constructor(accountsMax = 10_000, reservationsMax = 100_000) {
    this.#accountsMax = accountsMax;
    this.#reservationsMax = reservationsMax;
  }

  clear(): void {
    this.#accounts.clear();
    this.#newest = undefined;
    this.#openReservations.clear();
  }

  invalidate(accountId: string): void {
    this.#accounts.delete(accountId);
    if (this.#newest === accountId) this.#newest = undefined;
    for (const [id, r] of this.#openReservations) if (r.accountId === accountId) this.#openReservations.delete(id);
  }

  account(accountId: string, nowMs: number, load: CacheLoaders): AccountEntry {
    let e = this.#accounts.get(accountId);
    if (e !== undefined) {
      if (this.#newest !== accountId) {
        this.#accounts.delete(accountId); // LRU: re-insert as the newest
        this.#accounts.set(accountId, e);
        this.#newest = accountId;
      }
      return e;
    }
    e = new AccountEntry(new Map(load.liveBuckets(accountId, nowMs).map((b) => [b.id, b])), load.schedules(accountId), load.policy(accountId));
    this.#accounts.set(accountId, e);
    this.#newest = accountId;
    if (this.#accounts.size > this.#accountsMax) this.#accounts.delete(this.#accounts.keys().next().value!);
    return e;
  }

  member(e: AccountEntry, accountId: string, memberId: string, load: CacheLoaders): MemberState {
    let m = e.members.get(memberId);
    if (m === undefined) {
      m = { cap: load.cap(accountId, memberId), rows: new Map(load.latestMemberUsage(accountId, memberId).map((r) => [r.cycleIndex, r])) };
      e.members.set(memberId, m);
    }
    return m;
  }

  /** A cached bucket, without touching the LRU order (undefined when the account or the bucket is not cached). */
  peekBucket(accountId: string, bucketId: string): Bucket | undefined {
    return this.#accounts.get(accountId)?.buckets.get(bucketId);
  }

  openReservation(id: string): Reservation | undefined {
    return this.#openReservations.get(id);
  }

  /** Apply a committed mutation (never call before the commit succeeded). */
  applyCommitted(accountId: string, m: AccountMutation): void {
    const e = this.#accounts.get(accountId);
    const r = m.reservationUpsert;
    if (r !== null) {
      if (r.state === 'open') this.#openReservations.set(r.id, r);
      else this.#openReservations.delete(r.id);
      if (this.#openReservations.size > this.#reservationsMax) this.#openReservations.delete(this.#openReservations.keys().next().value!);
    }
    if (e === undefined) return;
    for (const b of m.bucketsCreate) e.buckets.set(b.id, copyBucket(b));
    for (const d of m.bucketDeltas) {
      const b = e.buckets.get(d.bucketId);
      if (b === undefined) continue; // not cached (e.g. an expired bucket read for a late release): the DB has it
      // A new object (a view may still hold the old one), made by copyBucket: chained spreads are slow.
      e.buckets.set(
        b.id,
        copyBucket(
          b,
          b.amount + (d.amount ?? 0),
          b.consumed + (d.consumed ?? 0),
          b.held + (d.held ?? 0),
          b.forfeited + (d.forfeited ?? 0),
          b.floor + (d.floor ?? 0),
        ),
      );
    }
    if (m.schedulesUpdate.length > 0) {
      e.schedules = e.schedules.map((s) => {
        const u = m.schedulesUpdate.find((x) => x.scheduleId === s.id);
        return u === undefined ? s : { ...s, nextCycleIndex: u.nextCycleIndex, nextCycleStartMs: u.nextCycleStartMs };
      });
    }
    for (const d of m.memberUsageDeltas) {
      const ms = e.members.get(d.memberId);
      if (ms === undefined) continue;
      const row = ms.rows.get(d.cycleIndex) ?? { accountId, memberId: d.memberId, cycleIndex: d.cycleIndex, used: 0, held: 0 };
      ms.rows.set(d.cycleIndex, {
        accountId: row.accountId,
        memberId: row.memberId,
        cycleIndex: row.cycleIndex,
        used: row.used + d.used,
        held: row.held + d.held,
      });
    }
    if (m.policyUpsert !== null) e.policy = m.policyUpsert;
    if (m.memberCapUpsert !== null) {
      const ms = e.members.get(m.memberCapUpsert.memberId);
      if (ms !== undefined) ms.cap = m.memberCapUpsert;
    }
  }
}
