import { checkApiKey, hashApiKey, looksLikeApiKey, type ApiKeyRecord, type KeyCheck, type KeyLimits } from '../accounts/index.ts';

/**
 * The hot path reads keys from an immutable in-memory snapshot (habit 3), indexed by hash, swapped whole
 * when keys change. Authentication never touches storage.
 */
const NO_LIMITS: KeyLimits = Object.freeze({});

export class KeySnapshot {
  #byHash = new Map<string, ApiKeyRecord>();
  #activeAccounts = new Set<string>();
  #accountLimits = new Map<string, KeyLimits>();

  /**
   * Swap in a new snapshot. accountLimits are the limits of each account's plan (shared by all its keys);
   * a key's own limits apply on top of them.
   */
  replace(keys: readonly ApiKeyRecord[], activeAccountIds: Iterable<string>, accountLimits: ReadonlyMap<string, KeyLimits> = new Map()): void {
    const next = new Map<string, ApiKeyRecord>();
    for (const k of keys) next.set(k.hash, Object.freeze({ ...k }));
    this.#byHash = next;
    this.#activeAccounts = new Set(activeAccountIds);
    this.#accountLimits = new Map(accountLimits);
  }

  /** The plan-level limits of an account (empty when its plan sets none). */
  accountLimits(accountId: string): KeyLimits {
    return this.#accountLimits.get(accountId) ?? NO_LIMITS;
  }

  get size(): number {
    return this.#byHash.size;
  }

  authenticate(presented: string | undefined, nowMs: number): KeyCheck {
    if (!presented || !looksLikeApiKey(presented)) {
      return { ok: false, code: 'invalid_api_key', message: presented ? 'Incorrect API key provided.' : 'No API key provided. Send it as "Authorization: Bearer tg-..." (or x-api-key).' };
    }
    const hash = hashApiKey(presented);
    const check = checkApiKey(hash, this.#byHash.get(hash), nowMs);
    if (check.ok && !this.#activeAccounts.has(check.key.accountId)) {
      return { ok: false, code: 'api_key_revoked', message: 'The account of this API key is suspended or closed.' };
    }
    return check;
  }
}
