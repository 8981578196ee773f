/**
 * The PostgreSQL connection: one `pg` Pool per engine, every connection with the engine's schema as its
 * search_path and a statement timeout, int8 read back as JavaScript numbers (every amount and time the stores
 * write is a safe integer). `connectPostgres` checks the server answers before anything else starts, and says
 * which database it could not reach (the password is never printed).
 */
import pg from 'pg';

export interface PgOptions {
  /** Schema holding TokenGrid's tables (default `public`); tests use their own `tg_test_<random>`. */
  schema?: string;
  /** Connections in the pool (default 10). */
  max?: number;
  /** Server-side limit per statement (default 5000 ms). */
  statementTimeoutMs?: number;
  /** Time to open a connection (default 5000 ms). */
  connectTimeoutMs?: number;
}

/** pg_advisory_xact_lock key of the migrations runner (migrations.ts), also taken to create the schema. */
export const SCHEMA_LOCK_KEY = 7_148_002_015;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** PostgreSQL's own schemas: TokenGrid's tables must never be created in them (`information_schema` would accept them). */
const SYSTEM_SCHEMA = /^(pg_|information_schema$)/;
const INT8_OID = 20;

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(an unparsable database URL)';
  }
}

function int8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`PostgreSQL returned ${value}, beyond JavaScript's safe integers`);
  return n;
}

/** The database could not be reached at start (the message names it, password hidden). */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/** A setting of the database URL is unusable (a bad or reserved `?schema=`): the operator fixes the URL. */
export class BadDatabaseSettingError extends Error {
  override name = 'BadDatabaseSettingError';
}

export class PgDb {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** The URL with the password redacted. */
  readonly where: string;
  #closed = false;

  /** Connections that died (server restart or crash, network): see the charging store's cache. */
  connectionErrors = 0;

  constructor(url: string, o: PgOptions = {}) {
    const schema = o.schema ?? 'public';
    if (!SCHEMA_NAME.test(schema)) {
      throw new BadDatabaseSettingError(`bad PostgreSQL schema name ${JSON.stringify(schema)} (lower-case letters, digits, _; at most 63)`);
    }
    if (SYSTEM_SCHEMA.test(schema)) {
      throw new BadDatabaseSettingError(`the PostgreSQL schema ${schema} is PostgreSQL's own; name a schema for TokenGrid's tables (e.g. ?schema=tokengrid)`);
    }
    this.schema = schema;
    this.where = redactUrl(url);
    this.pool = new pg.Pool({
      connectionString: url,
      max: o.max ?? 10,
      connectionTimeoutMillis: o.connectTimeoutMs ?? 5000,
      statement_timeout: o.statementTimeoutMs ?? 5000,
      idle_in_transaction_session_timeout: Math.max(10_000, (o.statementTimeoutMs ?? 5000) * 4),
      options: `-c search_path=${schema}`,
      application_name: 'tokengrid',
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID ? int8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // An idle connection that dies (server restart) must not crash the process; the next query reconnects.
    // Every such error is counted (connectionErrors): the charging store drops its cache when the count moves.
    this.pool.on('error', () => {
      this.connectionErrors++;
    });
    // A checked-out connection (a transaction between its queries) that dies has no pool listener: without its own
    // 'error' listener the process would crash on a server restart (multi-node test). Its query rejects instead.
    this.pool.on('connect', (client) =>
      client.on('error', () => {
        this.connectionErrors++;
      }),
    );
  }

  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, params);
  }

  /** Runs `fn` in one transaction on one pooled connection (ROLLBACK on a throw). */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (error) {
      await c.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

/**
 * Opens the pool and checks the server answers (creating the schema when it is not `public` and missing).
 * Unreachable: one clear error naming the database (password redacted) and the driver's reason.
 */
export async function connectPostgres(url: string, o: PgOptions = {}): Promise<PgDb> {
  const db = new PgDb(url, o);
  try {
    // Created only when missing: a deployment's user may lack CREATE on the database once its schema exists.
    const found = await db.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [db.schema]);
    if (found.rowCount === 0) {
      // Under the migrations' lock: two nodes starting together would otherwise race in PostgreSQL's catalog
      // (CREATE SCHEMA IF NOT EXISTS run twice at once fails one of them with a unique violation).
      await db.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${db.schema}`);
      });
    }
  } catch (error) {
    await db.close().catch(() => {});
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseUnreachableError(
      `Cannot reach the PostgreSQL database ${db.where}: ${reason}. Check TOKENGRID_DATABASE_URL (or storage.databaseUrl in the config file), that the server runs and accepts this user.`,
    );
  }
  return db;
}
