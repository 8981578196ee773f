import type { Account, AccountStore, ApiKeyRecord, Member } from '../../accounts/index.ts';
import type { SqliteDb } from './db.ts';
import { runMigrations } from './migrations.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('individual','family','team')),
  parent_id TEXT REFERENCES accounts(id), status TEXT NOT NULL, created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, role TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS members_account ON members(account_id);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), member_id TEXT REFERENCES members(id),
  name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, allowed_models TEXT, expires_at_ms INTEGER,
  revoked_at_ms INTEGER, limits TEXT NOT NULL, created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys(account_id);
`;
/** Version 2: a self-minted key records its root key (issue 12, N1). NULL: a root key. */
const V2_PARENT_KEY = 'ALTER TABLE api_keys ADD COLUMN parent_key_id TEXT REFERENCES api_keys(id);';
/** Version 3: the key that minted a key directly (revoking a middle key revokes what it minted). */
const V3_MINTED_BY = 'ALTER TABLE api_keys ADD COLUMN minted_by_key_id TEXT REFERENCES api_keys(id);';
/** Version 4: an operator's residency pin (JSON array of regions; NULL: none, the package decides). */
const V4_REGIONS = 'ALTER TABLE accounts ADD COLUMN regions TEXT;';

interface KeyRow {
  id: string;
  account_id: string;
  member_id: string | null;
  name: string;
  hash: string;
  prefix: string;
  allowed_models: string | null;
  expires_at_ms: number | null;
  revoked_at_ms: number | null;
  limits: string;
  created_at_ms: number;
  parent_key_id: string | null;
  minted_by_key_id: string | null;
}
interface AccountRow {
  id: string;
  name: string;
  kind: Account['kind'];
  parent_id: string | null;
  status: Account['status'];
  created_at_ms: number;
  regions: string | null;
}
interface MemberRow {
  id: string;
  account_id: string;
  name: string;
  role: Member['role'];
  created_at_ms: number;
}

const toKey = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  accountId: r.account_id,
  memberId: r.member_id,
  name: r.name,
  hash: r.hash,
  prefix: r.prefix,
  allowedModels: r.allowed_models === null ? null : (JSON.parse(r.allowed_models) as string[]),
  expiresAtMs: r.expires_at_ms,
  revokedAtMs: r.revoked_at_ms,
  limits: JSON.parse(r.limits) as ApiKeyRecord['limits'],
  createdAtMs: r.created_at_ms,
  ...(r.parent_key_id === null ? {} : { parentKeyId: r.parent_key_id }),
  ...(r.minted_by_key_id === null ? {} : { mintedByKeyId: r.minted_by_key_id }),
});
const toAccount = (r: AccountRow): Account => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  parentId: r.parent_id,
  status: r.status,
  createdAtMs: r.created_at_ms,
  ...(r.regions === null ? {} : { regions: JSON.parse(r.regions) as string[] }),
});
const toMember = (r: MemberRow): Member => ({ id: r.id, accountId: r.account_id, name: r.name, role: r.role, createdAtMs: r.created_at_ms });

export function openSqliteAccountStore(db: SqliteDb): AccountStore {
  runMigrations(db, { store: 'accounts', steps: [SCHEMA, V2_PARENT_KEY, V3_MINTED_BY, V4_REGIONS] });
  const s = {
    insAccount: db.prepare('INSERT INTO accounts (id,name,kind,parent_id,status,created_at_ms,regions) VALUES (?,?,?,?,?,?,?)'),
    getAccount: db.prepare('SELECT * FROM accounts WHERE id = ?'),
    listAccounts: db.prepare('SELECT * FROM accounts ORDER BY id'),
    listChildren: db.prepare('SELECT * FROM accounts WHERE parent_id = ? ORDER BY id'),
    updAccount: db.prepare('UPDATE accounts SET name=?, kind=?, parent_id=?, status=?, regions=? WHERE id=?'),
    insMember: db.prepare('INSERT INTO members (id,account_id,name,role,created_at_ms) VALUES (?,?,?,?,?)'),
    listMembers: db.prepare('SELECT * FROM members WHERE account_id = ? ORDER BY id'),
    getMember: db.prepare('SELECT * FROM members WHERE id = ?'),
    insKey:
      db.prepare(`INSERT INTO api_keys (id,account_id,member_id,name,hash,prefix,allowed_models,expires_at_ms,revoked_at_ms,limits,created_at_ms,parent_key_id,minted_by_key_id)
      VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`),
    updKey: db.prepare('UPDATE api_keys SET name=?, allowed_models=?, expires_at_ms=?, revoked_at_ms=?, limits=? WHERE id=?'),
    getKey: db.prepare('SELECT * FROM api_keys WHERE id = ?'),
    listKeys: db.prepare('SELECT * FROM api_keys ORDER BY id'),
    listKeysOf: db.prepare('SELECT * FROM api_keys WHERE account_id = ? ORDER BY id'),
  };
  return {
    async insertAccount(a) {
      s.insAccount.run(a.id, a.name, a.kind, a.parentId, a.status, a.createdAtMs, a.regions === undefined ? null : JSON.stringify(a.regions));
    },
    async getAccount(id) {
      const r = s.getAccount.get(id) as AccountRow | undefined;
      return r && toAccount(r);
    },
    async listAccounts(opts) {
      const rows = (opts?.parentId ? s.listChildren.all(opts.parentId) : s.listAccounts.all()) as AccountRow[];
      return rows.map(toAccount);
    },
    async updateAccount(a) {
      s.updAccount.run(a.name, a.kind, a.parentId, a.status, a.regions === undefined ? null : JSON.stringify(a.regions), a.id);
    },
    async insertMember(m) {
      s.insMember.run(m.id, m.accountId, m.name, m.role, m.createdAtMs);
    },
    async listMembers(accountId) {
      return (s.listMembers.all(accountId) as MemberRow[]).map(toMember);
    },
    async getMember(id) {
      const r = s.getMember.get(id) as MemberRow | undefined;
      return r && toMember(r);
    },
    async insertKey(k) {
      s.insKey.run(
        k.id,
        k.accountId,
        k.memberId,
        k.name,
        k.hash,
        k.prefix,
        k.allowedModels === null ? null : JSON.stringify(k.allowedModels),
        k.expiresAtMs,
        k.revokedAtMs,
        JSON.stringify(k.limits),
        k.createdAtMs,
        k.parentKeyId ?? null,
        k.mintedByKeyId ?? null,
      );
    },
    async updateKey(k) {
      s.updKey.run(k.name, k.allowedModels === null ? null : JSON.stringify(k.allowedModels), k.expiresAtMs, k.revokedAtMs, JSON.stringify(k.limits), k.id);
    },
    async getKey(id) {
      const r = s.getKey.get(id) as KeyRow | undefined;
      return r && toKey(r);
    },
    async listKeys(accountId) {
      return ((accountId ? s.listKeysOf.all(accountId) : s.listKeys.all()) as KeyRow[]).map(toKey);
    },
  };
}
