import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WalFlusher } from './wal-flusher.ts';
import { openSqlite } from './db.ts';

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));
let current: WalFlusher | undefined;
/** Wait until the flusher under test has no flush running (however slow the disk or the machine is). */
const settle = async (): Promise<void> => {
  await tick();
  while (current?.busy === true) await tick();
};

/** Run `fn` with a fresh temp folder, removed afterwards whatever happens. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-walflush-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a kick flushes the WAL in the background, one flush at a time, at most one per interval', () =>
  inTempDir(async (dir) => {
    const wal = join(dir, 'x.db-wal');
    writeFileSync(wal, Buffer.alloc(8192, 1));
    let now = 0;
    const f = (current = new WalFlusher(wal, { minIntervalMs: 20, minCommits: 1, now: () => now }));
    f.kick();
    f.kick(); // one is running: ignored
    await settle();
    assert.equal(f.flushes, 1);
    f.kick(); // same instant as the first start: too soon
    await settle();
    assert.equal(f.flushes, 1);
    now = 25;
    f.kick();
    await settle();
    assert.equal(f.flushes, 2);
    f.close();
    now = 100;
    f.kick(); // closed: nothing
    await settle();
    assert.equal(f.flushes, 2);
  }));

test('a flush waits for minCommits commits since the last one started, however long ago that was', () =>
  inTempDir(async (dir) => {
    const wal = join(dir, 'x.db-wal');
    writeFileSync(wal, Buffer.alloc(8192, 1));
    let now = 0;
    const f = (current = new WalFlusher(wal, { minIntervalMs: 20, minCommits: 3, now: () => now }));
    f.kick();
    f.kick();
    now = 1000;
    await settle();
    assert.equal(f.flushes, 0); // two commits: not yet, though the interval passed long ago
    f.kick();
    await settle();
    assert.equal(f.flushes, 1); // the third
    now = 2000;
    f.kick();
    f.kick();
    await settle();
    assert.equal(f.flushes, 1); // counting starts again from the last start
    f.kick();
    await settle();
    assert.equal(f.flushes, 2);
    f.close();
  }));

test('no WAL file yet: a kick does nothing and a later kick finds the file', () =>
  inTempDir(async (dir) => {
    const wal = join(dir, 'x.db-wal');
    let now = 0;
    const f = (current = new WalFlusher(wal, { minIntervalMs: 0, minCommits: 1, now: () => now++ }));
    f.kick();
    await settle();
    assert.equal(f.flushes, 0);
    writeFileSync(wal, 'frames');
    f.kick();
    await settle();
    assert.equal(f.flushes, 1);
    f.close();
  }));

test('flushing the WAL of an open exclusive-mode database leaves it readable and writable', () =>
  inTempDir(async (dir) => {
    const path = join(dir, 'tokengrid.db');
    const db = openSqlite(path, { exclusive: true });
    db.exec('CREATE TABLE t (v INTEGER)');
    const f = (current = new WalFlusher(`${path}-wal`, { minIntervalMs: 0, minCommits: 1 }));
    for (let i = 0; i < 50; i++) {
      db.prepare('INSERT INTO t VALUES (?)').run(i);
      f.kick();
      if (i % 10 === 0) await settle();
    }
    await settle();
    assert.ok(f.flushes >= 5, `flushes ${f.flushes}`);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.prepare('INSERT INTO t VALUES (?)').run(50);
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 51);
    db.close();
    f.close();
    const again = openSqlite(path);
    assert.equal((again.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 51);
    again.close();
  }));

test('a WAL that cannot be opened is tried again once per interval, not after every commit', () =>
  inTempDir(async (dir) => {
    const wal = join(dir, 'x.db-wal');
    let now = 0;
    const f = (current = new WalFlusher(wal, { minIntervalMs: 20, minCommits: 1, now: () => now }));
    f.kick(); // fails to open
    writeFileSync(wal, 'frames');
    f.kick(); // same instant: not tried again yet
    await settle();
    assert.equal(f.flushes, 0);
    now = 20;
    f.kick();
    await settle();
    assert.equal(f.flushes, 1);
    f.close();
  }));
