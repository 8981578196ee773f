import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../core/index.ts';
import { generateApiKey, hashApiKey, type ApiKeyRecord } from '../accounts/index.ts';
import { KeySnapshot } from './key-snapshot.ts';

const rnd = new SeededRandom(7);
const record = (key: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id: `key_${key.slice(3, 9)}`,
  accountId: 'acct_1',
  memberId: null,
  name: 'k',
  hash: hashApiKey(key),
  prefix: key.slice(0, 10),
  allowedModels: null,
  expiresAtMs: null,
  revokedAtMs: null,
  limits: {},
  createdAtMs: 0,
  ...over,
});

test('a key presented again (remembered by its string) authenticates exactly as the first time', () => {
  const ok1 = generateApiKey(rnd);
  const ok2 = generateApiKey(rnd);
  const revoked = generateApiKey(rnd);
  const expiring = generateApiKey(rnd);
  const suspended = generateApiKey(rnd);
  const records = [
    record(ok1),
    record(ok2),
    record(revoked, { revokedAtMs: 500 }),
    record(expiring, { expiresAtMs: 2000 }),
    record(suspended, { accountId: 'acct_2' }),
  ];
  const presented = [ok1, ok2, revoked, expiring, suspended, generateApiKey(rnd), 'tg-short', '', undefined, `${ok1}x`];
  const snap = new KeySnapshot();
  snap.replace(records, ['acct_1']);
  for (const nowMs of [1000, 1999, 2000, 3000]) {
    for (const p of presented) {
      // A fresh snapshot takes the hash path; `snap` remembers the keys it saw.
      const fresh = new KeySnapshot();
      fresh.replace(records, ['acct_1']);
      const expected = fresh.authenticate(p, nowMs);
      assert.deepEqual(snap.authenticate(p, nowMs), expected, `${p} at ${nowMs}`);
      assert.deepEqual(snap.authenticate(p, nowMs), expected, `${p} at ${nowMs}, again`);
    }
  }
  const first = snap.authenticate(ok1, 1000);
  assert.ok(first.ok && first.key.id === records[0]!.id);
  const second = snap.authenticate(ok2, 1000);
  assert.ok(second.ok && second.key.id === records[1]!.id);
  const late = snap.authenticate(expiring, 2500);
  assert.equal(!late.ok && late.code, 'api_key_expired', 'expiry is checked on every request, also for a remembered key');
  assert.equal(snap.presentedCached, 5, 'only the keys that matched a record are remembered');
});

test('a revocation or a suspension in a new snapshot applies to the next request of a remembered key', () => {
  const key = generateApiKey(rnd);
  const snap = new KeySnapshot();
  snap.replace([record(key)], ['acct_1']);
  assert.equal(snap.authenticate(key, 1000).ok, true);
  assert.equal(snap.authenticate(key, 1000).ok, true);
  snap.replace([record(key, { revokedAtMs: 1000 })], ['acct_1']);
  const r = snap.authenticate(key, 1000);
  assert.equal(!r.ok && r.code, 'api_key_revoked');
  assert.equal(!r.ok && r.message, 'This API key was revoked.');
  snap.replace([record(key)], []);
  const s = snap.authenticate(key, 1000);
  assert.equal(!s.ok && s.message, 'The account of this API key is suspended or closed.');
  snap.replace([], ['acct_1']);
  const gone = snap.authenticate(key, 1000);
  assert.equal(!gone.ok && gone.code, 'invalid_api_key', 'a key deleted from the snapshot is unknown at once');
  const changed = record(key, { allowedModels: ['m'] });
  snap.replace([changed], ['acct_1']);
  const c = snap.authenticate(key, 1000);
  assert.ok(c.ok && c.key.allowedModels?.[0] === 'm', 'the new snapshot record is returned, not the old one');
});

test('invalid keys are never remembered: the map is bounded by the snapshot', () => {
  const key = generateApiKey(rnd);
  const snap = new KeySnapshot();
  snap.replace([record(key)], ['acct_1']);
  for (let i = 0; i < 2000; i++) assert.equal(snap.authenticate(generateApiKey(rnd), 1000).ok, false);
  assert.equal(snap.presentedCached, 0);
  snap.authenticate(key, 1000);
  snap.authenticate(` ${key}`, 1000);
  assert.equal(snap.presentedCached, 1);
  assert.ok(snap.presentedCached <= snap.size);
});
