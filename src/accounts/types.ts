/** Accounts, members and API keys. An account is who pays; a member is a person inside a family or team; a key is how a program calls. */
export type AccountKind = 'individual' | 'family' | 'team';
export type AccountStatus = 'active' | 'suspended' | 'closed';

export interface Account {
  id: string;
  name: string;
  kind: AccountKind;
  /** Enterprise sub-accounts point at their parent; enterprise admins see their own tree only. */
  parentId: string | null;
  status: AccountStatus;
  createdAtMs: number;
  /**
   * Data residency set by an operator: the only regions the account's requests may be served in. Overrides the
   * pin of its package (offer `regions`); absent: the package decides (none: anywhere).
   */
  regions?: string[];
}

export type MemberRole = 'owner' | 'admin' | 'member';

export interface Member {
  id: string;
  accountId: string;
  name: string;
  role: MemberRole;
  createdAtMs: number;
}

export interface ApiKeyRecord {
  id: string;
  accountId: string;
  memberId: string | null;
  name: string;
  /** sha256 of the full key; the key itself is shown once and never stored. */
  hash: string;
  /** First characters, safe to show ("tg-abc123…"). */
  prefix: string;
  /** null: every model the account's plan allows. Entries may be model ids, aliases or "group:<name>". */
  allowedModels: string[] | null;
  expiresAtMs: number | null;
  revokedAtMs: number | null;
  /** Per-key limits; undefined fields mean no key-level limit. */
  limits: KeyLimits;
  createdAtMs: number;
  /**
   * The ROOT key a self-minted key descends from (POST /self/keys; a child of a child records the root, never
   * the middle key). Absent on a key an admin or the console made. The gateway counts a child's requests
   * against its root's rate/concurrency window, and revoking the root revokes it (issue 12, finding N1).
   */
  parentKeyId?: string;
  /** The key that minted this one directly (the middle key for a grandchild); revoking it revokes this key. */
  mintedByKeyId?: string;
}

export interface KeyLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  concurrentRequests?: number;
}

/** The port accounts need from storage. Implementations: store/memory, store/sqlite. */
export interface AccountStore {
  insertAccount(a: Account): Promise<void>;
  getAccount(id: string): Promise<Account | undefined>;
  listAccounts(opts?: { parentId?: string }): Promise<Account[]>;
  updateAccount(a: Account): Promise<void>;
  insertMember(m: Member): Promise<void>;
  listMembers(accountId: string): Promise<Member[]>;
  getMember(id: string): Promise<Member | undefined>;
  insertKey(k: ApiKeyRecord): Promise<void>;
  updateKey(k: ApiKeyRecord): Promise<void>;
  getKey(id: string): Promise<ApiKeyRecord | undefined>;
  listKeys(accountId?: string): Promise<ApiKeyRecord[]>;
}
