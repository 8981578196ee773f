import { constantTimeEqual, sha256Hex, type Random } from '../core/index.ts';
import type { ApiKeyRecord } from './types.ts';

export const KEY_PREFIX = 'tg-';
const KEY_BODY_BYTES = 24;

/** A new secret key: `tg-` + 32 url-safe base64 characters (192 bits). */
export function generateApiKey(random: Random): string {
  return KEY_PREFIX + random.bytes(KEY_BODY_BYTES).toString('base64url');
}

export function hashApiKey(key: string): string {
  return sha256Hex(key);
}

export function displayPrefix(key: string): string {
  return key.slice(0, 10);
}

export function looksLikeApiKey(key: string): boolean {
  return key.startsWith(KEY_PREFIX) && key.length >= KEY_PREFIX.length + 16 && key.length <= 200;
}

export type KeyCheck = { ok: true; key: ApiKeyRecord } | { ok: false; code: 'invalid_api_key' | 'api_key_revoked' | 'api_key_expired'; message: string };

/**
 * Check a presented key (given as its hash, computed once by the caller) against the record found by that
 * hash. The lookup is by hash (so it leaks no timing about the stored secret), and the hash comparison is
 * constant-time all the same.
 */
export function checkApiKey(presentedHash: string, record: ApiKeyRecord | undefined, nowMs: number): KeyCheck {
  if (record === undefined || !constantTimeEqual(presentedHash, record.hash)) {
    return { ok: false, code: 'invalid_api_key', message: 'Incorrect API key provided.' };
  }
  return checkKeyStatus(record, nowMs);
}

/** The part of checkApiKey after the key was matched: revocation and expiry at `nowMs`. */
export function checkKeyStatus(record: ApiKeyRecord, nowMs: number): KeyCheck {
  if (record.revokedAtMs !== null && record.revokedAtMs <= nowMs) {
    return { ok: false, code: 'api_key_revoked', message: 'This API key was revoked.' };
  }
  if (record.expiresAtMs !== null && record.expiresAtMs <= nowMs) {
    return { ok: false, code: 'api_key_expired', message: `This API key expired at ${new Date(record.expiresAtMs).toISOString()}.` };
  }
  return { ok: true, key: record };
}
