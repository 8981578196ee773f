import type { AuditEntry, AuditFilter, AuditStore } from '../../audit/index.ts';

/** The audit log in memory (tests); same contract as the SQLite table. */
export function createMemoryAuditStore(): AuditStore & { rows: AuditEntry[] } {
  const rows: AuditEntry[] = [];
  const copy = (e: AuditEntry): AuditEntry => structuredClone(e);
  return {
    rows,
    async append(e) {
      if (rows.length > 0 && rows[rows.length - 1]!.seq >= e.seq) throw new Error(`audit seq ${e.seq} already written`);
      rows.push(copy(e));
    },
    async last() {
      const e = rows[rows.length - 1];
      return e && copy(e);
    },
    async list(f: AuditFilter) {
      const out: AuditEntry[] = [];
      for (let i = rows.length - 1; i >= 0 && out.length < (f.limit ?? 100); i--) {
        const e = rows[i]!;
        if (f.accountId !== undefined && e.accountId !== f.accountId) continue;
        if (f.actor !== undefined && e.actor !== f.actor) continue;
        if (f.action !== undefined && e.action !== f.action) continue;
        if (f.sinceMs !== undefined && e.atMs < f.sinceMs) continue;
        if (f.untilMs !== undefined && e.atMs >= f.untilMs) continue;
        out.push(copy(e));
      }
      return out;
    },
    async all() {
      return rows.map(copy);
    },
  };
}
