import type { ModelMap } from '../catalog/index.ts';
import { checkApiKey, checkKeyStatus, hashApiKey, looksLikeApiKey, type ApiKeyRecord, type KeyCheck, type KeyLimits } from '../accounts/index.ts';

/**
 * The hot path reads keys from an immutable in-memory snapshot (habit 3), indexed by hash, swapped whole
 * when keys change. Authentication never touches storage.
 */
const NO_LIMITS: KeyLimits = Object.freeze({});

/** What an account's package (and operator overrides) set for routing: its QoS class and its residency pin. */
export interface AccountRouting {
  qos?: 'priority' | 'standard' | 'best_effort';
  regions?: readonly string[];
}

export class KeySnapshot {
  #byHash = new Map<string, ApiKeyRecord>();
  /**
   * The keys presented since the last replace() that matched a record of this snapshot, by the presented
   * string: a client that sends the same key again skips the sha256 and the constant-time compare. Only
   * keys that matched are added, so the map never holds more entries than the snapshot has keys (random
   * invalid keys add nothing); replace() drops it with the snapshot, so a revoked key or a suspended account
   * takes effect exactly as without it. Revocation, expiry and the account's status are still checked on
   * every request, on the same record the hash lookup returns.
   */
  #byPresented = new Map<string, ApiKeyRecord>();
  #activeAccounts = new Set<string>();
  #accountLimits = new Map<string, KeyLimits>();
  #modelMaps = new Map<string, ModelMap>();
  #packageModels = new Map<string, readonly string[]>();
  #features = new Map<string, ReadonlySet<string>>();
  #routing = new Map<string, AccountRouting>();

  /**
   * Swap in a new snapshot. accountLimits are the limits of each account's plan (shared by all its keys);
   * a key's own limits apply on top of them.
   */
  replace(
    keys: readonly ApiKeyRecord[],
    activeAccountIds: Iterable<string>,
    accountLimits: ReadonlyMap<string, KeyLimits> = new Map(),
    modelMaps: ReadonlyMap<string, ModelMap> = new Map(),
    packageModels: ReadonlyMap<string, readonly string[]> = new Map(),
    features: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
    routing: ReadonlyMap<string, AccountRouting> = new Map(),
  ): void {
    const next = new Map<string, ApiKeyRecord>();
    for (const k of keys) next.set(k.hash, Object.freeze({ ...k }));
    this.#byHash = next;
    this.#byPresented = new Map();
    this.#activeAccounts = new Set(activeAccountIds);
    this.#accountLimits = new Map(accountLimits);
    this.#modelMaps = new Map(modelMaps);
    this.#packageModels = new Map(packageModels);
    this.#features = new Map(features);
    this.#routing = new Map(routing);
  }

  /** The account's QoS class and residency pin (absent: standard, anywhere). */
  routing(accountId: string): AccountRouting | undefined {
    return this.#routing.get(accountId);
  }

  /** The models (ids, group names) an account's allowance still pays for; undefined: all of them. */
  packageModels(accountId: string): readonly string[] | undefined {
    return this.#packageModels.get(accountId);
  }

  /** Does the account have a feature switched on by a live add-on (entitlements' features, e.g. security_pack)? */
  hasFeature(accountId: string, feature: string): boolean {
    return this.#features.get(accountId)?.has(feature) === true;
  }

  /** The model mapping of an account's package (its plan offer's modelMap), if it has one. */
  modelMap(accountId: string): ModelMap | undefined {
    return this.#modelMaps.get(accountId);
  }

  /** The plan-level limits of an account (empty when its plan sets none). */
  accountLimits(accountId: string): KeyLimits {
    return this.#accountLimits.get(accountId) ?? NO_LIMITS;
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** How many presented keys are remembered (at most `size`; for tests). */
  get presentedCached(): number {
    return this.#byPresented.size;
  }

  /**
   * Is a key that authenticated earlier still good now (running streams check at each extension: issue 12,
   * finding 6)? Reads the current snapshot: a key revoked or removed, expired, or whose account was suspended
   * fails. No hashing: the record's own hash is the index.
   */
  recheck(key: ApiKeyRecord, nowMs: number): KeyCheck {
    const current = this.#byHash.get(key.hash);
    if (current === undefined) return { ok: false, code: 'api_key_revoked', message: 'This API key was revoked.' };
    const check = checkKeyStatus(current, nowMs);
    if (check.ok && !this.#activeAccounts.has(current.accountId)) {
      return { ok: false, code: 'api_key_revoked', message: 'The account of this API key is suspended or closed.' };
    }
    return check;
  }

  authenticate(presented: string | undefined, nowMs: number): KeyCheck {
    if (!presented || !looksLikeApiKey(presented)) {
      return {
        ok: false,
        code: 'invalid_api_key',
        message: presented ? 'Incorrect API key provided.' : 'No API key provided. Send it as "Authorization: Bearer tg-..." (or x-api-key).',
      };
    }
    let check: KeyCheck;
    const known = this.#byPresented.get(presented);
    if (known !== undefined) {
      check = checkKeyStatus(known, nowMs);
    } else {
      const hash = hashApiKey(presented);
      const record = this.#byHash.get(hash);
      check = checkApiKey(hash, record, nowMs);
      // A record that matched (whatever its status): the presented string is that key's, for this snapshot.
      if (record !== undefined && (check.ok || check.code !== 'invalid_api_key')) this.#byPresented.set(presented, record);
    }
    if (check.ok && !this.#activeAccounts.has(check.key.accountId)) {
      return { ok: false, code: 'api_key_revoked', message: 'The account of this API key is suspended or closed.' };
    }
    return check;
  }
}
