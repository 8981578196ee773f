import type { Account, AccountStore, ApiKeyRecord, Member } from '../../accounts/index.ts';
import type { PgDb } from './db.ts';

type Row = Record<string, unknown>;

const toKey = (r: Row): ApiKeyRecord => ({
  id: r.id as string,
  accountId: r.account_id as string,
  memberId: r.member_id as string | null,
  name: r.name as string,
  hash: r.hash as string,
  prefix: r.prefix as string,
  allowedModels: r.allowed_models as string[] | null,
  expiresAtMs: r.expires_at_ms as number | null,
  revokedAtMs: r.revoked_at_ms as number | null,
  limits: r.limits as ApiKeyRecord['limits'],
  createdAtMs: r.created_at_ms as number,
  ...(r.parent_key_id === null ? {} : { parentKeyId: r.parent_key_id as string }),
  ...(r.minted_by_key_id === null ? {} : { mintedByKeyId: r.minted_by_key_id as string }),
});
const toAccount = (r: Row): Account => ({
  id: r.id as string,
  name: r.name as string,
  kind: r.kind as Account['kind'],
  parentId: r.parent_id as string | null,
  status: r.status as Account['status'],
  createdAtMs: r.created_at_ms as number,
});
const toMember = (r: Row): Member => ({
  id: r.id as string,
  accountId: r.account_id as string,
  name: r.name as string,
  role: r.role as Member['role'],
  createdAtMs: r.created_at_ms as number,
});

const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

/** Accounts, members and API keys on PostgreSQL (the same rows and rules as store/sqlite/accounts-store.ts). */
export function openPostgresAccountStore(db: PgDb): AccountStore {
  return {
    async insertAccount(a) {
      await db.query('INSERT INTO accounts (id, name, kind, parent_id, status, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)', [
        a.id,
        a.name,
        a.kind,
        a.parentId,
        a.status,
        a.createdAtMs,
      ]);
    },
    async getAccount(id) {
      const r = (await db.query('SELECT * FROM accounts WHERE id = $1', [id])).rows[0];
      return r && toAccount(r);
    },
    async listAccounts(opts) {
      const r = opts?.parentId
        ? await db.query('SELECT * FROM accounts WHERE parent_id = $1 ORDER BY id COLLATE "C"', [opts.parentId])
        : await db.query('SELECT * FROM accounts ORDER BY id COLLATE "C"');
      return r.rows.map(toAccount);
    },
    async updateAccount(a) {
      await db.query('UPDATE accounts SET name = $1, kind = $2, parent_id = $3, status = $4 WHERE id = $5', [a.name, a.kind, a.parentId, a.status, a.id]);
    },
    async insertMember(m) {
      await db.query('INSERT INTO members (id, account_id, name, role, created_at_ms) VALUES ($1, $2, $3, $4, $5)', [
        m.id,
        m.accountId,
        m.name,
        m.role,
        m.createdAtMs,
      ]);
    },
    async listMembers(accountId) {
      return (await db.query('SELECT * FROM members WHERE account_id = $1 ORDER BY id COLLATE "C"', [accountId])).rows.map(toMember);
    },
    async getMember(id) {
      const r = (await db.query('SELECT * FROM members WHERE id = $1', [id])).rows[0];
      return r && toMember(r);
    },
    async insertKey(k) {
      await db.query(
        `INSERT INTO api_keys (id, account_id, member_id, name, hash, prefix, allowed_models, expires_at_ms, revoked_at_ms, limits, created_at_ms, parent_key_id, minted_by_key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          k.id,
          k.accountId,
          k.memberId,
          k.name,
          k.hash,
          k.prefix,
          json(k.allowedModels),
          k.expiresAtMs,
          k.revokedAtMs,
          JSON.stringify(k.limits),
          k.createdAtMs,
          k.parentKeyId ?? null,
          k.mintedByKeyId ?? null,
        ],
      );
    },
    async updateKey(k) {
      await db.query('UPDATE api_keys SET name = $1, allowed_models = $2, expires_at_ms = $3, revoked_at_ms = $4, limits = $5 WHERE id = $6', [
        k.name,
        json(k.allowedModels),
        k.expiresAtMs,
        k.revokedAtMs,
        JSON.stringify(k.limits),
        k.id,
      ]);
    },
    async getKey(id) {
      const r = (await db.query('SELECT * FROM api_keys WHERE id = $1', [id])).rows[0];
      return r && toKey(r);
    },
    async listKeys(accountId) {
      const r = accountId
        ? await db.query('SELECT * FROM api_keys WHERE account_id = $1 ORDER BY id COLLATE "C"', [accountId])
        : await db.query('SELECT * FROM api_keys ORDER BY id COLLATE "C"');
      return r.rows.map(toKey);
    },
  };
}
