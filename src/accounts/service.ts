import { err, ok, type Clock, type IdGenerator, type Random, type Result } from '../core/index.ts';
import { displayPrefix, generateApiKey, hashApiKey } from './keys.ts';
import type { Account, AccountKind, AccountStore, ApiKeyRecord, KeyLimits, Member, MemberRole } from './types.ts';

export interface AccountDeps {
  store: AccountStore;
  clock: Clock;
  ids: IdGenerator;
  random: Random;
  /** Called (and awaited) after any key change so the hot-path snapshot is fresh before the change is answered. */
  onKeysChanged?: () => void | Promise<void>;
}

export async function createAccount(
  deps: AccountDeps,
  input: { name: string; kind?: AccountKind; parentId?: string | null; id?: string },
): Promise<Result<Account, 'invalid_request' | 'not_found' | 'conflict'>> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 200) return err('invalid_request', 'name must be 1 to 200 characters');
  if (input.parentId) {
    const parent = await deps.store.getAccount(input.parentId);
    if (!parent) return err('not_found', `parent account ${input.parentId} does not exist`);
  }
  if (input.id !== undefined && (await deps.store.getAccount(input.id))) return err('conflict', `account ${input.id} already exists`);
  const account: Account = {
    id: input.id ?? deps.ids.next('acct'),
    name,
    kind: input.kind ?? 'individual',
    parentId: input.parentId ?? null,
    status: 'active',
    createdAtMs: deps.clock.nowMs(),
  };
  await deps.store.insertAccount(account);
  return ok(account);
}

export async function addMember(
  deps: AccountDeps,
  input: { accountId: string; name: string; role?: MemberRole },
): Promise<Result<Member, 'invalid_request' | 'not_found'>> {
  const account = await deps.store.getAccount(input.accountId);
  if (!account) return err('not_found', `account ${input.accountId} does not exist`);
  const name = input.name.trim();
  if (name.length === 0 || name.length > 200) return err('invalid_request', 'name must be 1 to 200 characters');
  const member: Member = { id: deps.ids.next('mem'), accountId: account.id, name, role: input.role ?? 'member', createdAtMs: deps.clock.nowMs() };
  await deps.store.insertMember(member);
  return ok(member);
}

export interface CreatedKey {
  /** The secret, shown once. */
  key: string;
  record: ApiKeyRecord;
}

export async function createApiKey(
  deps: AccountDeps,
  input: {
    accountId: string;
    memberId?: string | null;
    name?: string;
    allowedModels?: string[] | null;
    expiresAtMs?: number | null;
    limits?: KeyLimits;
    secret?: string;
    /** The key that mints this one (self-service); the record keeps that key's root. */
    parent?: ApiKeyRecord;
  },
): Promise<Result<CreatedKey, 'invalid_request' | 'not_found'>> {
  const account = await deps.store.getAccount(input.accountId);
  if (!account) return err('not_found', `account ${input.accountId} does not exist`);
  if (account.status !== 'active') return err('invalid_request', `account ${input.accountId} is ${account.status}`);
  if (input.memberId) {
    const member = await deps.store.getMember(input.memberId);
    if (!member || member.accountId !== account.id) return err('not_found', `member ${input.memberId} does not belong to account ${account.id}`);
  }
  if (input.expiresAtMs != null && input.expiresAtMs <= deps.clock.nowMs()) return err('invalid_request', 'expiresAt must be in the future');
  const key = input.secret ?? generateApiKey(deps.random);
  const record: ApiKeyRecord = {
    id: deps.ids.next('key'),
    accountId: account.id,
    memberId: input.memberId ?? null,
    name: input.name ?? 'default',
    hash: hashApiKey(key),
    prefix: displayPrefix(key),
    allowedModels: input.allowedModels ?? null,
    expiresAtMs: input.expiresAtMs ?? null,
    revokedAtMs: null,
    limits: input.limits ?? {},
    createdAtMs: deps.clock.nowMs(),
  };
  if (input.parent !== undefined) {
    record.parentKeyId = input.parent.parentKeyId ?? input.parent.id;
    record.mintedByKeyId = input.parent.id;
  }
  await deps.store.insertKey(record);
  await deps.onKeysChanged?.();
  return ok({ key, record });
}

/**
 * Revoke a key and every key minted from it (children record their root key, so one pass over the account's
 * keys finds them all: issue 12, finding N1). Every caller (admin, self-service) comes through here. The
 * children are revoked even when the key itself already was (a retry after a partial revocation completes it).
 */
export async function revokeApiKey(deps: AccountDeps, keyId: string): Promise<Result<ApiKeyRecord, 'not_found'>> {
  const record = await deps.store.getKey(keyId);
  if (!record) return err('not_found', `key ${keyId} does not exist`);
  const nowMs = deps.clock.nowMs();
  let changed = false;
  if (record.revokedAtMs === null) {
    record.revokedAtMs = nowMs;
    await deps.store.updateKey(record);
    changed = true;
  }
  // Descendants: keys whose root is this key, and (for a middle key) the keys it minted, transitively.
  const gone = new Set([keyId]);
  const keys = await deps.store.listKeys(record.accountId);
  for (let grew = true; grew; ) {
    grew = false;
    for (const k of keys) {
      if (gone.has(k.id)) continue;
      if ((k.parentKeyId !== undefined && gone.has(k.parentKeyId)) || (k.mintedByKeyId !== undefined && gone.has(k.mintedByKeyId))) {
        gone.add(k.id);
        grew = true;
        if (k.revokedAtMs === null) {
          k.revokedAtMs = nowMs;
          await deps.store.updateKey(k);
          changed = true;
        }
      }
    }
  }
  if (changed) await deps.onKeysChanged?.();
  return ok(record);
}
