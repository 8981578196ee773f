/**
 * `tokengrid migrate`: copies a single-node install (the SQLite data folder) into PostgreSQL, once.
 *
 * An offline operator task, not a CLI-over-HTTP command: it opens the data folder and the database directly, so it
 * lives in `app` (which may import every store). The rules:
 * - The data folder must not be served while it is copied: migrate takes `tokengrid.lock` itself (a running
 *   server holds it, so migrate refuses with "stop the server first"; a server started meanwhile is refused).
 * - The source is brought to this build's SQLite schema first (the same idempotent migrations a start runs), so
 *   the rows read are the shapes this build's decoders know; nothing else is written to it.
 * - The target gets this build's PostgreSQL migrations, then everything is copied in ONE transaction, under an
 *   advisory lock, after checking that no TokenGrid table holds a row: migrate never merges, and a second run
 *   (or two at once) is refused. Verification runs inside the same transaction, before COMMIT: per table source
 *   count = target count, per account and unit the bucket sums (amount, consumed, forfeited) and the usage totals
 *   equal, and the audit hash chain verifies on the copy. Any difference rolls everything back.
 * - Holds are not copied: a hold lives only as long as its request, and no request runs while the folder is
 *   locked. An open reservation found on disk (a crash left it) is copied as `voided` (closed at the migration
 *   time) and every bucket's and member cap's `held` is copied as 0: the balance it held is free again, as the
 *   sweeper would have made it after the reservation's time limit.
 * - Rows are copied column by column (same names; JSON text becomes jsonb, 0/1 becomes boolean). The charging
 *   tables PostgreSQL keeps as documents (schedules, policies, member caps, reservations, usage records) go
 *   through the SQLite decoders to the domain objects the PostgreSQL store writes. The daily usage rollup and the
 *   usage id index are rebuilt from the records. A source column PostgreSQL has no place for, or a non-empty
 *   source table without a PostgreSQL table, stops the migration before anything is committed.
 * - Usage records land in their months' partitions: migrate creates the monthly partitions the records need (and
 *   the ones a node creates at start) before copying them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type AuditEntry, verifyChain } from '../audit/index.ts';
import type { LedgerEntry, Reservation } from '../charging/index.ts';
import { openSqliteAccountStore } from '../store/sqlite/accounts-store.ts';
import { openSqliteAuditStore } from '../store/sqlite/audit-store.ts';
import { openSqliteBillingStore } from '../store/sqlite/billing-store.ts';
import { migrateChargingSchema } from '../store/sqlite/charging-schema.ts';
import { consumeEntriesOf } from '../store/sqlite/charging-apply.ts';
import {
  capFromRow,
  type CapRow,
  type LedgerRow,
  ledgerFromRow,
  policyFromRow,
  type PolicyRow,
  reservationFromRow,
  type ReservationRow,
  scheduleFromRow,
  type ScheduleRow,
  usageFromRow,
  type UsageRow,
} from '../store/sqlite/charging-rows.ts';
import { lockDataDir, openSqlite, type SqliteDb } from '../store/sqlite/db.ts';
import { openSqliteResponseStore } from '../store/sqlite/response-store.ts';
import { connectPostgres, type PgDb, redactUrl } from '../store/postgres/db.ts';
import { migrate as migratePostgres } from '../store/postgres/migrations.ts';
import { splitSchema } from '../store/postgres/engine.ts';
import { partitionName } from '../store/postgres/usage-partitions.ts';
import type pg from 'pg';

export interface MigrateOptions {
  /** The data folder of the single-node install (holds tokengrid.db). */
  dataDir: string;
  /** postgres://… of the target database. */
  url: string;
  /** Target schema (default `public`). */
  schema?: string;
  /** The migration's time (voided holds are closed at it). */
  nowMs: number;
  onProgress?: (p: MigrateProgress) => void;
}

export type MigrateProgress =
  | { phase: 'schema'; applied: number[] }
  | { phase: 'table'; table: string; copied: number; total: number | null }
  | { phase: 'verify'; check: string; ok: boolean; detail: string };

export interface TableReport {
  table: string;
  /** Rows in the SQLite table (null: a table only PostgreSQL has, rebuilt from others). */
  source: number | null;
  /** Rows PostgreSQL must hold (the source count, or more where SQLite derives rows PostgreSQL stores). */
  expected?: number;
  target: number;
  note?: string;
}

export interface MigrateReport {
  from: string;
  to: string;
  schema: string;
  migrationsApplied: number[];
  tables: TableReport[];
  /** Open reservations found on disk, copied as voided. */
  voidedHolds: number;
  checks: { check: string; ok: boolean; detail: string }[];
  durationMs: number;
}

/** A refusal the operator can act on (exit code 1, the message says what to do). */
export class MigrateRefused extends Error {}

type SRow = Record<string, unknown>;
interface TargetColumn {
  name: string;
  type: string;
  nullable: boolean;
  hasDefault: boolean;
}

/** Insert order: tables others reference first. */
const FIRST = ['accounts', 'members', 'api_keys'];
/** Self references: a row is inserted after the row it names. */
const SELF_REFS: Record<string, string[]> = { accounts: ['parent_id'], api_keys: ['parent_key_id', 'minted_by_key_id'] };
/** Tables only PostgreSQL has; rebuilt here from the copied rows. */
const DERIVED = new Set(['charging_usage_ids', 'charging_usage_daily']);

export async function migrateToPostgres(o: MigrateOptions): Promise<MigrateReport> {
  const started = performance.now();
  const dbPath = join(o.dataDir, 'tokengrid.db');
  if (!existsSync(dbPath)) throw new MigrateRefused(`No TokenGrid database in ${o.dataDir} (expected ${dbPath}). Give --from the data folder of the install.`);
  let release: () => void;
  try {
    release = lockDataDir(o.dataDir);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new MigrateRefused(`Stop the TokenGrid server on ${o.dataDir} first: migrate copies a data folder nobody serves. (${why})`);
  }
  let sqlite: SqliteDb | undefined;
  let target: PgDb | undefined;
  try {
    sqlite = openSqlite(dbPath);
    bringSourceToThisBuild(sqlite);
    const split = splitSchema(o.url);
    target = await connectPostgres(split.url, { schema: o.schema ?? split.schema ?? 'public', max: 2, statementTimeoutMs: 600_000 });
    const applied = await migratePostgres(target);
    o.onProgress?.({ phase: 'schema', applied });
    const src = sqlite;
    const pgDb = target;
    const { tables, voidedHolds, checks } = await target.tx((c) => copyAll(src, c, pgDb.schema, o));
    return {
      from: o.dataDir,
      to: redactUrl(o.url),
      schema: target.schema,
      migrationsApplied: applied,
      tables,
      voidedHolds,
      checks,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    sqlite?.close();
    await target?.close();
    release();
  }
}

/** The idempotent schema steps a start would run (nothing to do is one read per store). */
function bringSourceToThisBuild(db: SqliteDb): void {
  openSqliteAccountStore(db);
  openSqliteAuditStore(db);
  openSqliteResponseStore(db);
  openSqliteBillingStore(db);
  migrateChargingSchema(db);
}

const MIGRATE_LOCK = 7_148_002_017; // pg_advisory_xact_lock key: one migrate at a time per database

async function copyAll(
  src: SqliteDb,
  c: pg.PoolClient,
  schema: string,
  o: MigrateOptions,
): Promise<{ tables: TableReport[]; voidedHolds: number; checks: MigrateReport['checks'] }> {
  await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
  const columns = await targetColumns(c, schema);
  await refuseNonEmpty(c, [...columns.keys()]);

  const sourceTables = (
    src.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_migrations' ORDER BY name").all() as {
      name: string;
    }[]
  ).map((r) => r.name);
  const order = [...FIRST.filter((t) => sourceTables.includes(t)), ...sourceTables.filter((t) => !FIRST.includes(t))];

  const missing = order.filter((t) => !columns.has(t) && count(src, t) > 0);
  if (missing.length > 0) {
    throw new MigrateRefused(
      `This build's PostgreSQL schema has no table for ${missing.map((t) => `${t} (${count(src, t)} rows)`).join(', ')}: ` +
        'those rows would be lost, so nothing was copied. Migrate with a TokenGrid version whose PostgreSQL engine stores them.',
    );
  }

  const tables: TableReport[] = [];
  let voidedHolds = 0;
  const progress = (table: string, copied: number, total: number | null): void => o.onProgress?.({ phase: 'table', table, copied, total });
  for (const table of order) {
    const cols = columns.get(table);
    const total = count(src, table);
    if (cols === undefined) continue; // empty (checked above) and unknown to PostgreSQL
    if (table === 'charging_usage_records') await createUsagePartitions(src, c, o.nowMs);
    const special = SPECIAL[table];
    let note: string | undefined;
    let expected = total;
    if (special !== undefined) {
      const out = await special(src, c, o, (n, of) => progress(table, n, of));
      if (out.voided > 0) {
        voidedHolds += out.voided;
        note = `${out.voided} open hold(s) copied as voided`;
      }
      if (out.expected !== undefined) expected = out.expected;
      if (out.note !== undefined) note = out.note;
    } else {
      const override: Record<string, (r: SRow) => unknown> = table === 'charging_buckets' || table === 'charging_member_usage' ? { held: () => 0 } : {};
      await copyGeneric(src, c, table, cols, override, (n, of) => progress(table, n, of));
      if (table === 'charging_buckets' || table === 'charging_member_usage') {
        const held = (src.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE held > 0`).get() as { n: number }).n;
        if (held > 0) note = `held set to 0 on ${held} row(s) (holds are not copied)`;
      }
    }
    if (total === 0) progress(table, 0, 0);
    tables.push({ table, source: total, expected, target: await targetCount(c, table), ...(note === undefined ? {} : { note }) });
  }

  // Rebuilt from the records: the id index (one record per request id) and the daily rollup (UTC days).
  await c.query('INSERT INTO charging_usage_ids (request_id, settled_at_ms) SELECT request_id, settled_at_ms FROM charging_usage_records');
  await c.query(
    `INSERT INTO charging_usage_daily (account_id, day, model, requests, tokens_input, tokens_output, cost_coins, cost_minor, leak_coins)
     SELECT account_id, (to_timestamp(settled_at_ms / 1000.0) AT TIME ZONE 'UTC')::date, model, count(*), sum(tokens_input), sum(tokens_output),
            sum(cost_coins), sum(COALESCE(cost_minor, 0)), sum(leak_coins)
     FROM charging_usage_records GROUP BY 1, 2, 3`,
  );
  for (const t of DERIVED) {
    if (columns.has(t)) tables.push({ table: t, source: null, target: await targetCount(c, t), note: 'rebuilt from charging_usage_records' });
  }
  // Serial columns continue after the copied values.
  for (const [table, cols] of columns) {
    for (const col of cols) {
      if (!col.hasDefault || !col.type.includes('int')) continue;
      const seq = (await c.query<{ s: string | null }>('SELECT pg_get_serial_sequence($1, $2) AS s', [table, col.name])).rows[0]?.s;
      if (seq === null || seq === undefined) continue;
      await c.query(`SELECT setval($1, GREATEST((SELECT COALESCE(MAX(${col.name}), 0) FROM ${table}), 1), (SELECT COUNT(*) > 0 FROM ${table}))`, [seq]);
    }
  }

  const checks = await verify(src, c, tables, o);
  const failed = checks.filter((x) => !x.ok);
  if (failed.length > 0) {
    throw new MigrateRefused(`Verification failed, nothing was committed: ${failed.map((f) => `${f.check}: ${f.detail}`).join('; ')}`);
  }
  return { tables, voidedHolds, checks };
}

/** Monthly partitions for every month the records fall in, and the months a node creates at start, before the copy. */
async function createUsagePartitions(src: SqliteDb, c: pg.PoolClient, nowMs: number): Promise<void> {
  const r = src.prepare('SELECT MIN(settled_at_ms) AS lo, MAX(settled_at_ms) AS hi FROM charging_usage_records').get() as {
    lo: number | null;
    hi: number | null;
  };
  const now = new Date(nowMs);
  let from = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1);
  const to = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 3, 1);
  if (r.lo !== null) {
    const lo = new Date(r.lo);
    from = Math.min(from, Date.UTC(lo.getUTCFullYear(), lo.getUTCMonth(), 1));
  }
  const end = Math.max(to, r.hi === null ? 0 : r.hi + 1);
  for (let m = from; m < end; ) {
    const d = new Date(m);
    const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    await c.query(`CREATE TABLE IF NOT EXISTS ${partitionName(m)} PARTITION OF charging_usage_records FOR VALUES FROM (${m}) TO (${next})`);
    m = next;
  }
}

async function targetColumns(c: pg.PoolClient, schema: string): Promise<Map<string, TargetColumn[]>> {
  const r = await c.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string; column_default: string | null }>(
    `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default
     FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE' AND c.table_name <> 'tokengrid_migrations'
       AND NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid JOIN pg_namespace n ON n.oid = k.relnamespace
                       WHERE k.relname = c.table_name AND n.nspname = c.table_schema)
     ORDER BY c.table_name, c.ordinal_position`,
    [schema],
  );
  const out = new Map<string, TargetColumn[]>();
  for (const row of r.rows) {
    const list = out.get(row.table_name) ?? [];
    list.push({ name: row.column_name, type: row.data_type, nullable: row.is_nullable === 'YES', hasDefault: row.column_default !== null });
    out.set(row.table_name, list);
  }
  // A partitioned parent is not a BASE TABLE in information_schema; add them.
  const parts = await c.query<{ relname: string }>(
    `SELECT k.relname FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE n.nspname = $1 AND k.relkind = 'p'`,
    [schema],
  );
  for (const p of parts.rows) {
    const cols = await c.query<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }>(
      `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      [schema, p.relname],
    );
    out.set(
      p.relname,
      cols.rows.map((x) => ({ name: x.column_name, type: x.data_type, nullable: x.is_nullable === 'YES', hasDefault: x.column_default !== null })),
    );
  }
  return out;
}

async function refuseNonEmpty(c: pg.PoolClient, tables: string[]): Promise<void> {
  const full: string[] = [];
  for (const t of tables) {
    const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`);
    const n = r.rows[0]?.n ?? 0;
    if (n > 0) full.push(`${t}: ${n}`);
  }
  if (full.length > 0) {
    throw new MigrateRefused(
      `The target database already holds TokenGrid data (${full.join(', ')}). migrate copies into an empty database only and never merges; ` +
        'if this is a migration that already ran, the install is on PostgreSQL: start the server with TOKENGRID_DATABASE_URL.',
    );
  }
}

const count = (db: SqliteDb, table: string): number => (db.prepare(`SELECT COUNT(*) AS n FROM "${table}"`).get() as { n: number }).n;

async function targetCount(c: pg.PoolClient, table: string): Promise<number> {
  return (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? 0;
}

/** Rows whose self references come first (a reference to a row not in the table is left to the foreign key). */
function selfOrdered(rows: SRow[], refs: string[]): SRow[] {
  if (refs.length === 0) return rows;
  const ids = new Set(rows.map((r) => r.id as string));
  const done = new Set<string>();
  const out: SRow[] = [];
  let pending = rows;
  while (pending.length > 0) {
    const next: SRow[] = [];
    for (const r of pending) {
      const ready = refs.every((col) => {
        const v = r[col];
        return v === null || v === undefined || !ids.has(v as string) || done.has(v as string) || v === r.id;
      });
      if (ready) {
        out.push(r);
        done.add(r.id as string);
      } else next.push(r);
    }
    if (next.length === pending.length) throw new MigrateRefused(`a reference cycle among ${next.length} row(s) (first: ${String(next[0]?.id)})`);
    pending = next;
  }
  return out;
}

const BATCH_PARAMS = 30_000;

/** Rows written in multi-row INSERTs of at most BATCH_PARAMS values; `rows` is consumed lazily (a table is never read whole). */
async function insertRows(
  c: pg.PoolClient,
  table: string,
  cols: string[],
  rows: Iterable<unknown[]>,
  onBatch: (n: number, total: number | null) => void,
  total: number | null,
): Promise<number> {
  const per = Math.max(1, Math.min(1000, Math.floor(BATCH_PARAMS / Math.max(1, cols.length))));
  let done = 0;
  let batch: unknown[][] = [];
  const flush = async (): Promise<void> => {
    const params: unknown[] = [];
    const tuples = batch.map((row) => `(${row.map((v) => `$${params.push(v)}`).join(', ')})`);
    await c.query(`INSERT INTO ${table} (${cols.join(', ')}) VALUES ${tuples.join(', ')}`, params);
    done += batch.length;
    batch = [];
    onBatch(done, total);
  };
  for (const row of rows) {
    batch.push(row);
    if (batch.length >= per) await flush();
  }
  if (batch.length > 0) await flush();
  return done;
}

function* mapRows<T, U>(rows: Iterable<T>, f: (r: T) => U): Generator<U> {
  for (const r of rows) yield f(r);
}

function convert(v: unknown, col: TargetColumn, table: string): unknown {
  if (v === null || v === undefined) return null;
  if (col.type === 'jsonb' || col.type === 'json') {
    if (typeof v !== 'string') throw new MigrateRefused(`${table}.${col.name}: expected JSON text in SQLite, found ${typeof v}`);
    JSON.parse(v); // refuse a broken document here, with the table named, rather than as a PostgreSQL error
    return v;
  }
  if (col.type === 'boolean') return v === 1 || v === true;
  if (typeof v === 'bigint') return v.toString();
  return v;
}

async function copyGeneric(
  src: SqliteDb,
  c: pg.PoolClient,
  table: string,
  target: TargetColumn[],
  override: Record<string, (r: SRow) => unknown>,
  onBatch: (n: number, total: number | null) => void,
): Promise<void> {
  const srcCols = (src.prepare(`PRAGMA table_info("${table}")`).all() as { name: string }[]).map((x) => x.name);
  const byName = new Map(target.map((col) => [col.name, col]));
  const homeless = srcCols.filter((x) => !byName.has(x));
  if (homeless.length > 0) {
    throw new MigrateRefused(`${table}: the PostgreSQL table has no column for ${homeless.join(', ')}; nothing was copied.`);
  }
  for (const col of target) {
    if (!srcCols.includes(col.name) && !col.nullable && !col.hasDefault) {
      throw new MigrateRefused(`${table}.${col.name}: required in PostgreSQL and absent from SQLite; nothing was copied.`);
    }
  }
  const cols = srcCols;
  const refs = SELF_REFS[table] ?? [];
  const stmt = src.prepare(`SELECT * FROM "${table}"`);
  // Tables with self references are small (accounts, keys) and read whole to order them; the others stream.
  const rows: Iterable<SRow> = refs.length > 0 ? selfOrdered(stmt.all() as SRow[], refs) : (stmt.iterate() as IterableIterator<SRow>);
  const values = mapRows(rows, (r) => cols.map((name) => convert(override[name] !== undefined ? override[name](r) : r[name], byName.get(name)!, table)));
  await insertRows(c, table, cols, values, onBatch, count(src, table));
}

interface SpecialOut {
  voided: number;
  /** Rows the target must hold when that differs from the SQLite table's count. */
  expected?: number;
  note?: string;
}
type Special = (src: SqliteDb, c: pg.PoolClient, o: MigrateOptions, onBatch: (n: number, total: number | null) => void) => Promise<SpecialOut>;

const j = (v: unknown): string => JSON.stringify(v);

/** The charging tables PostgreSQL keeps as documents: SQLite row -> domain object (the SQLite decoders) -> PG row. */
const SPECIAL: Record<string, Special> = {
  /** SQLite keeps a settle's consume entries only in its usage record (the store derives them); PostgreSQL stores them. */
  async charging_ledger(src, c, _o, onBatch) {
    const stored = count(src, 'charging_ledger');
    const written = await insertRows(
      c,
      'charging_ledger',
      ['account_id', 'id', 'op', 'debit', 'credit', 'unit', 'currency', 'amount', 'request_id', 'at_ms'],
      mapRows(sourceLedger(src), (e) => [e.accountId, e.id, e.op, e.debit, e.credit, e.unit, e.currency, e.amount, e.requestId, e.atMs]),
      onBatch,
      null,
    );
    const derived = written - stored;
    return {
      voided: 0,
      expected: written,
      ...(derived > 0 ? { note: `+${derived} consume ${derived === 1 ? 'entry' : 'entries'} from usage records` } : {}),
    };
  },
  async charging_schedules(src, c, _o, onBatch) {
    const rows = mapRows(src.prepare('SELECT * FROM charging_schedules').iterate() as IterableIterator<ScheduleRow>, scheduleFromRow);
    await insertRows(
      c,
      'charging_schedules',
      ['id', 'account_id', 'data', 'ends_at_ms', 'next_cycle_index', 'next_cycle_start_ms', 'source_ref'],
      mapRows(rows, (s) => [s.id, s.accountId, j(s), s.endsAtMs, s.nextCycleIndex, s.nextCycleStartMs, s.sourceRef]),
      onBatch,
      count(src, 'charging_schedules'),
    );
    return { voided: 0 };
  },
  async charging_policies(src, c, _o, onBatch) {
    const rows = mapRows(src.prepare('SELECT * FROM charging_policies').iterate() as IterableIterator<PolicyRow>, policyFromRow);
    await insertRows(
      c,
      'charging_policies',
      ['account_id', 'data'],
      mapRows(rows, (p) => [p.accountId, j(p)]),
      onBatch,
      count(src, 'charging_policies'),
    );
    return { voided: 0 };
  },
  async charging_member_caps(src, c, _o, onBatch) {
    const rows = mapRows(src.prepare('SELECT * FROM charging_member_caps').iterate() as IterableIterator<CapRow>, capFromRow);
    await insertRows(
      c,
      'charging_member_caps',
      ['account_id', 'member_id', 'data'],
      mapRows(rows, (m) => [m.accountId, m.memberId, j(m)]),
      onBatch,
      count(src, 'charging_member_caps'),
    );
    return { voided: 0 };
  },
  async charging_reservations(src, c, o, onBatch) {
    let voided = 0;
    const rows = mapRows(src.prepare('SELECT * FROM charging_reservations').iterate() as IterableIterator<ReservationRow>, (row): Reservation => {
      const r = reservationFromRow(row);
      if (r.state !== 'open') return r;
      voided++;
      return { ...r, state: 'voided', closedAtMs: o.nowMs };
    });
    await insertRows(
      c,
      'charging_reservations',
      ['id', 'request_id', 'account_id', 'member_id', 'state', 'valid_until_ms', 'data'],
      mapRows(rows, (r) => [r.id, r.requestId, r.accountId, r.memberId, r.state, r.validUntilMs, j(r)]),
      onBatch,
      count(src, 'charging_reservations'),
    );
    return { voided };
  },
  async charging_usage_records(src, c, _o, onBatch) {
    const rows = mapRows(src.prepare('SELECT * FROM charging_usage_records').iterate() as IterableIterator<UsageRow>, usageFromRow);
    await insertRows(
      c,
      'charging_usage_records',
      [
        'request_id',
        'account_id',
        'member_id',
        'key_id',
        'model',
        'provider',
        'status',
        'tokens_input',
        'tokens_output',
        'cost_coins',
        'cost_minor',
        'leak_coins',
        'started_at_ms',
        'settled_at_ms',
        'data',
      ],
      mapRows(rows, (u) => [
        u.requestId,
        u.accountId,
        u.memberId,
        u.keyId,
        u.model,
        u.provider,
        u.status,
        u.usage.tokensInput,
        u.usage.tokensOutput,
        u.costCoins,
        u.costMinor,
        u.leakCoins,
        u.startedAtMs,
        u.settledAtMs,
        j(u),
      ]),
      onBatch,
      count(src, 'charging_usage_records'),
    );
    return { voided: 0 };
  },
};

/** The ledger as the SQLite store lists it, streamed: its rows, then the consume entries its usage records carry. */
function* sourceLedger(src: SqliteDb): Generator<LedgerEntry> {
  const ids = new Set(src.prepare('SELECT id FROM charging_ledger').pluck().all() as string[]);
  for (const row of src.prepare('SELECT * FROM charging_ledger').iterate() as IterableIterator<LedgerRow>) yield ledgerFromRow(row);
  for (const row of src.prepare('SELECT * FROM charging_usage_records').iterate() as IterableIterator<UsageRow>) {
    for (const e of consumeEntriesOf(usageFromRow(row))) if (!ids.has(e.id)) yield e;
  }
}

function ledgerSums(entries: Iterable<LedgerEntry>): Map<string, string> {
  const sums = new Map<string, { entries: number; amount: number }>();
  for (const e of entries) {
    const k = `${e.accountId} ${e.op} ${e.unit} ${e.currency ?? '-'}`;
    const cur = sums.get(k) ?? { entries: 0, amount: 0 };
    cur.entries++;
    cur.amount += e.amount;
    sums.set(k, cur);
  }
  return new Map([...sums].map(([k, v]) => [k, JSON.stringify(v)]));
}

/** Per-account sums that must be equal on both sides; keys are `account unit currency`. */
const BALANCE_SQL = `SELECT account_id || ' ' || unit || ' ' || COALESCE(currency, '-') AS k, COUNT(*) AS buckets, SUM(amount) AS amount, SUM(consumed) AS consumed,
  SUM(forfeited) AS forfeited, SUM(floor) AS floor FROM charging_buckets GROUP BY account_id, unit, currency`;
const USAGE_SQL = `SELECT account_id AS k, COUNT(*) AS records, SUM(tokens_input) AS tokens_input, SUM(tokens_output) AS tokens_output, SUM(cost_coins) AS cost_coins,
  SUM(COALESCE(cost_minor, 0)) AS cost_minor, SUM(leak_coins) AS leak_coins FROM charging_usage_records GROUP BY account_id`;
const LEDGER_SQL = `SELECT account_id || ' ' || op || ' ' || unit || ' ' || COALESCE(currency, '-') AS k, COUNT(*) AS entries, SUM(amount) AS amount
  FROM charging_ledger GROUP BY account_id, op, unit, currency`;

function normalize(rows: SRow[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of rows) {
    const { k, ...rest } = r;
    out.set(String(k), JSON.stringify(Object.fromEntries(Object.entries(rest).map(([a, b]) => [a, Number(b)]))));
  }
  return out;
}

function sameSums(check: string, a: Map<string, string>, b: Map<string, string>): { check: string; ok: boolean; detail: string } {
  const diff: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) diff.push(`${k}: SQLite ${v}, PostgreSQL ${b.get(k) ?? 'missing'}`);
  for (const k of b.keys()) if (!a.has(k)) diff.push(`${k}: only in PostgreSQL`);
  return diff.length === 0 ? { check, ok: true, detail: `${a.size} group(s) equal` } : { check, ok: false, detail: diff.slice(0, 5).join('; ') };
}

async function verify(src: SqliteDb, c: pg.PoolClient, tables: TableReport[], o: MigrateOptions): Promise<MigrateReport['checks']> {
  const checks: MigrateReport['checks'] = [];
  const push = (x: { check: string; ok: boolean; detail: string }): void => {
    checks.push(x);
    o.onProgress?.({ phase: 'verify', ...x });
  };
  const off = tables.filter((t) => t.source !== null && (t.expected ?? t.source) !== t.target);
  push({
    check: 'row counts',
    ok: off.length === 0,
    detail:
      off.length === 0
        ? `${tables.filter((t) => t.source !== null).length} table(s) equal`
        : off.map((t) => `${t.table} ${t.expected ?? t.source} -> ${t.target}`).join(', '),
  });
  for (const [check, sql] of [
    ['balances per account and unit', BALANCE_SQL],
    ['usage totals per account', USAGE_SQL],
  ] as const) {
    push(sameSums(check, normalize(src.prepare(sql).all() as SRow[]), normalize((await c.query(sql)).rows as SRow[])));
  }
  push(sameSums('ledger per account and operation', ledgerSums(sourceLedger(src)), normalize((await c.query(LEDGER_SQL)).rows as SRow[])));
  const audit = await c.query('SELECT * FROM audit_log ORDER BY seq');
  const entries: AuditEntry[] = audit.rows.map((r: SRow) => ({
    seq: Number(r.seq),
    id: r.id as string,
    atMs: Number(r.at_ms),
    actor: r.actor as string,
    role: r.role as string,
    action: r.action as string,
    target: r.target as string | null,
    accountId: r.account_id as string | null,
    outcome: Number(r.outcome),
    before: r.before_json,
    after: r.after_json,
    requestId: r.request_id as string | null,
    source: r.source as string | null,
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  }));
  const chain = verifyChain(entries);
  push({
    check: 'audit hash chain',
    ok: chain.ok,
    detail: chain.ok ? `${chain.entries} ${chain.entries === 1 ? 'entry verifies' : 'entries verify'}` : chain.reason,
  });
  return checks;
}
