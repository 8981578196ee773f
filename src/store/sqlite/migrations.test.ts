import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqlite } from './db.ts';
import { runMigrations, schemaVersion } from './migrations.ts';
import { openSqliteBillingStore } from './billing-store.ts';
import { openSqliteChargingStore } from './charging-store.ts';
import { openSqliteAccountStore } from './accounts-store.ts';
import { openSqliteAuditStore } from './audit-store.ts';

test('steps apply once, in order, each with its version; a later start applies only the new ones', () => {
  const db = openSqlite(':memory:');
  const v1 = 'CREATE TABLE t (a INTEGER)';
  assert.deepEqual(runMigrations(db, { store: 'demo', steps: [v1] }), [1]);
  assert.deepEqual(runMigrations(db, { store: 'demo', steps: [v1] }), [], 'nothing to do the second time');
  const backfill = (d: typeof db): void => {
    d.prepare('INSERT INTO t (a, b) VALUES (1, 2)').run();
  };
  assert.deepEqual(runMigrations(db, { store: 'demo', steps: [v1, 'ALTER TABLE t ADD COLUMN b INTEGER', backfill] }), [2, 3]);
  assert.equal(schemaVersion(db, 'demo'), 3);
  assert.deepEqual(db.prepare('SELECT a, b FROM t').get(), { a: 1, b: 2 });
});

test('a failing step leaves the store at the last whole version and applies nothing of itself', () => {
  const db = openSqlite(':memory:');
  const bad = (d: typeof db): void => {
    d.exec('CREATE TABLE half (x INTEGER)');
    throw new Error('boom');
  };
  assert.throws(() => runMigrations(db, { store: 'demo', steps: ['CREATE TABLE t (a INTEGER)', bad] }), /boom/);
  assert.equal(schemaVersion(db, 'demo'), 1);
  assert.equal((db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half'").get() as { n: number }).n, 0, 'the failed step rolled back');
});

test('every SQLite store migrates through the one runner, and a second open changes nothing', () => {
  const db = openSqlite(':memory:');
  openSqliteChargingStore(db);
  openSqliteBillingStore(db);
  openSqliteAccountStore(db);
  openSqliteAuditStore(db);
  const versions = {
    charging: schemaVersion(db, 'charging'),
    billing: schemaVersion(db, 'billing'),
    accounts: schemaVersion(db, 'accounts'),
    audit: schemaVersion(db, 'audit'),
  };
  assert.ok(
    Object.values(versions).every((v) => v >= 1),
    JSON.stringify(versions),
  );
  openSqliteBillingStore(db);
  openSqliteAccountStore(db);
  assert.deepEqual(
    {
      charging: schemaVersion(db, 'charging'),
      billing: schemaVersion(db, 'billing'),
      accounts: schemaVersion(db, 'accounts'),
      audit: schemaVersion(db, 'audit'),
    },
    versions,
  );
});

test('a billing database made before the runner existed (tables, no version table) opens at the latest version', () => {
  const db = openSqlite(':memory:');
  openSqliteBillingStore(db);
  const latest = schemaVersion(db, 'billing');
  db.exec('DROP TABLE billing_migrations');
  openSqliteBillingStore(db);
  // V1 and V2 are IF NOT EXISTS: running them again over the existing tables is harmless.
  assert.equal(schemaVersion(db, 'billing'), latest);
  assert.equal(latest, 2, 'V1 tables + V2 account versions (billing as decide/apply)');
});
