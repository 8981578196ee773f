import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom, constantTimeEqual } from '../core/index.ts';
import { checkApiKey, generateApiKey, hashApiKey, looksLikeApiKey, type ApiKeyRecord } from './index.ts';

const record = (key: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id: 'key_1',
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

test('a generated key is tg- prefixed, stored only as its hash, and checks out until revoked or expired', () => {
  const key = generateApiKey(new SeededRandom(1));
  assert.match(key, /^tg-[A-Za-z0-9_-]{32}$/);
  assert.ok(looksLikeApiKey(key));
  assert.notEqual(hashApiKey(key), key);
  assert.equal(checkApiKey(hashApiKey(key), record(key), 1000).ok, true);
  const other = generateApiKey(new SeededRandom(2));
  assert.deepEqual(checkApiKey(hashApiKey(other), record(key), 1000), { ok: false, code: 'invalid_api_key', message: 'Incorrect API key provided.' });
  assert.equal(checkApiKey(hashApiKey(key), undefined, 1000).ok, false);
  const revoked = checkApiKey(hashApiKey(key), record(key, { revokedAtMs: 500 }), 1000);
  assert.equal(!revoked.ok && revoked.code, 'api_key_revoked');
  const expired = checkApiKey(hashApiKey(key), record(key, { expiresAtMs: 1000 }), 1000);
  assert.equal(!expired.ok && expired.code, 'api_key_expired');
  assert.equal(checkApiKey(hashApiKey(key), record(key, { expiresAtMs: 1001 }), 1000).ok, true);
});

test('constant-time comparison is exact for equal and unequal lengths', () => {
  assert.equal(constantTimeEqual('abc', 'abc'), true);
  assert.equal(constantTimeEqual('abc', 'abd'), false);
  assert.equal(constantTimeEqual('abc', 'abcd'), false);
  assert.equal(constantTimeEqual('', ''), true);
});
