import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type SqliteDb = Database.Database;

/**
 * Open the embedded database. WAL + synchronous=NORMAL: a committed transaction survives a process crash
 * (kill -9) because it is in the WAL the OS already holds; only an OS crash or power loss can drop the last
 * commits. Set `durability: 'full'` to fsync every commit (survives power loss, slower).
 *
 * `exclusive`: this connection is the only one (the gateway, which owns its data folder, see lockDataDir):
 * SQLite then takes its file locks once and keeps the WAL index in heap memory instead of a shared-memory
 * file, which saves the lock and shm work of every transaction (about a quarter of a reserve + settle pair at
 * concurrency 1 here: `bench/charging-bench.ts`). No other process can read the file while it is open.
 */
export function openSqlite(path: string, opts: { durability?: 'normal' | 'full'; exclusive?: boolean } = {}): SqliteDb {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // Before the first WAL access, so no shared-memory wal-index is ever created.
  if (opts.exclusive === true) db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Checkpoint the WAL every ~40 MB instead of SQLite's 4 MB default: a checkpoint runs on the event loop
  // (better-sqlite3 is synchronous), so fewer of them touch fewer requests. What used to make one slow, the
  // fsync of every frame written since the last one (17 to 25 ms for 40 MB here), the app's WalFlusher now does
  // in the background (wal-flusher.ts).
  db.pragma('wal_autocheckpoint = 10000');
  return db;
}

/** Lock files this process holds (to tell a second open in this process from a stale lock carrying our pid). */
const heldHere = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One TokenGrid process per data folder: the charging store keeps reservations (holds) in memory, so a second
 * process on the same database could hand out the same balance. Takes `tokengrid.lock` (the owner's pid); a lock
 * left by a process that no longer runs (kill -9, power loss) is taken over. Returns the release function.
 */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'tokengrid.lock');
  // Our own pid in a lock we do not hold: a previous incarnation with the same pid (a container restarted
  // with the gateway as pid 1), not a live owner.
  const ownerIsUs = (pid: number): boolean => pid === process.pid && heldHere.has(path);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      heldHere.add(path);
      return () => {
        if (!heldHere.delete(path)) return;
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      let text = '';
      try {
        text = readFileSync(path, 'utf8').trim();
      } catch {
        /* removed meanwhile */
      }
      const pid = Number(text);
      if (Number.isInteger(pid) && pid > 0 && (pid === process.pid ? ownerIsUs(pid) : processAlive(pid))) {
        throw new Error(
          `The data folder ${dir} is in use by process ${pid}. One TokenGrid process serves one data folder (reservations ` +
            `are kept in memory); stop that process or point TOKENGRID_DATA_DIR at another folder. If no TokenGrid runs there, delete ${path}.`,
        );
      }
      try {
        unlinkSync(path);
      } catch {
        /* removed meanwhile */
      }
    }
  }
}
