import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type SqliteDb = Database.Database;

/**
 * Open the embedded database. WAL + synchronous=NORMAL: a committed transaction survives a process crash
 * (kill -9) because it is in the WAL the OS already holds; only an OS crash or power loss can drop the last
 * commits. Set `durability: 'full'` to fsync every commit (survives power loss, slower).
 */
export function openSqlite(path: string, opts: { durability?: 'normal' | 'full' } = {}): SqliteDb {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Checkpoint the WAL every ~40 MB instead of SQLite's 4 MB default: a checkpoint fsyncs and runs on the
  // event loop (better-sqlite3 is synchronous), so doing it 10x less often takes it out of most requests' p99.
  db.pragma('wal_autocheckpoint = 10000');
  return db;
}
