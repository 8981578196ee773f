import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountFixture, accountStoreContract, keyFixture } from '../contract/accounts-store.contract.ts';
import { openSqliteAccountStore } from './accounts-store.ts';
import { openSqlite } from './db.ts';
import { schemaVersion } from './migrations.ts';

accountStoreContract('sqlite', () => openSqliteAccountStore(openSqlite(':memory:')));

test('an accounts database at version 1 (no parent/minted-by columns) migrates to the latest and keeps its keys as root keys', async () => {
  const db = openSqlite(':memory:');
  const v1 = openSqliteAccountStore(db);
  await v1.insertAccount(accountFixture());
  await v1.insertKey(keyFixture());
  db.exec(
    'ALTER TABLE accounts DROP COLUMN regions; ALTER TABLE api_keys DROP COLUMN minted_by_key_id; ALTER TABLE api_keys DROP COLUMN parent_key_id; DELETE FROM accounts_migrations WHERE version >= 2;',
  );
  assert.equal(schemaVersion(db, 'accounts'), 1);
  const v2 = openSqliteAccountStore(db);
  assert.equal(schemaVersion(db, 'accounts'), 4);
  assert.deepEqual(await v2.getKey('key_1'), keyFixture(), 'an old key has no parent');
  await v2.insertKey(keyFixture({ id: 'key_2', hash: 'h2'.padEnd(64, '0'), parentKeyId: 'key_1', mintedByKeyId: 'key_1' }));
  assert.equal((await v2.getKey('key_2'))?.parentKeyId, 'key_1');
  assert.equal((await v2.getKey('key_2'))?.mintedByKeyId, 'key_1');
});

test("an account's residency pin (regions) is stored, updated and lifted; an account without one has none", async () => {
  const s = openSqliteAccountStore(openSqlite(':memory:'));
  await s.insertAccount(accountFixture());
  assert.deepEqual(await s.getAccount('acct_1'), accountFixture());
  await s.insertAccount(accountFixture({ id: 'acct_2', regions: ['cn-east'] }));
  assert.deepEqual((await s.getAccount('acct_2'))?.regions, ['cn-east']);
  await s.updateAccount(accountFixture({ regions: ['cn-east', 'cn-north'] }));
  assert.deepEqual((await s.listAccounts())[0]?.regions, ['cn-east', 'cn-north']);
  await s.updateAccount(accountFixture());
  assert.deepEqual(await s.getAccount('acct_1'), accountFixture(), 'lifted');
});
