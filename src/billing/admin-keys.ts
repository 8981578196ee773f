/**
 * Admin keys with roles: operator (everything), enterprise (only its accounts and their sub-accounts), finance
 * (read-only). Stored as sha256 hashes; checked against an in-memory snapshot (the HTTP shell's admin check is
 * synchronous), refreshed after every change.
 */
import { constantTimeEqual, ok, sha256Hex, type Clock, type IdGenerator, type Random } from '../core/index.ts';
import { fail, type BR } from './context.ts';
import type { BillingStore } from './store.ts';
import type { AdminKeyRecord, AdminRole } from './types.ts';

export const ADMIN_KEY_PREFIX = 'tgadmin-';

export interface AdminKeyIdentity {
  id: string;
  role: AdminRole;
  accountIds: string[] | null;
}

export class AdminKeyRegistry {
  #byHash = new Map<string, AdminKeyRecord>();
  constructor(private readonly deps: { store: BillingStore; clock: Clock; ids: IdGenerator; random: Random }) {}

  async load(): Promise<void> {
    const next = new Map<string, AdminKeyRecord>();
    for (const k of await this.deps.store.listAdminKeys()) if (k.revokedAtMs === null) next.set(k.hash, k);
    this.#byHash = next;
  }

  authenticate(token: string | undefined): AdminKeyIdentity | undefined {
    if (token === undefined || !token.startsWith(ADMIN_KEY_PREFIX)) return undefined;
    const hash = sha256Hex(token);
    const k = this.#byHash.get(hash);
    if (k === undefined || !constantTimeEqual(hash, k.hash)) return undefined;
    return { id: k.id, role: k.role, accountIds: k.accountIds === null ? null : [...k.accountIds] };
  }

  async create(i: { name: string; role: AdminRole; accountIds?: string[] | null; createdBy: string }): Promise<BR<{ key: string; record: AdminKeyRecord }>> {
    const accountIds = i.accountIds ?? null;
    if (i.role === 'enterprise' && (accountIds === null || accountIds.length === 0)) return fail('invalid', 'an enterprise admin key needs accountIds');
    if (i.role !== 'enterprise' && accountIds !== null) return fail('invalid', `a ${i.role} key sees every account: leave accountIds out`);
    const key = `${ADMIN_KEY_PREFIX}${this.deps.random.bytes(24).toString('base64url')}`;
    const record: AdminKeyRecord = {
      id: this.deps.ids.next('adk'),
      name: i.name,
      role: i.role,
      accountIds,
      hash: sha256Hex(key),
      prefix: key.slice(0, 12),
      createdBy: i.createdBy,
      createdAtMs: this.deps.clock.nowMs(),
      revokedAtMs: null,
    };
    await this.deps.store.insertAdminKey(record);
    await this.load();
    return ok({ key, record });
  }

  async revoke(id: string): Promise<BR<AdminKeyRecord>> {
    const k = (await this.deps.store.listAdminKeys()).find((x) => x.id === id);
    if (k === undefined) return fail('not_found', `Admin key ${id} does not exist.`);
    if (k.revokedAtMs === null) {
      k.revokedAtMs = this.deps.clock.nowMs();
      await this.deps.store.updateAdminKey(k);
      await this.load();
    }
    return ok(k);
  }

  list(): Promise<AdminKeyRecord[]> {
    return this.deps.store.listAdminKeys();
  }
}
