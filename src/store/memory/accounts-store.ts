import type { Account, AccountStore, ApiKeyRecord, Member } from '../../accounts/index.ts';

/** In-memory AccountStore for unit tests. Copies on the way in and out, like a real store. */
export function createMemoryAccountStore(): AccountStore {
  const accounts = new Map<string, Account>();
  const members = new Map<string, Member>();
  const keys = new Map<string, ApiKeyRecord>();
  const copy = <T>(v: T): T => structuredClone(v);
  return {
    async insertAccount(a) { if (accounts.has(a.id)) throw new Error(`duplicate account ${a.id}`); accounts.set(a.id, copy(a)); },
    async getAccount(id) { const a = accounts.get(id); return a && copy(a); },
    async listAccounts(opts) { return [...accounts.values()].filter((a) => !opts?.parentId || a.parentId === opts.parentId).map(copy); },
    async updateAccount(a) { accounts.set(a.id, copy(a)); },
    async insertMember(m) { members.set(m.id, copy(m)); },
    async listMembers(accountId) { return [...members.values()].filter((m) => m.accountId === accountId).map(copy); },
    async getMember(id) { const m = members.get(id); return m && copy(m); },
    async insertKey(k) {
      for (const other of keys.values()) if (other.hash === k.hash) throw new Error('duplicate key hash');
      keys.set(k.id, copy(k));
    },
    async updateKey(k) { keys.set(k.id, copy(k)); },
    async getKey(id) { const k = keys.get(id); return k && copy(k); },
    async listKeys(accountId) { return [...keys.values()].filter((k) => !accountId || k.accountId === accountId).map(copy); },
  };
}
