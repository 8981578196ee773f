/**
 * The PostgreSQL engine: every store on one pool, plus the LISTEN/NOTIFY change feed. What the app, the
 * `tokengrid migrate` command and multi-node tests open. Migrations: a database never migrated (version 0) is
 * migrated on first start; one behind or ahead of this build refuses to start (SchemaVersionError) unless
 * `migrate: true` (what `tokengrid migrate` passes), so a rolling upgrade of many nodes migrates once, on purpose.
 */
import { randomBytes } from 'node:crypto';
import type { AccountStore } from '../../accounts/index.ts';
import type { AuditStore } from '../../audit/index.ts';
import type { BillingStore } from '../../billing/index.ts';
import type { ResponseStore } from '../../wire/openai/index.ts';
import { openPostgresAccountStore } from './accounts-store.ts';
import { openPostgresAuditStore } from './audit-store.ts';
import { openPostgresBillingStore } from './billing-store.ts';
import { openPostgresResponseStore } from './response-store.ts';
import { openPostgresIdempotencyStore, type PgIdempotencyStore } from './idempotency-store.ts';
import { PgChangeFeed } from './change-feed.ts';
import { type PgChargingStore, openPostgresChargingStore } from './charging-store.ts';
import { connectPostgres, type PgDb, type PgOptions } from './db.ts';
import { checkSchemaVersion, migrate, SchemaVersionError, schemaVersion, waitForMigrationRun } from './migrations.ts';
import { ensureUsagePartitions } from './usage-partitions.ts';

export interface PostgresEngineOptions extends PgOptions {
  /** Apply missing migrations (default: only on a database never migrated). */
  migrate?: boolean;
  /** Now, for the usage partitions to create (default Date.now(): the app passes its Clock's). */
  nowMs?: number;
  /** Open the LISTEN connection (default true). */
  changeFeed?: boolean;
  /** This node's id, the origin of what it publishes (default: random). */
  nodeId?: string;
  /** A change-feed handler threw, or a message was malformed. */
  onChangeError?: (err: unknown) => void;
}

export interface PostgresEngine {
  db: PgDb;
  charging: PgChargingStore;
  accounts: AccountStore;
  audit: AuditStore;
  responses: ResponseStore;
  /** Inference Idempotency-Keys shared by every node (the gateway's port). */
  idempotency: PgIdempotencyStore;
  /** Applies its plans' charging operations through `charging`, in the same transaction. */
  billing: BillingStore;
  /** Null when opened with changeFeed: false. */
  changes: PgChangeFeed | null;
  /** Versions applied by this open. */
  migrated: number[];
  close(): Promise<void>;
}

/**
 * A `schema` parameter of the URL (`postgres://host/db?schema=tokengrid`) names the schema TokenGrid's tables live
 * in (default `public`); it is TokenGrid's, so it is taken off the URL the driver sees.
 */
export function splitSchema(url: string): { url: string; schema: string | undefined } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url, schema: undefined };
  }
  const schema = u.searchParams.get('schema') ?? undefined;
  if (schema === undefined) return { url, schema };
  u.searchParams.delete('schema');
  return { url: u.toString(), schema };
}

export async function openPostgresEngine(fullUrl: string, o: PostgresEngineOptions = {}): Promise<PostgresEngine> {
  const split = splitSchema(fullUrl);
  const url = split.url;
  const schema = o.schema ?? split.schema;
  const db = await connectPostgres(url, schema === undefined ? o : { ...o, schema });
  try {
    const migrated = o.migrate === true || (await schemaVersion(db)) === 0 ? await migrate(db) : [];
    await checkSchemaVersion(db).catch(async (e: unknown) => {
      // Behind: maybe another node is migrating this fresh database right now (between two steps); wait for its run.
      if (!(e instanceof SchemaVersionError) || !(await waitForMigrationRun(db))) throw e;
      await checkSchemaVersion(db);
    });
    await ensureUsagePartitions(db, o.nowMs ?? Date.now());
    const changes =
      o.changeFeed === false
        ? null
        : await PgChangeFeed.open({
            db,
            url,
            nodeId: o.nodeId ?? `node_${randomBytes(6).toString('hex')}`,
            ...(o.onChangeError ? { onError: o.onChangeError } : {}),
          });
    const charging = openPostgresChargingStore(db);
    return {
      db,
      charging,
      billing: openPostgresBillingStore(db, { charging }),
      accounts: openPostgresAccountStore(db),
      audit: openPostgresAuditStore(db),
      responses: openPostgresResponseStore(db),
      idempotency: openPostgresIdempotencyStore(db),
      changes,
      migrated,
      async close() {
        await changes?.close();
        await db.close();
      },
    };
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
}
