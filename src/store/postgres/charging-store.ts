/**
 * PostgreSQL ChargingStore: the hot path shared by any number of gateway processes. Holds live in the database
 * (charging_buckets.held and open charging_reservations rows), never in one process's memory.
 *
 * `runAccountOp` is ONE round trip in the steady state (the optimistic path): this node keeps, per account, the
 * account part of the last view it read or wrote with the account's version (`charging_account_versions`, bumped by
 * every committed write of the account's charging rows, on every node). When the cache covers the scope, the pure
 * `decide` runs on it and one multi-statement simple query (PostgreSQL runs it as one implicit transaction) takes the
 * account's advisory lock, checks the version and what the cache assumed (no such reservation yet, no usage record
 * for the request), writes the mutation and bumps the version. Any server error there (a stale version, or a CHECK
 * backstop) rolls it all back and the operation takes the locked path, which decides again on a fresh view.
 *
 * The locked path (cache miss, stale, members, sweeps, due schedules) is two round trips on one pooled connection:
 *   1. `BEGIN; SELECT pg_advisory_xact_lock(<hash of the account id>); <version>; <the view's SELECTs>` (one
 *      simple-protocol query with several statements): the lock serializes every operation on the account across
 *      processes, and the view is read after it, so it is current;
 *   2. the pure `decide` runs here, then `<the mutation's INSERT/UPDATEs>; <version bump>; COMMIT` as one query (only
 *      `COMMIT` when nothing changes). A failing statement (a CHECK backstop, a duplicate key, a bucket outside the
 *      account) stops the query; the transaction is rolled back (a third round trip, on errors only).
 * A node runs one operation per account at a time (they would only race for the same version), and after a stale
 * attempt (another node works the account too) it skips the optimistic attempt for the next 64 operations on it.
 * The lock is per account, so accounts never wait for each other; 64-bit hash collisions only serialize two
 * accounts. Management writes take the same lock. Values go into the texts as literals (sql.ts).
 */
import pg from 'pg';
import { assert } from '../../core/index.ts';
import { decideBillingOps } from '../../charging/index.ts';
import type {
  AccountMutation,
  AccountPolicy,
  AccountScope,
  AccountView,
  AllowanceSchedule,
  Bucket,
  BucketDelta,
  ChargingOp,
  ChargingStore,
  Decision,
  LedgerEntry,
  MemberCap,
  MemberCapUsage,
  Reservation,
  StoredChargingEvent,
  UsageRecord,
} from '../../charging/index.ts';
import type { PgDb } from './db.ts';
import { bool, int, intOrNull, json, jsonOrNull, str, strOrNull } from './sql.ts';

type Row = Record<string, unknown>;

const BUCKET_COLS =
  'id, account_id, member_id, unit, currency, kind, amount, consumed, held, forfeited, floor, effective_at_ms, expires_at_ms, priority, models, rollover, source_ref, schedule_id, cycle_index, created_at_ms';

function bucketValues(b: Bucket): string {
  return `(${[
    str(b.id),
    str(b.accountId),
    strOrNull(b.memberId),
    str(b.unit),
    strOrNull(b.currency),
    str(b.kind),
    int(b.amount),
    int(b.consumed),
    int(b.held),
    int(b.forfeited),
    int(b.floor),
    int(b.effectiveAtMs),
    intOrNull(b.expiresAtMs),
    int(b.priority),
    jsonOrNull(b.models),
    bool(b.rollover),
    str(b.sourceRef),
    strOrNull(b.scheduleId),
    intOrNull(b.cycleIndex),
    int(b.createdAtMs),
  ].join(', ')})`;
}

function bucketFromRow(r: Row): Bucket {
  return {
    id: r.id as string,
    accountId: r.account_id as string,
    memberId: r.member_id as string | null,
    unit: r.unit as Bucket['unit'],
    currency: r.currency as string | null,
    kind: r.kind as Bucket['kind'],
    amount: r.amount as number,
    consumed: r.consumed as number,
    held: r.held as number,
    forfeited: r.forfeited as number,
    floor: r.floor as number,
    effectiveAtMs: r.effective_at_ms as number,
    expiresAtMs: r.expires_at_ms as number | null,
    priority: r.priority as number,
    models: r.models as string[] | null,
    rollover: r.rollover as boolean,
    sourceRef: r.source_ref as string,
    scheduleId: r.schedule_id as string | null,
    cycleIndex: r.cycle_index as number | null,
    createdAtMs: r.created_at_ms as number,
  };
}

/** The schedule's document, with its mutable columns winning. */
function scheduleFromRow(r: Row): AllowanceSchedule {
  return {
    ...(r.data as AllowanceSchedule),
    endsAtMs: r.ends_at_ms as number | null,
    nextCycleIndex: r.next_cycle_index as number,
    nextCycleStartMs: r.next_cycle_start_ms as number,
  };
}

function memberUsageFromRow(r: Row): MemberCapUsage {
  return {
    accountId: r.account_id as string,
    memberId: r.member_id as string,
    cycleIndex: r.cycle_index as number,
    used: r.used as number,
    held: r.held as number,
  };
}

function ledgerFromRow(r: Row): LedgerEntry {
  return {
    id: r.id as string,
    accountId: r.account_id as string,
    op: r.op as LedgerEntry['op'],
    debit: r.debit as string,
    credit: r.credit as string,
    unit: r.unit as LedgerEntry['unit'],
    currency: r.currency as string | null,
    amount: r.amount as number,
    requestId: r.request_id as string | null,
    atMs: r.at_ms as number,
  };
}

function ledgerValues(e: LedgerEntry): string {
  return `(${[
    str(e.accountId),
    str(e.id),
    str(e.op),
    str(e.debit),
    str(e.credit),
    str(e.unit),
    strOrNull(e.currency),
    int(e.amount),
    strOrNull(e.requestId),
    int(e.atMs),
  ].join(', ')})`;
}

const LEDGER_INSERT = 'INSERT INTO charging_ledger (account_id, id, op, debit, credit, unit, currency, amount, request_id, at_ms) VALUES ';

/** A usage record from its row: the document plus the serving note kept in its own column. */
function usageFromRow(r: Row): UsageRecord {
  const u = r.data as UsageRecord;
  if (r.serving !== null && r.serving !== undefined) u.serving = r.serving as NonNullable<UsageRecord['serving']>;
  return u;
}

function eventFromRow(r: Row): StoredChargingEvent {
  return {
    id: r.id as string,
    accountId: r.account_id as string,
    type: r.type as StoredChargingEvent['type'],
    subjectId: r.subject_id as string,
    data: r.data as StoredChargingEvent['data'],
    atMs: r.at_ms as number,
    deliveryState: r.delivery_state as StoredChargingEvent['deliveryState'],
    attempts: r.attempts as number,
    nextAttemptAtMs: r.next_attempt_at_ms as number | null,
    deliveredAtMs: r.delivered_at_ms as number | null,
  };
}

/** The UTC day of a time, as a date literal. */
function utcDay(ms: number): string {
  return str(new Date(ms).toISOString().slice(0, 10));
}

/** The view's statements after BEGIN and the lock, each with the name of the part of the view it reads. */
function viewQuery(scope: AccountScope, begin = true): { text: string; parts: string[] } {
  const rid = scope.reservationId;
  const res = rid === undefined ? null : str(rid);
  const acct =
    scope.accountId !== null ? str(scope.accountId) : res !== null ? `COALESCE((SELECT account_id FROM charging_reservations WHERE id = ${res}), '')` : `''`;
  const now = int(scope.nowMs);
  const parts: string[] = ['lock'];
  const stmts: string[] = [`SELECT pg_advisory_xact_lock(hashtextextended(${acct}, 0)), ${acct} AS account_id`];
  if (begin) {
    parts.unshift('begin');
    stmts.unshift('BEGIN');
  }
  parts.push('version');
  stmts.push(`SELECT COALESCE((SELECT version FROM charging_account_versions WHERE account_id = ${acct}), 0)::text AS v`);
  if (res !== null) {
    parts.push('reservation');
    stmts.push(`SELECT data, state FROM charging_reservations WHERE id = ${res}`);
  }
  const extra: string[] = [
    `(b.schedule_id, b.cycle_index) IN (SELECT s.id, s.next_cycle_index - 1 FROM charging_schedules s WHERE s.account_id = ${acct} AND s.next_cycle_start_ms <= ${now} AND (s.ends_at_ms IS NULL OR s.next_cycle_start_ms < s.ends_at_ms))`,
  ];
  if (res !== null) extra.push(`b.id IN (SELECT jsonb_array_elements(r.data->'allocations')->>'bucketId' FROM charging_reservations r WHERE r.id = ${res})`);
  if (scope.includeExpiredLeftovers === true) extra.push('b.held > 0 OR b.amount - b.consumed - b.held - b.forfeited > 0');
  parts.push('buckets');
  stmts.push(
    `SELECT * FROM charging_buckets b WHERE b.account_id = ${acct} AND (b.expires_at_ms IS NULL OR b.expires_at_ms > ${now} OR ${extra.map((e) => `(${e})`).join(' OR ')}) ORDER BY b.created_at_ms, b.id`,
  );
  parts.push('schedules');
  stmts.push(`SELECT * FROM charging_schedules WHERE account_id = ${acct} AND (ends_at_ms IS NULL OR next_cycle_start_ms < ends_at_ms) ORDER BY id`);
  parts.push('policy');
  stmts.push(`SELECT data FROM charging_policies WHERE account_id = ${acct}`);
  const member =
    scope.memberId !== undefined && scope.memberId !== null
      ? str(scope.memberId)
      : res !== null
        ? `(SELECT member_id FROM charging_reservations WHERE id = ${res})`
        : null;
  if (member !== null) {
    parts.push('memberCap', 'memberUsage');
    stmts.push(`SELECT data FROM charging_member_caps WHERE account_id = ${acct} AND member_id = ${member}`);
    const capCycle = res === null ? 'NULL' : `(SELECT (data->>'capCycleIndex')::int FROM charging_reservations WHERE id = ${res})`;
    stmts.push(
      `(SELECT * FROM charging_member_usage WHERE account_id = ${acct} AND member_id = ${member} ORDER BY cycle_index DESC LIMIT 2) UNION SELECT * FROM charging_member_usage WHERE account_id = ${acct} AND member_id = ${member} AND cycle_index = ${capCycle}`,
    );
  }
  if (scope.requestId !== undefined) {
    const rq = str(scope.requestId);
    parts.push('usage');
    stmts.push(
      `SELECT data FROM charging_usage_records WHERE request_id = ${rq} AND settled_at_ms = (SELECT settled_at_ms FROM charging_usage_ids WHERE request_id = ${rq})`,
    );
  }
  return { text: stmts.join(';\n'), parts };
}

function sumDeltas(deltas: BucketDelta[]): Map<string, Required<Omit<BucketDelta, 'bucketId'>>> {
  const out = new Map<string, Required<Omit<BucketDelta, 'bucketId'>>>();
  for (const d of deltas) {
    const cur = out.get(d.bucketId) ?? { amount: 0, consumed: 0, held: 0, forfeited: 0, floor: 0 };
    cur.amount += d.amount ?? 0;
    cur.consumed += d.consumed ?? 0;
    cur.held += d.held ?? 0;
    cur.forfeited += d.forfeited ?? 0;
    cur.floor += d.floor ?? 0;
    out.set(d.bucketId, cur);
  }
  return out;
}

/** The mutation as statements; the database's constraints and tg_check are the backstops. */
export function mutationStatements(accountId: string, m: AccountMutation): string[] {
  const a = str(accountId);
  const out: string[] = [];
  if (m.bucketsCreate.length > 0) {
    for (const b of m.bucketsCreate) assert(b.accountId === accountId, `bucket ${b.id}: not in account ${accountId}`);
    out.push(`INSERT INTO charging_buckets (${BUCKET_COLS}) VALUES ${m.bucketsCreate.map(bucketValues).join(', ')}`);
  }
  if (m.bucketDeltas.length > 0) {
    const sums = sumDeltas(m.bucketDeltas);
    const rows = [...sums].map(
      ([id, d]) =>
        `(${str(id)}::text, ${int(d.amount)}::bigint, ${int(d.consumed)}::bigint, ${int(d.held)}::bigint, ${int(d.forfeited)}::bigint, ${int(d.floor)}::bigint)`,
    );
    out.push(
      `WITH d(id, amount, consumed, held, forfeited, floor) AS (VALUES ${rows.join(', ')}), ` +
        `u AS (UPDATE charging_buckets b SET amount = b.amount + d.amount, consumed = b.consumed + d.consumed, held = b.held + d.held, ` +
        `forfeited = b.forfeited + d.forfeited, floor = b.floor + d.floor FROM d WHERE b.id = d.id AND b.account_id = ${a} RETURNING b.id) ` +
        `SELECT tg_check((SELECT count(*) FROM u) = ${sums.size}, ${str(`a bucket delta names a bucket outside account ${accountId}`)})`,
    );
  }
  if (m.schedulesUpdate.length > 0) {
    const rows = m.schedulesUpdate.map((u) => `(${str(u.scheduleId)}::text, ${int(u.nextCycleIndex)}::int, ${int(u.nextCycleStartMs)}::bigint)`);
    out.push(
      `WITH d(id, idx, start) AS (VALUES ${rows.join(', ')}), u AS (UPDATE charging_schedules s SET next_cycle_index = d.idx, next_cycle_start_ms = d.start ` +
        `FROM d WHERE s.id = d.id AND s.account_id = ${a} RETURNING s.id) SELECT tg_check((SELECT count(*) FROM u) = ${rows.length}, ${str('a schedule update names a missing schedule')})`,
    );
  }
  const r = m.reservationUpsert;
  if (r !== null) {
    assert(r.accountId === accountId, `reservation ${r.id} belongs to another account`);
    out.push(
      `WITH u AS (INSERT INTO charging_reservations AS t (id, request_id, account_id, member_id, state, valid_until_ms, data) VALUES (${str(r.id)}, ${str(r.requestId)}, ${a}, ` +
        `${strOrNull(r.memberId)}, ${str(r.state)}, ${int(r.validUntilMs)}, ${json(r)}) ON CONFLICT (id) DO UPDATE SET member_id = EXCLUDED.member_id, state = EXCLUDED.state, ` +
        `valid_until_ms = EXCLUDED.valid_until_ms, data = EXCLUDED.data WHERE t.account_id = EXCLUDED.account_id RETURNING 1) ` +
        `SELECT tg_check((SELECT count(*) FROM u) = 1, ${str(`reservation ${r.id} belongs to another account`)})`,
    );
  }
  if (m.memberUsageDeltas.length > 0) {
    const sums = new Map<string, { memberId: string; cycleIndex: number; used: number; held: number }>();
    for (const d of m.memberUsageDeltas) {
      const key = `${d.memberId}\u0000${d.cycleIndex}`;
      const cur = sums.get(key) ?? { memberId: d.memberId, cycleIndex: d.cycleIndex, used: 0, held: 0 };
      cur.used += d.used;
      cur.held += d.held;
      sums.set(key, cur);
    }
    const rows = [...sums.values()].map((d) => `(${str(d.memberId)}::text, ${int(d.cycleIndex)}::int, ${int(d.used)}::bigint, ${int(d.held)}::bigint)`);
    // Update the rows that exist, insert the others (a negative delta on a missing row then fails its CHECK). Not
    // INSERT ... ON CONFLICT: PostgreSQL checks the proposed row (with the bare delta) before finding the conflict.
    out.push(
      `WITH d(member_id, cycle_index, used, held) AS (VALUES ${rows.join(', ')}), ` +
        'up AS (UPDATE charging_member_usage t SET used = t.used + d.used, held = t.held + d.held FROM d ' +
        `WHERE t.account_id = ${a} AND t.member_id = d.member_id AND t.cycle_index = d.cycle_index RETURNING t.member_id, t.cycle_index) ` +
        `INSERT INTO charging_member_usage (account_id, member_id, cycle_index, used, held) SELECT ${a}, d.member_id, d.cycle_index, d.used, d.held FROM d ` +
        'WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.member_id = d.member_id AND up.cycle_index = d.cycle_index)',
    );
  }
  const u = m.usageRecord;
  if (u !== null) out.push(...usageStatements(u));
  if (m.ledger.length > 0) out.push(LEDGER_INSERT + m.ledger.map(ledgerValues).join(', '));
  if (m.events.length > 0) {
    const rows = m.events.map(
      (e) => `(${str(e.id)}, ${str(e.accountId)}, ${str(e.type)}, ${str(e.subjectId)}, ${json(e.data)}, ${int(e.atMs)}, 'pending', 0, ${int(e.atMs)}, NULL)`,
    );
    out.push(
      `INSERT INTO charging_events (id, account_id, type, subject_id, data, at_ms, delivery_state, attempts, next_attempt_at_ms, delivered_at_ms) VALUES ${rows.join(', ')}`,
    );
  }
  if (m.policyUpsert !== null) {
    out.push(
      `INSERT INTO charging_policies (account_id, data) VALUES (${a}, ${json(m.policyUpsert)}) ON CONFLICT (account_id) DO UPDATE SET data = EXCLUDED.data`,
    );
  }
  const cap = m.memberCapUpsert;
  if (cap !== null) {
    out.push(
      `INSERT INTO charging_member_caps (account_id, member_id, data) VALUES (${a}, ${str(cap.memberId)}, ${json(cap)}) ON CONFLICT (account_id, member_id) DO UPDATE SET data = EXCLUDED.data`,
    );
  }
  return out;
}

/**
 * True when the mutation only moves holds (a reserve or an extension): no money moves, no record or ledger entry.
 * Such a transaction commits without waiting for its WAL flush (synchronous_commit off: group commit by the WAL
 * writer, within 3 x wal_writer_delay); any later durable commit (a settle) flushes it first, since WAL is flushed in
 * order. What a database crash can lose is the last instant's holds, never a charge: the same bound as SQLite's holds
 * in memory (ARCHITECTURE.md "Many nodes").
 */
export function onlyMovesHolds(m: AccountMutation): boolean {
  return (
    m.bucketsCreate.length === 0 &&
    m.schedulesUpdate.length === 0 &&
    m.usageRecord === null &&
    m.ledger.length === 0 &&
    m.events.length === 0 &&
    m.policyUpsert === null &&
    m.memberCapUpsert === null &&
    m.bucketDeltas.every((d) => !d.amount && !d.consumed && !d.forfeited && !d.floor) &&
    m.memberUsageDeltas.every((d) => d.used === 0)
  );
}

/** A usage record: its id row (one record per request id), the record in its month's partition, the day's rollup. */
function usageStatements(u: UsageRecord): string[] {
  const settled = int(u.settledAtMs);
  const costMinor = u.costMinor ?? 0;
  return [
    `INSERT INTO charging_usage_ids (request_id, settled_at_ms) VALUES (${str(u.requestId)}, ${settled})`,
    'INSERT INTO charging_usage_records (request_id, account_id, member_id, key_id, model, provider, status, tokens_input, tokens_output, cost_coins, cost_minor, leak_coins, ' +
      `started_at_ms, settled_at_ms, serving, data) VALUES (${str(u.requestId)}, ${str(u.accountId)}, ${strOrNull(u.memberId)}, ${str(u.keyId)}, ${str(u.model)}, ${str(u.provider)}, ` +
      `${str(u.status)}, ${int(u.usage.tokensInput)}, ${int(u.usage.tokensOutput)}, ${int(u.costCoins)}, ${intOrNull(u.costMinor)}, ${int(u.leakCoins)}, ${int(u.startedAtMs)}, ` +
      `${settled}, ${jsonOrNull(u.serving)}, ${json({ ...u, serving: undefined })})`,
    'INSERT INTO charging_usage_daily AS t (account_id, day, model, requests, tokens_input, tokens_output, cost_coins, cost_minor, leak_coins) VALUES ' +
      `(${str(u.accountId)}, ${utcDay(u.settledAtMs)}, ${str(u.model)}, 1, ${int(u.usage.tokensInput)}, ${int(u.usage.tokensOutput)}, ${int(u.costCoins)}, ${int(costMinor)}, ${int(u.leakCoins)}) ` +
      'ON CONFLICT (account_id, day, model) DO UPDATE SET requests = t.requests + 1, tokens_input = t.tokens_input + EXCLUDED.tokens_input, ' +
      'tokens_output = t.tokens_output + EXCLUDED.tokens_output, cost_coins = t.cost_coins + EXCLUDED.cost_coins, cost_minor = t.cost_minor + EXCLUDED.cost_minor, ' +
      'leak_coins = t.leak_coins + EXCLUDED.leak_coins',
  ];
}

/** The statement bumping an account's version; its one row is the new version. */
function bumpVersion(accountSql: string): string {
  return (
    `INSERT INTO charging_account_versions AS t (account_id, version) VALUES (${accountSql}, 1) ` +
    'ON CONFLICT (account_id) DO UPDATE SET version = t.version + 1 RETURNING version::text AS v'
  );
}

/**
 * What this node last saw of an account's charging state at `version` (the account part of an AccountView: policy,
 * buckets, schedules; plus the open reservations it knows). Valid while the database's version is the same: every
 * committed write of the account's charging rows bumps it, on every node.
 */
interface CachedAccount {
  accountId: string;
  version: number;
  /** The view's nowMs when loaded: every bucket not expired at that time is here (so at any later time too). */
  loadedAtMs: number;
  policy: AccountPolicy | null;
  buckets: Bucket[];
  schedules: AllowanceSchedule[];
  reservations: Map<string, Reservation>;
}

/** Applies a committed mutation to the cached state; false when the cache cannot follow it (then it is dropped). */
function applyToCache(e: CachedAccount, m: AccountMutation): boolean {
  if (m.bucketsCreate.length > 0 || m.schedulesUpdate.length > 0) return false;
  for (const [id, d] of sumDeltas(m.bucketDeltas)) {
    const b = e.buckets.find((x) => x.id === id);
    if (b === undefined) return false;
    b.amount += d.amount;
    b.consumed += d.consumed;
    b.held += d.held;
    b.forfeited += d.forfeited;
    b.floor += d.floor;
  }
  const r = m.reservationUpsert;
  if (r !== null) {
    if (r.state === 'open') e.reservations.set(r.id, structuredClone(r));
    else e.reservations.delete(r.id);
  }
  if (m.policyUpsert !== null) e.policy = structuredClone(m.policyUpsert);
  return true;
}

/** An error the server reported (a SQLSTATE), as opposed to a lost connection. */
function isServerError(e: unknown): boolean {
  return e instanceof pg.DatabaseError;
}

/** A data-modifying CTE bumping the version of each account in `rows` (a CTE with an account_id column). */
const VERSION_BUMP_FROM = (rows: string): string =>
  `INSERT INTO charging_account_versions AS t (account_id, version) SELECT DISTINCT account_id, 1 FROM ${rows} ON CONFLICT (account_id) DO UPDATE SET version = t.version + 1`;

const MAX_CACHED_ACCOUNTS = 10_000;
const MAX_RESERVATION_HINTS = 100_000;
/** After a stale optimistic attempt, this many operations on the account go straight to the locked path. */
const STALE_BACKOFF_OPS = 64;

/** One row of the daily rollup. */
export interface UsageDay {
  accountId: string;
  /** YYYY-MM-DD (UTC). */
  day: string;
  model: string;
  requests: number;
  tokensInput: number;
  tokensOutput: number;
  costCoins: number;
  costMinor: number;
  leakCoins: number;
}

export class PgChargingStore implements ChargingStore {
  readonly #db: PgDb;
  /**
   * Round trips to the server made by runAccountOp (the hot path), and the operations they served. `backstop` counts
   * optimistic attempts the server refused for another reason than a stale version (a CHECK, a duplicate key): the
   * cached view was current, so its decision was wrong. The locked path then decides again and usually succeeds, which
   * would hide a cache bug; this counter (0 in a healthy run, asserted by charging-cache.prop.test.ts) exposes it.
   */
  readonly stats = { ops: 0, roundTrips: 0, optimistic: 0, stale: 0, backstop: 0 };
  /** Per account, what this node last read or wrote (see CachedAccount); bounded, oldest dropped first. */
  readonly #cache = new Map<string, CachedAccount>();
  /** Which account a reservation this node knows belongs to (settle and extend name only the reservation). */
  readonly #reservationAccount = new Map<string, string>();
  /** Per account, the tail of this node's operations on it (see runAccountOp). */
  readonly #queues = new Map<string, Promise<void>>();
  /** Per account, how many operations still skip the optimistic attempt after a stale one. */
  readonly #backoff = new Map<string, number>();

  /** After a stale optimistic attempt, how many operations on the account go straight to the locked path. */
  readonly #staleBackoffOps: number;

  constructor(db: PgDb, o: { staleBackoffOps?: number } = {}) {
    this.#db = db;
    this.#staleBackoffOps = o.staleBackoffOps ?? STALE_BACKOFF_OPS;
    this.#errorsSeen = db.connectionErrors;
  }

  /**
   * A lost connection may be a crash of the server: the holds-only commits of its last instant (synchronous_commit
   * off) are then lost with their version bumps, and those versions are reached again by other writes (another hold
   * on another node): a cache entry at such a version would pass the check with rows the database no longer has. So a
   * connection error (counted by PgDb, or seen by a query here) drops the whole cache.
   */
  #errorsSeen: number;

  /** Forgets every cached account (see #errorsSeen). */
  #dropAll(): void {
    this.#cache.clear();
    this.#reservationAccount.clear();
  }

  async runAccountOp<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T> {
    this.stats.ops++;
    // One operation per account at a time on this node: they would only race each other for the same version (the
    // database's lock serializes them anyway), so each one here finds the cache the previous one left. The queue is
    // also taken BEFORE a pooled connection: without it every operation would wait for the account's advisory lock
    // while holding a connection, so one tenant whose lock is held elsewhere (a slow settle on another node, a flood
    // of its own requests) would park all of the node's connections and every other tenant would get 503; with it a
    // tenant holds at most one connection per node (pool-fairness.test.ts). An operation named by a reservation this
    // node has not seen queues by the reservation itself.
    const rid = scope.reservationId;
    const key = scope.accountId ?? (rid === undefined ? undefined : (this.#reservationAccount.get(rid) ?? `\u0000rsv:${rid}`));
    if (key === undefined || key === '') return this.#run(scope, decide);
    const run = () => this.#run(scope, decide);
    const mine = (this.#queues.get(key) ?? Promise.resolve()).then(run, run);
    const tail = mine.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(key, tail);
    try {
      return await mine;
    } finally {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    }
  }

  async #run<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T> {
    if (this.#db.connectionErrors !== this.#errorsSeen) {
      this.#errorsSeen = this.#db.connectionErrors;
      this.#dropAll();
    }
    const fast = this.#cachedView(scope);
    if (fast !== null) {
      const id = fast.entry.accountId;
      const skip = this.#backoff.get(id) ?? 0;
      if (skip > 0) this.#backoff.set(id, skip - 1);
      else {
        const done = await this.#optimistic(fast, decide);
        if (done !== null) return done.result;
        this.stats.stale++;
        // Another node writes this account too: the next operations on it take the locked path directly (a stale
        // attempt costs more than its round trip when two nodes work one account: it waits for the lock twice).
        if (this.#backoff.size >= MAX_CACHED_ACCOUNTS) this.#backoff.clear();
        if (this.#staleBackoffOps > 0) this.#backoff.set(id, this.#staleBackoffOps);
      }
    }
    return this.#lockedOp(scope, decide);
  }

  /**
   * The view from this node's cache when it covers the scope: null sends the operation to the locked path. What the
   * cache cannot know is assumed and checked in the same statement as the writes (`checks`): the account's version
   * (nothing changed since), that the reservation does not exist when it is not a known one of this account, and that
   * no usage record exists for the request.
   */
  #cachedView(scope: AccountScope): { entry: CachedAccount; view: AccountView; checks: string[] } | null {
    if (scope.includeExpiredLeftovers === true || (scope.memberId !== undefined && scope.memberId !== null)) return null;
    const rid = scope.reservationId;
    const accountId = scope.accountId ?? (rid === undefined ? undefined : this.#reservationAccount.get(rid));
    if (accountId === undefined || accountId === '') return null;
    const entry = this.#cache.get(accountId);
    if (entry === undefined || scope.nowMs < entry.loadedAtMs) return null;
    const now = scope.nowMs;
    // A due schedule widens the view (its current cycle's expired buckets): the locked path renews it.
    if (entry.schedules.some((x) => x.nextCycleStartMs <= now && (x.endsAtMs === null || x.nextCycleStartMs < x.endsAtMs))) return null;
    const a = str(accountId);
    const checks = [`COALESCE((SELECT version FROM charging_account_versions WHERE account_id = ${a}), 0) = ${int(entry.version)}`];
    let reservation: Reservation | null = null;
    if (rid !== undefined) {
      reservation = entry.reservations.get(rid) ?? null;
      if (reservation === null) {
        // Only a reserve (named by its request id) creates a reservation: any other operation naming one this node does
        // not know (the sweeper expiring another node's reservation) would find it exists, fail the check below, count
        // as stale and back the account off; the locked path reads it instead.
        if (scope.accountId === null || scope.requestId === undefined) return null;
        checks.push(`NOT EXISTS (SELECT 1 FROM charging_reservations WHERE id = ${str(rid)})`);
      } else if (reservation.memberId !== null) return null;
    }
    const allocated = new Set((reservation?.allocations ?? []).map((x) => x.bucketId));
    for (const id of allocated) if (!entry.buckets.some((b) => b.id === id)) return null;
    if (scope.requestId !== undefined) checks.push(`NOT EXISTS (SELECT 1 FROM charging_usage_ids WHERE request_id = ${str(scope.requestId)})`);
    const view: AccountView = {
      accountId,
      nowMs: now,
      policy: structuredClone(entry.policy),
      buckets: structuredClone(entry.buckets.filter((b) => b.expiresAtMs === null || b.expiresAtMs > now || allocated.has(b.id))),
      schedules: structuredClone(entry.schedules),
      memberCap: null,
      memberUsage: [],
      reservation: structuredClone(reservation),
      usageRecord: null,
    };
    return { entry, view, checks };
  }

  /**
   * One round trip: the account's lock, the checks of what the cached view assumed, the mutation and the version
   * bump, as one multi-statement simple query (PostgreSQL runs it as one implicit transaction: any failure rolls all
   * of it back). Null when it did not apply (a stale cache, or any error the server reported: the locked path then
   * decides again on a fresh view and reports a genuine violation itself).
   */
  async #optimistic<T>(
    fast: { entry: CachedAccount; view: AccountView; checks: string[] },
    decide: (view: AccountView) => Decision<T>,
  ): Promise<{ result: T } | null> {
    const { entry } = fast;
    const a = str(entry.accountId);
    let stmts: string[];
    let decision: Decision<T>;
    try {
      decision = decide(fast.view);
      const m = decision.mutation;
      stmts = [`SELECT pg_advisory_xact_lock(hashtextextended(${a}, 0))`, `SELECT tg_check(${fast.checks.join(' AND ')}, 'tg_stale')`];
      if (m !== null) {
        if (onlyMovesHolds(m)) stmts.push("SELECT set_config('synchronous_commit', 'off', true)");
        stmts.push(...mutationStatements(entry.accountId, m), bumpVersion(a));
      }
    } catch {
      this.#cache.delete(entry.accountId);
      return null;
    }
    this.stats.roundTrips++;
    let results: pg.QueryResult[];
    try {
      results = (await this.#db.pool.query(stmts.join(';\n'))) as unknown as pg.QueryResult[];
    } catch (error) {
      if (!isServerError(error)) {
        this.#dropAll();
        throw error;
      }
      if ((error as pg.DatabaseError).message !== 'tg_stale') this.stats.backstop++;
      if (this.#cache.get(entry.accountId) === entry) this.#cache.delete(entry.accountId);
      return null;
    }
    this.stats.optimistic++;
    const m = decision.mutation;
    if (m !== null) {
      const version = Number(results[results.length - 1]?.rows[0]?.v);
      if (this.#cache.get(entry.accountId) === entry && entry.version === version - 1 && applyToCache(entry, m)) {
        entry.version = version;
        this.#noteReservation(m);
      } else if (this.#cache.get(entry.accountId) === entry) this.#cache.delete(entry.accountId);
    }
    return { result: decision.result };
  }

  /**
   * Two round trips on one pooled connection: `BEGIN; <lock>; <version>; <the view>`, decide, then
   * `<mutation>; <version bump>; COMMIT`. Refreshes the cache with what it read and wrote.
   */
  async #lockedOp<T>(scope: AccountScope, decide: (view: AccountView) => Decision<T>): Promise<T> {
    const c = await this.#db.pool.connect();
    let broken: Error | undefined;
    try {
      const q = viewQuery(scope);
      this.stats.roundTrips++;
      const results = (await c.query(q.text)) as unknown as pg.QueryResult[];
      const view = this.#view(scope, q.parts, results);
      const read = Number(results[q.parts.indexOf('version')]?.rows[0]?.v ?? 0);
      const seen = view.accountId === '' ? null : this.#entryFrom(scope, view, read);
      const decision = decide(view);
      const m = decision.mutation;
      const stmts = m === null ? [] : mutationStatements(view.accountId, m);
      if (m !== null && onlyMovesHolds(m)) stmts.unshift('SET LOCAL synchronous_commit = off');
      const bumps = m !== null && view.accountId !== '';
      if (bumps) stmts.push(bumpVersion(str(view.accountId)));
      stmts.push('COMMIT');
      this.stats.roundTrips++;
      const done = (await c.query(stmts.join(';\n'))) as unknown as pg.QueryResult[] | pg.QueryResult;
      if (seen !== null) {
        const out = Array.isArray(done) ? done : [done];
        const version = bumps ? Number(out[out.length - 2]?.rows[0]?.v) : read;
        if (version === read + (bumps ? 1 : 0) && (m === null || applyToCache(seen, m))) {
          seen.version = version;
          this.#remember(seen);
          if (m !== null) this.#noteReservation(m);
        } else this.#cache.delete(view.accountId);
      }
      return decision.result;
    } catch (error) {
      const acct = scope.accountId ?? (scope.reservationId === undefined ? undefined : this.#reservationAccount.get(scope.reservationId));
      if (!isServerError(error)) this.#dropAll();
      else if (acct !== undefined) this.#forget(acct);
      this.stats.roundTrips++;
      await c.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw error;
    } finally {
      c.release(broken);
    }
  }

  /** A cache entry from a locked view read at `version` (a copy: decide may change its view). */
  #entryFrom(scope: AccountScope, view: AccountView, version: number): CachedAccount {
    const old = this.#cache.get(view.accountId);
    // Reservations known at the same version are still current; otherwise only the one just read is known.
    const reservations = old !== undefined && old.version === version ? old.reservations : new Map<string, Reservation>();
    const r = view.reservation;
    if (r !== null && r.accountId === view.accountId) {
      if (r.state === 'open') {
        reservations.set(r.id, structuredClone(r));
        this.#hint(r.id, r.accountId);
      } else reservations.delete(r.id);
    } else if (scope.reservationId !== undefined) reservations.delete(scope.reservationId);
    return {
      accountId: view.accountId,
      version,
      loadedAtMs: scope.nowMs,
      policy: structuredClone(view.policy),
      buckets: structuredClone(view.buckets),
      schedules: structuredClone(view.schedules),
      reservations,
    };
  }

  #remember(e: CachedAccount): void {
    const cur = this.#cache.get(e.accountId);
    if (cur !== undefined && cur.version > e.version) return;
    this.#cache.delete(e.accountId);
    if (this.#cache.size >= MAX_CACHED_ACCOUNTS) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(e.accountId, e);
  }

  #hint(reservationId: string, accountId: string): void {
    if (this.#reservationAccount.size >= MAX_RESERVATION_HINTS) this.#reservationAccount.clear();
    this.#reservationAccount.set(reservationId, accountId);
  }

  #noteReservation(m: AccountMutation): void {
    const r = m.reservationUpsert;
    if (r === null) return;
    if (r.state === 'open') this.#hint(r.id, r.accountId);
    else this.#reservationAccount.delete(r.id);
  }

  /** Another write of the account's charging rows on this node: forget what the cache holds. */
  #forget(accountId: string): void {
    this.#cache.delete(accountId);
  }

  #view(scope: AccountScope, parts: string[], results: pg.QueryResult[]): AccountView {
    const rows = (name: string): Row[] => {
      const i = parts.indexOf(name);
      return i < 0 ? [] : (results[i]?.rows ?? []);
    };
    const accountId = rows('lock')[0]?.account_id as string;
    const reservation = (rows('reservation')[0]?.data as Reservation | undefined) ?? null;
    if (reservation !== null) reservation.state = rows('reservation')[0]?.state as Reservation['state'];
    const memberUsage = rows('memberUsage')
      .map(memberUsageFromRow)
      .sort((x, y) => y.cycleIndex - x.cycleIndex);
    return {
      accountId,
      nowMs: scope.nowMs,
      policy: (rows('policy')[0]?.data as AccountPolicy | undefined) ?? null,
      buckets: rows('buckets').map(bucketFromRow),
      schedules: rows('schedules').map(scheduleFromRow),
      memberCap: (rows('memberCap')[0]?.data as MemberCap | undefined) ?? null,
      memberUsage,
      reservation,
      usageRecord: rows('usage')[0] === undefined ? null : usageFromRow(rows('usage')[0]!),
    };
  }

  /**
   * A billing plan's charging operations inside the billing store's open transaction on `c` (BillingStore.apply):
   * the account's lock, its view, the pure decideBillingOps, then the mutation and the schedule rows, on the same
   * client. Returns the refusal (nothing written) or null.
   */
  async applyBillingOpsOn(c: pg.PoolClient, accountId: string, nowMs: number, ops: readonly ChargingOp[]): Promise<string | null> {
    if (ops.length === 0) return null;
    const scope: AccountScope = { accountId, nowMs };
    const q = viewQuery(scope, false);
    const results = (await c.query(q.text)) as unknown as pg.QueryResult[] | pg.QueryResult;
    const view = this.#view(scope, q.parts, Array.isArray(results) ? results : [results]);
    const d = decideBillingOps(view, ops);
    if (d.refused !== null) return d.refused;
    const stmts = d.mutation === null ? [] : mutationStatements(accountId, d.mutation);
    for (const sc of d.schedulesCreate) {
      stmts.push(
        'INSERT INTO charging_schedules (id, account_id, data, ends_at_ms, next_cycle_index, next_cycle_start_ms, source_ref) VALUES ' +
          `(${str(sc.id)}, ${str(sc.accountId)}, ${json(sc)}, ${intOrNull(sc.endsAtMs)}, ${int(sc.nextCycleIndex)}, ${int(sc.nextCycleStartMs)}, ${str(sc.sourceRef)}) ` +
          'ON CONFLICT (account_id, source_ref) DO NOTHING',
      );
    }
    for (const e of d.schedulesEnd) {
      stmts.push(`UPDATE charging_schedules SET ends_at_ms = LEAST(COALESCE(ends_at_ms, ${int(e.atMs)}), ${int(e.atMs)}) WHERE id = ${str(e.scheduleId)}`);
    }
    this.#forget(accountId);
    if (stmts.length > 0) await c.query([...stmts, bumpVersion(str(accountId))].join(';\n'));
    return null;
  }

  /** A management write: one transaction holding the account's lock (so it serializes with the hot path). */
  #locked<T>(accountId: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    this.#forget(accountId);
    return this.#db.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [accountId]);
      return fn(c);
    });
  }

  async createBucket(bucket: Bucket, ledger: LedgerEntry[]): Promise<{ bucket: Bucket; created: boolean }> {
    return this.#locked(bucket.accountId, async (c) => {
      const existing = await c.query('SELECT * FROM charging_buckets WHERE account_id = $1 AND source_ref = $2', [bucket.accountId, bucket.sourceRef]);
      if (existing.rows[0] !== undefined) return { bucket: bucketFromRow(existing.rows[0]), created: false };
      const stmts = [`INSERT INTO charging_buckets (${BUCKET_COLS}) VALUES ${bucketValues(bucket)}`, bumpVersion(str(bucket.accountId))];
      if (ledger.length > 0) stmts.push(LEDGER_INSERT + ledger.map(ledgerValues).join(', '));
      await c.query(stmts.join(';\n'));
      return { bucket: structuredClone(bucket), created: true };
    });
  }

  async topUpWallet(i: {
    accountId: string;
    currency: string;
    amountMinor: number;
    sourceRef: string;
    atMs: number;
    walletIfNew: Bucket;
  }): Promise<{ bucket: Bucket; applied: boolean }> {
    return this.#locked(i.accountId, async (c) => {
      const seen = await c.query(
        'SELECT b.* FROM charging_topups t JOIN charging_buckets b ON b.id = t.bucket_id WHERE t.account_id = $1 AND t.source_ref = $2',
        [i.accountId, i.sourceRef],
      );
      if (seen.rows[0] !== undefined) return { bucket: bucketFromRow(seen.rows[0]), applied: false };
      const found = await c.query('SELECT id FROM charging_buckets WHERE account_id = $1 AND source_ref = $2', [i.accountId, i.walletIfNew.sourceRef]);
      const walletId = (found.rows[0]?.id as string | undefined) ?? i.walletIfNew.id;
      const stmts: string[] = [bumpVersion(str(i.accountId))];
      if (found.rows[0] === undefined) stmts.push(`INSERT INTO charging_buckets (${BUCKET_COLS}) VALUES ${bucketValues(i.walletIfNew)}`);
      stmts.push(`UPDATE charging_buckets SET amount = amount + ${int(i.amountMinor)} WHERE id = ${str(walletId)} AND account_id = ${str(i.accountId)}`);
      stmts.push(
        LEDGER_INSERT +
          ledgerValues({
            id: `topup:${i.sourceRef}:${walletId}`,
            accountId: i.accountId,
            op: 'topup',
            debit: 'house:issuance:wallet',
            credit: `bucket:${walletId}`,
            unit: 'money',
            currency: i.currency,
            amount: i.amountMinor,
            requestId: null,
            atMs: i.atMs,
          }),
      );
      stmts.push(
        `INSERT INTO charging_topups (account_id, source_ref, bucket_id, amount, at_ms) VALUES (${str(i.accountId)}, ${str(i.sourceRef)}, ${str(walletId)}, ${int(i.amountMinor)}, ${int(i.atMs)})`,
      );
      stmts.push(`SELECT * FROM charging_buckets WHERE id = ${str(walletId)}`);
      const results = (await c.query(stmts.join(';\n'))) as unknown as pg.QueryResult[];
      return { bucket: bucketFromRow(results[results.length - 1]!.rows[0]!), applied: true };
    });
  }

  async createSchedule(s: AllowanceSchedule): Promise<{ schedule: AllowanceSchedule; created: boolean }> {
    this.#forget(s.accountId);
    const ins = await this.#db.query(
      `WITH ins AS (INSERT INTO charging_schedules (id, account_id, data, ends_at_ms, next_cycle_index, next_cycle_start_ms, source_ref) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (account_id, source_ref) DO NOTHING RETURNING id, account_id),
       v AS (${VERSION_BUMP_FROM('ins')})
       SELECT id FROM ins`,
      [s.id, s.accountId, JSON.stringify(s), s.endsAtMs, s.nextCycleIndex, s.nextCycleStartMs, s.sourceRef],
    );
    if (ins.rowCount === 1) return { schedule: structuredClone(s), created: true };
    const existing = await this.#db.query('SELECT * FROM charging_schedules WHERE account_id = $1 AND source_ref = $2', [s.accountId, s.sourceRef]);
    return { schedule: scheduleFromRow(existing.rows[0]!), created: false };
  }

  async endSchedule(scheduleId: string, endsAtMs: number): Promise<AllowanceSchedule | null> {
    const r = await this.#db.query(
      `WITH s AS (UPDATE charging_schedules SET ends_at_ms = LEAST(COALESCE(ends_at_ms, $2), $2) WHERE id = $1 RETURNING *), v AS (${VERSION_BUMP_FROM('s')}) SELECT * FROM s`,
      [scheduleId, endsAtMs],
    );
    if (r.rows[0] !== undefined) this.#forget(r.rows[0].account_id as string);
    return r.rows[0] === undefined ? null : scheduleFromRow(r.rows[0]);
  }

  async listBuckets(accountId: string): Promise<Bucket[]> {
    const r = await this.#db.query('SELECT * FROM charging_buckets WHERE account_id = $1 ORDER BY created_at_ms, id', [accountId]);
    return r.rows.map(bucketFromRow);
  }

  async listUsage(accountId: string, fromMs: number, toMs: number): Promise<UsageRecord[]> {
    const r = await this.#db.query(
      'SELECT data, serving FROM charging_usage_records WHERE account_id = $1 AND settled_at_ms >= $2 AND settled_at_ms < $3 ORDER BY settled_at_ms, request_id',
      [accountId, fromMs, toMs],
    );
    return r.rows.map(usageFromRow);
  }

  /** The daily rollup of an account's usage, days in [fromDay, toDay] (YYYY-MM-DD, UTC), by day then model. */
  async listUsageDays(accountId: string, fromDay: string, toDay: string): Promise<UsageDay[]> {
    const r = await this.#db.query(
      `SELECT account_id, to_char(day, 'YYYY-MM-DD') AS day, model, requests, tokens_input, tokens_output, cost_coins, cost_minor, leak_coins
       FROM charging_usage_daily WHERE account_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day, model`,
      [accountId, fromDay, toDay],
    );
    return r.rows.map((x) => ({
      accountId: x.account_id as string,
      day: x.day as string,
      model: x.model as string,
      requests: x.requests as number,
      tokensInput: x.tokens_input as number,
      tokensOutput: x.tokens_output as number,
      costCoins: x.cost_coins as number,
      costMinor: x.cost_minor as number,
      leakCoins: x.leak_coins as number,
    }));
  }

  async getUsageRecord(requestId: string): Promise<UsageRecord | null> {
    const r = await this.#db.query(
      'SELECT data, serving FROM charging_usage_records WHERE request_id = $1 AND settled_at_ms = (SELECT settled_at_ms FROM charging_usage_ids WHERE request_id = $1)',
      [requestId],
    );
    return r.rows[0] === undefined ? null : usageFromRow(r.rows[0]);
  }

  async getReservation(reservationId: string): Promise<Reservation | null> {
    const r = await this.#db.query('SELECT data, state FROM charging_reservations WHERE id = $1', [reservationId]);
    const row = r.rows[0];
    return row === undefined ? null : { ...(row.data as Reservation), state: row.state as Reservation['state'] };
  }

  async listOpenReservations(accountId: string): Promise<Reservation[]> {
    const r = await this.#db.query("SELECT data FROM charging_reservations WHERE account_id = $1 AND state = 'open' ORDER BY id", [accountId]);
    return r.rows.map((x) => x.data as Reservation);
  }

  async listLedger(accountId: string): Promise<LedgerEntry[]> {
    const r = await this.#db.query('SELECT * FROM charging_ledger WHERE account_id = $1 ORDER BY at_ms, id', [accountId]);
    return r.rows.map(ledgerFromRow);
  }

  async listEvents(accountId: string, afterId: string | null, limit: number): Promise<StoredChargingEvent[]> {
    const r =
      afterId === null
        ? await this.#db.query('SELECT * FROM charging_events WHERE account_id = $1 ORDER BY seq LIMIT $2', [accountId, limit])
        : await this.#db.query(
            'SELECT * FROM charging_events WHERE account_id = $1 AND seq > (SELECT seq FROM charging_events WHERE id = $2 AND account_id = $1) ORDER BY seq LIMIT $3',
            [accountId, afterId, limit],
          );
    return r.rows.map(eventFromRow);
  }

  async findExpiredReservations(beforeMs: number, limit: number): Promise<{ reservationId: string; accountId: string }[]> {
    const r = await this.#db.query(
      "SELECT id, account_id FROM charging_reservations WHERE state = 'open' AND valid_until_ms < $1 ORDER BY valid_until_ms, id LIMIT $2",
      [beforeMs, limit],
    );
    return r.rows.map((x) => ({ reservationId: x.id as string, accountId: x.account_id as string }));
  }

  async findAccountsWithExpiredLeftovers(fromMs: number, toMs: number, limit: number): Promise<string[]> {
    const r = await this.#db.query(
      `SELECT DISTINCT account_id FROM charging_buckets WHERE expires_at_ms > $1 AND expires_at_ms <= $2 AND amount - consumed - held - forfeited > 0
       ORDER BY account_id LIMIT $3`,
      [fromMs, toMs, limit],
    );
    return r.rows.map((x) => x.account_id as string);
  }

  async findAccountsWithDueSchedules(nowMs: number, limit: number): Promise<string[]> {
    const r = await this.#db.query(
      `SELECT DISTINCT account_id FROM charging_schedules WHERE next_cycle_start_ms <= $1 AND (ends_at_ms IS NULL OR next_cycle_start_ms < ends_at_ms)
       ORDER BY account_id LIMIT $2`,
      [nowMs, limit],
    );
    return r.rows.map((x) => x.account_id as string);
  }

  async claimPendingEvents(nowMs: number, limit: number, leaseMs: number): Promise<StoredChargingEvent[]> {
    // SKIP LOCKED: two nodes' deliverers claim disjoint events.
    const r = await this.#db.query(
      `UPDATE charging_events SET next_attempt_at_ms = $2 WHERE seq IN (
         SELECT seq FROM charging_events WHERE delivery_state = 'pending' AND next_attempt_at_ms <= $1 ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED
       ) RETURNING *`,
      [nowMs, nowMs + leaseMs, limit],
    );
    return r.rows.sort((x, y) => (x.seq as number) - (y.seq as number)).map(eventFromRow);
  }

  async markEventDelivered(eventId: string, atMs: number): Promise<void> {
    await this.#db.query("UPDATE charging_events SET delivery_state = 'delivered', delivered_at_ms = $2, next_attempt_at_ms = NULL WHERE id = $1", [
      eventId,
      atMs,
    ]);
  }

  async markEventAttemptFailed(eventId: string, attempts: number, nextAttemptAtMs: number | null): Promise<void> {
    await this.#db.query(
      `UPDATE charging_events SET attempts = $2, next_attempt_at_ms = $3, delivery_state = CASE WHEN $3::bigint IS NULL THEN 'failed' ELSE delivery_state END
       WHERE id = $1 AND delivery_state = 'pending'`,
      [eventId, attempts, nextAttemptAtMs],
    );
  }
}

export function openPostgresChargingStore(db: PgDb): PgChargingStore {
  return new PgChargingStore(db);
}
