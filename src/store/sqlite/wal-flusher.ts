/**
 * Background flushing of the WAL file, so that checkpoints do not stall the event loop.
 *
 * better-sqlite3 is synchronous: a checkpoint runs on the event loop, inside the commit that crosses
 * `wal_autocheckpoint`, and it starts by fsyncing the WAL. With synchronous=NORMAL nothing else syncs the WAL,
 * so that fsync has to push to disk every frame written since the previous checkpoint (up to ~40 MB at our
 * setting: 17 to 25 ms here, measured with a 40 MB write + fdatasync), and every request in flight waits for
 * it. This flusher starts an fdatasync of the WAL on libuv's thread pool after commits (at most one at a time,
 * at most one every `minIntervalMs`, and only once `minCommits` commits were made since the last one), so by
 * the time a checkpoint comes the WAL is already on disk and its fsync has almost nothing left to do. It
 * changes no durability guarantee: it only does early, off the event loop, a flush SQLite would do anyway.
 *
 * Why both bounds: one request at a time commits ~2,000 times a second (a few frames each), a loaded server
 * ~250 times (a group commit of ~30 settles each). Time alone (one flush per 20 ms) flushed up to 50 times a
 * second under load, and each start wakes a pool thread which, when the process shares one core, preempts
 * the event loop: the fdatasync call was 1.2 % of the main thread's busy time in a profile at 64
 * connections, 0.4 % with the commit bound (bench/README.md, round 5). Sixteen group commits of ~30 settles
 * write about a megabyte of frames at most, about half a millisecond for the checkpoint's own fsync at the
 * rate above (40 MB in 17 to 25 ms). One request at a time is unchanged (the 20 ms bound binds there).
 *
 * The WAL is opened with a separate descriptor. Closing it cannot drop SQLite's POSIX locks: SQLite locks the
 * database file (and, outside exclusive locking mode, the shared-memory file), never the WAL file.
 */
import { closeSync, fdatasync, openSync } from 'node:fs';

export interface WalFlusherOptions {
  /** At most one fdatasync started per this many milliseconds (default 20). */
  minIntervalMs?: number;
  /** No fdatasync started before this many commits since the last start (default 16). */
  minCommits?: number;
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
  /** Called once when a flush fails; the flusher then stops (SQLite's own syncs still run and report errors). */
  onError?: (error: Error) => void;
}

export class WalFlusher {
  readonly #path: string;
  readonly #minIntervalMs: number;
  readonly #minCommits: number;
  readonly #now: () => number;
  readonly #onError: (error: Error) => void;
  #fd: number | null = null;
  #inFlight = false;
  #stopped = false;
  #lastStartMs = -Infinity;
  #commits = 0;
  #flushes = 0;

  constructor(walPath: string, o: WalFlusherOptions = {}) {
    this.#path = walPath;
    this.#minIntervalMs = o.minIntervalMs ?? 20;
    this.#minCommits = o.minCommits ?? 16;
    this.#now = o.now ?? (() => performance.now());
    this.#onError = o.onError ?? (() => undefined);
  }

  /** Flushes completed so far. */
  get flushes(): number {
    return this.#flushes;
  }

  /** A flush is running (tests wait for it to end rather than for a fixed time). */
  get busy(): boolean {
    return this.#inFlight;
  }

  /**
   * After a commit: start a background fdatasync of the WAL unless one is running, one started too recently,
   * or too few commits were made since.
   */
  kick(): void {
    if (this.#stopped) return;
    this.#commits++;
    if (this.#inFlight || this.#commits < this.#minCommits) return;
    const t = this.#now();
    if (t - this.#lastStartMs < this.#minIntervalMs) return;
    // Set before the open, so a WAL that cannot be opened is retried once per interval, not after every commit.
    this.#lastStartMs = t;
    this.#commits = 0;
    if (this.#fd === null) {
      try {
        this.#fd = openSync(this.#path, 'r');
      } catch {
        return; // no WAL yet (nothing committed through it): nothing to flush
      }
    }
    this.#inFlight = true;
    fdatasync(this.#fd, (error) => {
      this.#inFlight = false;
      if (error !== null) {
        this.#stop();
        this.#onError(error);
        return;
      }
      this.#flushes++;
      if (this.#stopped) this.#closeFd();
    });
  }

  /** Stop flushing; the descriptor closes once no flush is running. Call after the database is closed. */
  close(): void {
    this.#stop();
  }

  #stop(): void {
    this.#stopped = true;
    if (!this.#inFlight) this.#closeFd();
  }

  #closeFd(): void {
    if (this.#fd === null) return;
    try {
      closeSync(this.#fd);
    } catch {
      /* already closed */
    }
    this.#fd = null;
  }
}
