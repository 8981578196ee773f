/**
 * The AccountStore contract: every implementation (memory, SQLite, later PostgreSQL) runs this suite, so the
 * memory twin the unit tests use cannot promise what the real store does not keep (or the other way round).
 * It checks the port's own promises: what is stored comes back whole and as a copy, lists are ordered by id and
 * filtered as asked, an id or a key hash is never taken twice, a member or key belongs to an account that exists,
 * an update changes only what it may and never creates a row. Account policy (who may do what) belongs to the
 * accounts service's tests.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Account, AccountStore, ApiKeyRecord, Member } from '../../accounts/index.ts';

const T = Date.UTC(2026, 0, 1);

export function accountFixture(over: Partial<Account> = {}): Account {
  return { id: 'acct_1', name: 'Ada', kind: 'individual', parentId: null, status: 'active', createdAtMs: T, ...over };
}

export function memberFixture(over: Partial<Member> = {}): Member {
  return { id: 'mem_1', accountId: 'acct_1', name: 'Ada', role: 'owner', createdAtMs: T, ...over };
}

export function keyFixture(over: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: 'key_1',
    accountId: 'acct_1',
    memberId: null,
    name: 'laptop',
    hash: 'h1'.padEnd(64, '0'),
    prefix: 'tg-abc123',
    allowedModels: null,
    expiresAtMs: null,
    revokedAtMs: null,
    limits: {},
    createdAtMs: T,
    ...over,
  };
}

export function accountStoreContract(name: string, open: () => AccountStore): void {
  describe(`AccountStore contract: ${name}`, () => {
    test('an account comes back as stored, and an unknown id is undefined', async () => {
      const s = open();
      const a = accountFixture({ kind: 'family', status: 'suspended' });
      await s.insertAccount(a);
      assert.deepEqual(await s.getAccount('acct_1'), a);
      assert.equal(await s.getAccount('acct_missing'), undefined);
    });

    test('an operator residency pin (regions) comes back as stored, an update can set or clear it, and an account without one has none', async () => {
      const s = open();
      await s.insertAccount(accountFixture({ regions: ['cn-north', 'cn-east'] }));
      assert.deepEqual((await s.getAccount('acct_1'))?.regions, ['cn-north', 'cn-east']);
      await s.updateAccount(accountFixture());
      const cleared = await s.getAccount('acct_1');
      assert.ok(cleared !== undefined && !('regions' in cleared), 'no pin: the package decides');
      await s.updateAccount(accountFixture({ regions: ['eu-west'] }));
      assert.deepEqual((await s.listAccounts())[0]?.regions, ['eu-west']);
    });

    test('an account id is never taken twice', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await assert.rejects(s.insertAccount(accountFixture({ name: 'Other' })));
      assert.equal((await s.getAccount('acct_1'))?.name, 'Ada', 'the first account is kept');
    });

    test('accounts are listed ordered by id, and a parentId filter returns only that parent’s children', async () => {
      const s = open();
      await s.insertAccount(accountFixture({ id: 'acct_c', kind: 'team' }));
      await s.insertAccount(accountFixture({ id: 'acct_a', kind: 'team' }));
      await s.insertAccount(accountFixture({ id: 'acct_z', parentId: 'acct_c' }));
      await s.insertAccount(accountFixture({ id: 'acct_b', parentId: 'acct_c' }));
      await s.insertAccount(accountFixture({ id: 'acct_d', parentId: 'acct_a' }));
      assert.deepEqual(
        (await s.listAccounts()).map((a) => a.id),
        ['acct_a', 'acct_b', 'acct_c', 'acct_d', 'acct_z'],
      );
      assert.deepEqual(
        (await s.listAccounts({ parentId: 'acct_c' })).map((a) => a.id),
        ['acct_b', 'acct_z'],
      );
      assert.deepEqual(await s.listAccounts({ parentId: 'acct_none' }), []);
    });

    test('updateAccount changes name, kind, parent and status, and keeps the creation time', async () => {
      const s = open();
      await s.insertAccount(accountFixture({ id: 'acct_p', kind: 'team' }));
      await s.insertAccount(accountFixture());
      const changed = accountFixture({ name: 'Ada L.', kind: 'family', parentId: 'acct_p', status: 'closed' });
      await s.updateAccount(changed);
      assert.deepEqual(await s.getAccount('acct_1'), changed);
      await s.updateAccount({ ...changed, createdAtMs: T + 1 });
      assert.equal((await s.getAccount('acct_1'))?.createdAtMs, T, 'the creation time is not rewritten');
    });

    test('updateAccount of an unknown id creates nothing', async () => {
      const s = open();
      await s.updateAccount(accountFixture({ id: 'acct_ghost' })).catch(() => undefined);
      assert.equal(await s.getAccount('acct_ghost'), undefined);
      assert.deepEqual(await s.listAccounts(), []);
    });

    test('what a caller does to a returned or inserted object does not change the store', async () => {
      const s = open();
      const a = accountFixture();
      await s.insertAccount(a);
      a.name = 'changed after insert';
      const got = (await s.getAccount('acct_1'))!;
      got.status = 'closed';
      assert.deepEqual(await s.getAccount('acct_1'), accountFixture());
      const k = keyFixture({ allowedModels: ['gpt-4o'], limits: { requestsPerMinute: 5 } });
      await s.insertKey(k);
      k.allowedModels!.push('inserted-later');
      const gotKey = (await s.getKey('key_1'))!;
      gotKey.allowedModels!.push('returned-later');
      gotKey.limits.tokensPerMinute = 1;
      assert.deepEqual(await s.getKey('key_1'), keyFixture({ allowedModels: ['gpt-4o'], limits: { requestsPerMinute: 5 } }));
    });

    test('members come back as stored, listed per account ordered by id', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.insertAccount(accountFixture({ id: 'acct_2' }));
      await s.insertMember(memberFixture({ id: 'mem_b', role: 'member' }));
      await s.insertMember(memberFixture({ id: 'mem_a', role: 'admin' }));
      await s.insertMember(memberFixture({ id: 'mem_c', accountId: 'acct_2' }));
      assert.deepEqual(await s.getMember('mem_a'), memberFixture({ id: 'mem_a', role: 'admin' }));
      assert.equal(await s.getMember('mem_missing'), undefined);
      assert.deepEqual(
        (await s.listMembers('acct_1')).map((m) => m.id),
        ['mem_a', 'mem_b'],
      );
      assert.deepEqual(await s.listMembers('acct_none'), []);
    });

    test('a member id is never taken twice, and a member needs an existing account', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.insertMember(memberFixture());
      await assert.rejects(s.insertMember(memberFixture({ name: 'Other' })));
      assert.equal((await s.getMember('mem_1'))?.name, 'Ada');
      await assert.rejects(s.insertMember(memberFixture({ id: 'mem_2', accountId: 'acct_missing' })));
      assert.equal(await s.getMember('mem_2'), undefined);
    });

    test('a key comes back as stored: allow-list, expiry, revocation and limits included', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.insertMember(memberFixture());
      const full = keyFixture({
        memberId: 'mem_1',
        allowedModels: ['gpt-4o', 'group:cheap'],
        expiresAtMs: T + 86_400_000,
        revokedAtMs: T + 1,
        limits: { requestsPerMinute: 60, tokensPerMinute: 10_000, concurrentRequests: 2 },
      });
      await s.insertKey(full);
      assert.deepEqual(await s.getKey('key_1'), full);
      const bare = keyFixture({ id: 'key_2', hash: 'h2'.padEnd(64, '0'), allowedModels: [] });
      await s.insertKey(bare);
      assert.deepEqual(await s.getKey('key_2'), bare, 'an empty allow-list stays empty (it is not "every model")');
      assert.equal(await s.getKey('key_missing'), undefined);
    });

    test('a minted key keeps the root key it descends from, through updates; a root key has none', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.insertKey(keyFixture());
      const child = keyFixture({ id: 'key_2', hash: 'h2'.padEnd(64, '0'), parentKeyId: 'key_1', mintedByKeyId: 'key_1' });
      await s.insertKey(child);
      assert.deepEqual(await s.getKey('key_2'), child);
      assert.equal((await s.getKey('key_1'))?.parentKeyId, undefined, 'a root key records no parent');
      await s.updateKey({ ...child, revokedAtMs: T + 1, parentKeyId: 'key_other', mintedByKeyId: 'key_other' });
      assert.deepEqual(await s.getKey('key_2'), { ...child, revokedAtMs: T + 1 }, 'the parent is fixed at insert');
      assert.deepEqual(
        (await s.listKeys('acct_1')).filter((k) => k.parentKeyId === 'key_1').map((k) => k.id),
        ['key_2'],
      );
    });

    test('a key id and a key hash are never taken twice', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.insertKey(keyFixture());
      await assert.rejects(s.insertKey(keyFixture({ id: 'key_2' })), 'same hash, other id');
      await assert.rejects(s.insertKey(keyFixture({ hash: 'h2'.padEnd(64, '0') })), 'same id, other hash');
      assert.deepEqual(
        (await s.listKeys()).map((k) => k.id),
        ['key_1'],
      );
      assert.deepEqual(await s.getKey('key_1'), keyFixture());
    });

    test('a key needs an existing account', async () => {
      const s = open();
      await assert.rejects(s.insertKey(keyFixture({ accountId: 'acct_missing' })));
      assert.equal(await s.getKey('key_1'), undefined);
    });

    test('keys are listed ordered by id, all of them or one account’s', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.insertAccount(accountFixture({ id: 'acct_2' }));
      await s.insertKey(keyFixture({ id: 'key_c', hash: 'hc'.padEnd(64, '0') }));
      await s.insertKey(keyFixture({ id: 'key_a', hash: 'ha'.padEnd(64, '0'), accountId: 'acct_2' }));
      await s.insertKey(keyFixture({ id: 'key_b', hash: 'hb'.padEnd(64, '0') }));
      assert.deepEqual(
        (await s.listKeys()).map((k) => k.id),
        ['key_a', 'key_b', 'key_c'],
      );
      assert.deepEqual(
        (await s.listKeys('acct_1')).map((k) => k.id),
        ['key_b', 'key_c'],
      );
      assert.deepEqual(await s.listKeys('acct_none'), []);
    });

    test('updateKey changes name, allow-list, expiry, revocation and limits; owner, hash, prefix and creation stay', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.insertAccount(accountFixture({ id: 'acct_2' }));
      await s.insertKey(keyFixture({ allowedModels: ['gpt-4o'], limits: { requestsPerMinute: 5 } }));
      const changed = keyFixture({
        name: 'renamed',
        allowedModels: null,
        expiresAtMs: T + 10,
        revokedAtMs: T + 5,
        limits: { concurrentRequests: 1 },
      });
      await s.updateKey(changed);
      assert.deepEqual(await s.getKey('key_1'), changed);
      await s.updateKey({ ...changed, accountId: 'acct_2', hash: 'hx'.padEnd(64, '0'), prefix: 'tg-other', createdAtMs: T + 99 });
      assert.deepEqual(await s.getKey('key_1'), changed, 'identity fields of a key are not rewritten by an update');
    });

    test('updateKey of an unknown id creates nothing', async () => {
      const s = open();
      await s.insertAccount(accountFixture());
      await s.updateKey(keyFixture({ id: 'key_ghost' })).catch(() => undefined);
      assert.equal(await s.getKey('key_ghost'), undefined);
      assert.deepEqual(await s.listKeys(), []);
    });
  });
}
