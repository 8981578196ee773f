/**
 * The one migration runner of every SQLite store in the shared `tokengrid.db`. Each store declares an
 * append-only list of steps (SQL text, or a function for a step SQL alone cannot do, such as a backfill) and
 * records the versions it applied in its own `<store>_migrations` table; each step runs in its own
 * transaction with its version row, so a crash leaves a store at a whole version. Steps are never edited once
 * released: a change is a new step. Safe to call at every start (nothing to do is one read).
 */
import type { Database } from 'better-sqlite3';

export type MigrationStep = string | ((db: Database) => void);

export interface StoreSchema {
  /** Table prefix of the store: versions live in `<store>_migrations`. */
  store: string;
  steps: readonly MigrationStep[];
}

const NAME = /^[a-z][a-z0-9_]*$/;

/** Bring one store's tables to its latest version; returns the versions applied now. */
export function runMigrations(db: Database, schema: StoreSchema): number[] {
  if (!NAME.test(schema.store)) throw new Error(`bad store name for migrations: ${schema.store}`);
  const table = `${schema.store}_migrations`;
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL) STRICT`);
  const current = (db.prepare(`SELECT COALESCE(MAX(version), 0) AS v FROM ${table}`).get() as { v: number }).v;
  const applied: number[] = [];
  schema.steps.forEach((step, i) => {
    const version = i + 1;
    if (version <= current) return;
    db.transaction(() => {
      if (typeof step === 'string') db.exec(step);
      else step(db);
      // Wall time here is only a note for operators; no store logic reads it.
      db.prepare(`INSERT INTO ${table} (version, applied_at_ms) VALUES (?, ?)`).run(version, Date.now());
    }).immediate();
    applied.push(version);
  });
  return applied;
}

/** The version a store's tables are at (0: never migrated). */
export function schemaVersion(db: Database, store: string): number {
  if (!NAME.test(store)) throw new Error(`bad store name for migrations: ${store}`);
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(`${store}_migrations`);
  if (exists === undefined) return 0;
  return (db.prepare(`SELECT COALESCE(MAX(version), 0) AS v FROM ${store}_migrations`).get() as { v: number }).v;
}
