/**
 * The audit log (pure): append-only, hash-chained entries. Each entry stores the previous entry's hash and its
 * own: sha256 over a canonical serialization (keys sorted, no whitespace) of every field but `hash`. Changing,
 * removing or reordering a stored entry breaks the chain at that entry, which `verifyChain` reports.
 * Time and ids come from the core ports; the store is a port (SQLite and memory implementations in src/store).
 */
import { sha256Hex, type Clock, type IdGenerator } from '../core/index.ts';

export interface AuditInput {
  /** Admin key id, "root" for the data folder's key, or "anonymous" for a failed authentication. */
  actor: string;
  role: string;
  /** e.g. bucket.grant, key.revoke, auth.failed (the permission matrix's action names). */
  action: string;
  /** What was acted on: an account, key, order, subscription id, or a route. */
  target: string | null;
  /** The account concerned, if any (the audit list's filter). */
  accountId: string | null;
  /** HTTP status of the outcome (201, 403, 401...). */
  outcome: number;
  before: unknown;
  after: unknown;
  requestId: string | null;
  source: string | null;
}

export interface AuditEntry extends AuditInput {
  seq: number;
  id: string;
  atMs: number;
  prevHash: string;
  hash: string;
}

export interface AuditFilter {
  accountId?: string;
  actor?: string;
  action?: string;
  sinceMs?: number;
  untilMs?: number;
  /** Newest first, at most this many (default 100, at most 10,000). */
  limit?: number;
}

/** The port a store implements (store/sqlite/audit-store.ts, store/memory/audit-store.ts). */
export interface AuditStore {
  /** Appends one entry; never updates or deletes. */
  append(e: AuditEntry): Promise<void>;
  last(): Promise<AuditEntry | undefined>;
  /** Newest first. */
  list(f: AuditFilter): Promise<AuditEntry[]>;
  /** Every entry in seq order (verification). */
  all(): Promise<AuditEntry[]>;
  /**
   * Optional, for stores shared by several processes: read the last entry, build the next with `next`, and append
   * it, as one atomic step (so two nodes never chain onto the same entry). Without it, AuditLog chains in-process.
   */
  appendChained?(next: (last: AuditEntry | undefined) => AuditEntry): Promise<AuditEntry>;
}

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level and no whitespace; undefined object fields are left out. */
export function canonicalJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x)).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  if (typeof v === 'number' && !Number.isFinite(v)) return 'null';
  return JSON.stringify(v);
}

/** The hash of an entry: sha256 over the canonical form of every field but `hash`. */
export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  const { seq, id, atMs, prevHash, actor, role, action, target, accountId, outcome, before, after, requestId, source } = e;
  return sha256Hex(canonicalJson({ seq, id, atMs, prevHash, actor, role, action, target, accountId, outcome, before, after, requestId, source }));
}

/** A small JSON value as stored (round-tripped, so what is hashed is what is read back). */
export function normalizeJson(v: unknown): unknown {
  if (v === undefined) return null;
  return JSON.parse(JSON.stringify(v)) as unknown;
}

export function chainEntry(prev: Pick<AuditEntry, 'seq' | 'hash'> | undefined, input: AuditInput, id: string, atMs: number): AuditEntry {
  const base = {
    seq: (prev?.seq ?? 0) + 1,
    id,
    atMs,
    prevHash: prev?.hash ?? GENESIS_HASH,
    actor: input.actor,
    role: input.role,
    action: input.action,
    target: input.target,
    accountId: input.accountId,
    outcome: input.outcome,
    before: normalizeJson(input.before),
    after: normalizeJson(input.after),
    requestId: input.requestId,
    source: input.source,
  };
  return { ...base, hash: entryHash(base) };
}

export type VerifyResult = { ok: true; entries: number; lastHash: string } | { ok: false; entries: number; brokenAt: number; reason: string };

/** Walks the chain in seq order: each entry's hash must match its content and link to the previous one. */
export function verifyChain(entries: readonly AuditEntry[]): VerifyResult {
  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  for (const e of entries) {
    if (e.seq !== prevSeq + 1) return { ok: false, entries: entries.length, brokenAt: e.seq, reason: `entry ${prevSeq + 1} is missing (found ${e.seq} next)` };
    if (e.prevHash !== prevHash)
      return { ok: false, entries: entries.length, brokenAt: e.seq, reason: `entry ${e.seq} does not link to the previous entry's hash` };
    const { hash, ...rest } = e;
    if (entryHash(rest) !== hash)
      return {
        ok: false,
        entries: entries.length,
        brokenAt: e.seq,
        reason: `entry ${e.seq} was changed after it was written (its hash does not match its content)`,
      };
    prevHash = hash;
    prevSeq = e.seq;
  }
  return { ok: true, entries: entries.length, lastHash: prevHash };
}

/** Appends are serialized, so two concurrent writes never take the same seq. */
export class AuditLog {
  #tail: Promise<unknown> = Promise.resolve();
  constructor(private readonly deps: { store: AuditStore; clock: Clock; ids: IdGenerator }) {}

  append(input: AuditInput): Promise<AuditEntry> {
    const run = async (): Promise<AuditEntry> => {
      const id = this.deps.ids.next('aud');
      const atMs = this.deps.clock.nowMs();
      if (this.deps.store.appendChained !== undefined) return this.deps.store.appendChained((last) => chainEntry(last, input, id, atMs));
      const e = chainEntry(await this.deps.store.last(), input, id, atMs);
      await this.deps.store.append(e);
      return e;
    };
    const p = this.#tail.then(run, run);
    this.#tail = p.catch(() => undefined);
    return p;
  }

  list(f: AuditFilter): Promise<AuditEntry[]> {
    return this.deps.store.list({ ...f, limit: Math.min(Math.max(f.limit ?? 100, 1), 10_000) });
  }

  async verify(): Promise<VerifyResult> {
    return verifyChain(await this.deps.store.all());
  }
}
