import type { Account, AccountStore, ApiKeyRecord, Member } from '../../accounts/index.ts';

/**
 * In-memory AccountStore for unit tests. Keeps the SQLite store's promises (src/store/contract/accounts-store.contract.ts):
 * copies on the way in and out, lists ordered by id, no id or key hash taken twice, members and keys only for an
 * existing account, updates that change only what they may and never create a row.
 */
export function createMemoryAccountStore(): AccountStore {
  const accounts = new Map<string, Account>();
  const members = new Map<string, Member>();
  const keys = new Map<string, ApiKeyRecord>();
  const copy = <T>(v: T): T => structuredClone(v);
  const byId = <T extends { id: string }>(rows: T[]): T[] => rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const needAccount = (id: string): void => {
    if (!accounts.has(id)) throw new Error(`unknown account ${id}`);
  };
  return {
    async insertAccount(a) {
      if (accounts.has(a.id)) throw new Error(`duplicate account ${a.id}`);
      accounts.set(a.id, copy(a));
    },
    async getAccount(id) {
      const a = accounts.get(id);
      return a && copy(a);
    },
    async listAccounts(opts) {
      return byId([...accounts.values()].filter((a) => !opts?.parentId || a.parentId === opts.parentId).map(copy));
    },
    async updateAccount(a) {
      const old = accounts.get(a.id);
      if (old) accounts.set(a.id, { ...copy(a), createdAtMs: old.createdAtMs });
    },
    async insertMember(m) {
      if (members.has(m.id)) throw new Error(`duplicate member ${m.id}`);
      needAccount(m.accountId);
      members.set(m.id, copy(m));
    },
    async listMembers(accountId) {
      return byId([...members.values()].filter((m) => m.accountId === accountId).map(copy));
    },
    async getMember(id) {
      const m = members.get(id);
      return m && copy(m);
    },
    async insertKey(k) {
      if (keys.has(k.id)) throw new Error(`duplicate key ${k.id}`);
      for (const other of keys.values()) if (other.hash === k.hash) throw new Error('duplicate key hash');
      needAccount(k.accountId);
      if (k.memberId !== null && !members.has(k.memberId)) throw new Error(`unknown member ${k.memberId}`);
      keys.set(k.id, copy(k));
    },
    async updateKey(k) {
      const old = keys.get(k.id);
      if (!old) return;
      // parentKeyId (the root a self-minted key descends from) is fixed at insert, like the SQLite store.
      const { name, allowedModels, expiresAtMs, revokedAtMs, limits } = copy(k);
      keys.set(k.id, { ...old, name, allowedModels, expiresAtMs, revokedAtMs, limits });
    },
    async getKey(id) {
      const k = keys.get(id);
      return k && copy(k);
    },
    async listKeys(accountId) {
      return byId([...keys.values()].filter((k) => !accountId || k.accountId === accountId).map(copy));
    },
  };
}
