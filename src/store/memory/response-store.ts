import type { ResponseStore, StoredResponse } from '../../wire/openai/index.ts';

/** In-memory ResponseStore (tests, and a server without a data folder). Copies on the way in and out, like a real store. */
export function createMemoryResponseStore(): ResponseStore {
  const byId = new Map<string, StoredResponse>();
  return {
    async put(r) {
      byId.set(r.id, structuredClone(r));
    },
    async get(accountId, id, nowMs) {
      const r = byId.get(id);
      return r !== undefined && r.accountId === accountId && r.expiresAtMs > nowMs ? structuredClone(r) : undefined;
    },
    async delete(accountId, id) {
      const r = byId.get(id);
      if (r === undefined || r.accountId !== accountId) return false;
      byId.delete(id);
      return true;
    },
    async sweep(nowMs) {
      let n = 0;
      for (const [id, r] of byId)
        if (r.expiresAtMs <= nowMs) {
          byId.delete(id);
          n++;
        }
      return n;
    },
  };
}
