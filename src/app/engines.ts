/**
 * Which storage engine the app runs on, and building its stores (issue 15): SQLite in the data folder (the default,
 * one process owns the folder) or PostgreSQL when a database URL is set (any number of gateway processes share it:
 * no data-folder lock, no WAL flusher; its LISTEN/NOTIFY change feed tells the other nodes of changes). The app
 * wires what this returns and never opens a store itself.
 */
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { AccountStore } from '../accounts/index.ts';
import type { AuditStore } from '../audit/index.ts';
import type { BillingStore } from '../billing/store.ts';
import type { ChargingStore } from '../charging/index.ts';
import type { ChangeFeed, Clock } from '../core/index.ts';
import type { ResponseStore } from '../wire/openai/index.ts';
import type { IdempotencyStore } from '../gateway/index.ts';
import { ConfigError } from '../config/index.ts';
import { BadDatabaseSettingError, DatabaseUnreachableError } from '../store/postgres/db.ts';
import { openPostgresEngine } from '../store/postgres/engine.ts';
import { SchemaVersionError } from '../store/postgres/migrations.ts';
import { ensureUsagePartitions } from '../store/postgres/usage-partitions.ts';
import { openSqliteAccountStore } from '../store/sqlite/accounts-store.ts';
import { openSqliteAuditStore } from '../store/sqlite/audit-store.ts';
import { openSqliteBillingStore } from '../store/sqlite/billing-store.ts';
import { openSqliteChargingStore } from '../store/sqlite/charging-store.ts';
import { lockDataDir, openSqlite, type SqliteDb } from '../store/sqlite/db.ts';
import { openSqliteResponseStore } from '../store/sqlite/response-store.ts';
import { WalFlusher } from '../store/sqlite/wal-flusher.ts';

export interface Engines {
  kind: 'sqlite' | 'postgres';
  /** Where the data lives, for the start-up log (a URL's password redacted). */
  where: string;
  /** The SQLite database (SQLite engine only: tests and tools that look at its rows). */
  sqlite: SqliteDb | undefined;
  accounts: AccountStore;
  charging: ChargingStore;
  audit: AuditStore;
  responses: ResponseStore;
  billing: BillingStore;
  /**
   * Inference Idempotency-Keys: PostgreSQL's table, shared by every node (issue 15); SQLite: undefined, the
   * gateway keeps them in its own memory (one process owns the data folder).
   */
  idempotency: IdempotencyStore | undefined;
  /**
   * True when this start found nothing stored yet (SQLite: always, the data folder's first start decides;
   * PostgreSQL: this start migrated an empty database), so the demo account is created once per deployment, not
   * once per node.
   */
  fresh: boolean;
  /** PostgreSQL: the LISTEN/NOTIFY change feed (used unless Redis carries changes); SQLite: none (one node). */
  changeFeed: ChangeFeed | undefined;
  /**
   * PostgreSQL: the charging store's counters (operations, round trips, one-round-trip attempts, stale attempts, and
   * backstops: an optimistic attempt the server refused for another reason than a stale version, which should stay 0).
   */
  chargingStats: (() => Readonly<Record<'ops' | 'roundTrips' | 'optimistic' | 'stale' | 'backstop', number>>) | undefined;
  close(): Promise<void>;
}

export interface EngineOptions {
  /** TOKENGRID_DATABASE_URL or storage.databaseUrl; unset: SQLite in `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  clock: Clock;
  nodeId: string;
  log: (level: 'warn' | 'error', obj: object, msg: string) => void;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export async function openEngines(o: EngineOptions): Promise<Engines> {
  return o.databaseUrl === undefined ? openSqliteEngines(o) : openPostgresEngines(o, o.databaseUrl);
}

function openSqliteEngines(o: EngineOptions): Engines {
  const releaseDataDir = lockDataDir(o.dataDir);
  // Secrets live here (admin key, demo key, the database): the folder is 0700 and its files 0600.
  chmodSync(o.dataDir, 0o700);
  const dbPath = join(o.dataDir, 'tokengrid.db');
  // Created 0600 before SQLite opens it: SQLite gives its -wal and -journal files the database file's mode.
  if (!existsSync(dbPath)) closeSync(openSync(dbPath, 'a', 0o600));
  for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, join(o.dataDir, 'tokengrid.lock')]) if (existsSync(f)) chmodSync(f, 0o600);
  const db = openSqlite(dbPath, { exclusive: true });
  // Keeps checkpoints off the event loop's critical path (see wal-flusher.ts).
  const walFlusher = new WalFlusher(`${dbPath}-wal`, {
    onError: (err) => o.log('warn', { err }, 'background WAL flush failed; checkpoints will flush on the event loop'),
  });
  const charging = openSqliteChargingStore(db, { afterCommit: () => walFlusher.kick() });
  return {
    kind: 'sqlite',
    where: dbPath,
    fresh: true,
    sqlite: db,
    accounts: openSqliteAccountStore(db),
    charging,
    audit: openSqliteAuditStore(db),
    responses: openSqliteResponseStore(db),
    billing: openSqliteBillingStore(db, { charging }),
    idempotency: undefined,
    changeFeed: undefined,
    chargingStats: undefined,
    async close() {
      db.close();
      walFlusher.close();
      releaseDataDir();
    },
  };
}

async function openPostgresEngines(o: EngineOptions, url: string): Promise<Engines> {
  const pg = await openPostgresEngine(url, {
    nowMs: o.clock.nowMs(),
    nodeId: o.nodeId,
    onChangeError: (err) => o.log('warn', { err }, 'change feed: a handler failed or a message was malformed'),
  }).catch((e: unknown) => {
    // Start-up refusals the operator acts on: one line (main prints a ConfigError's message alone), not a stack.
    if (e instanceof DatabaseUnreachableError || e instanceof SchemaVersionError) throw new ConfigError(e.message);
    if (e instanceof BadDatabaseSettingError) throw new ConfigError(`TOKENGRID_DATABASE_URL (or storage.databaseUrl): ${e.message}`);
    throw e;
  });
  // Next months' usage partitions, created ahead (each node; creating one twice is harmless).
  const partitions = setInterval(() => {
    ensureUsagePartitions(pg.db, o.clock.nowMs()).then(
      (r) => {
        if (r.leftInDefault.length > 0) o.log('warn', { months: r.leftInDefault }, 'usage records of these months sit in the default partition');
      },
      (err: unknown) => o.log('warn', { err }, 'could not create the next usage partitions'),
    );
  }, DAY_MS);
  partitions.unref();
  // Expired Idempotency-Keys, deleted hourly (each node; a claim never reads an expired row as live anyway).
  const idempotencySweep = setInterval(() => {
    pg.idempotency.sweep(o.clock.nowMs()).catch((err: unknown) => o.log('warn', { err }, 'could not delete expired Idempotency-Keys'));
  }, HOUR_MS);
  idempotencySweep.unref();
  return {
    kind: 'postgres',
    fresh: pg.migrated.includes(1),
    where: `${pg.db.where} (schema ${pg.db.schema})`,
    sqlite: undefined,
    accounts: pg.accounts,
    charging: pg.charging,
    audit: pg.audit,
    responses: pg.responses,
    billing: pg.billing,
    idempotency: pg.idempotency,
    changeFeed: pg.changes ?? undefined,
    chargingStats: () => pg.charging.stats,
    async close() {
      clearInterval(partitions);
      clearInterval(idempotencySweep);
      await pg.close();
    },
  };
}
