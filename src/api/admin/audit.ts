/** The audit log over the admin API (GET /admin/audit, /admin/audit/verify), the root key's rotation, and the write hook. */
import { TokenGridError } from '../../core/index.ts';
import type { AuditEntry, AuditLog } from '../../audit/index.ts';
import { sendJson } from '../http.ts';
import type { Route, RouteContext } from '../router.ts';
import type { AdminIdentity, AuthFailure } from '../shell-deps.ts';
import { isoOrNull } from './common.ts';
import type { GuardDeps, Permission } from './permissions.ts';

export interface AuditNote {
  target?: string | null;
  accountId?: string | null;
  before?: unknown;
  after?: unknown;
}

const notes = new WeakMap<RouteContext, AuditNote>();

/** A handler says what it changed (before/after, the account); the guard's write hook records it. */
export function noteAudit(rc: RouteContext, note: AuditNote): void {
  notes.set(rc, { ...notes.get(rc), ...note });
}

/** The admin's actor name in the audit log and on orders. */
export const actorName = (admin: AdminIdentity): string => admin.id;

/** The guard's onWrite: one audit entry per admin write (denied and failed ones too, with their status). */
export function auditWriteHook(audit: AuditLog): NonNullable<GuardDeps['onWrite']> {
  return async (rc: RouteContext, admin: AdminIdentity, p: Permission, status: number) => {
    const note = notes.get(rc) ?? {};
    const target = note.target ?? rc.params.id ?? rc.params.requestId ?? null;
    await audit.append({
      actor: actorName(admin),
      role: admin.role,
      action: p.action,
      target,
      accountId: note.accountId ?? (p.scope === 'account-param' ? (rc.params.id ?? null) : null),
      outcome: status,
      before: note.before ?? null,
      after: note.after ?? null,
      requestId: rc.requestId,
      source: rc.req.socket.remoteAddress ?? null,
    });
  };
}

/** Failed admin authentications go to the audit log too (actor "anonymous"; the key itself is never recorded). */
export function auditAuthFailure(audit: AuditLog, f: AuthFailure): Promise<AuditEntry> {
  return audit.append({
    actor: 'anonymous',
    role: 'none',
    action: 'auth.failed',
    target: `${f.method} ${f.path}`,
    accountId: null,
    outcome: 401,
    before: null,
    after: null,
    requestId: f.requestId,
    source: f.source,
  });
}

export const auditView = (e: AuditEntry) => ({
  seq: e.seq,
  id: e.id,
  at: isoOrNull(e.atMs),
  actor: e.actor,
  role: e.role,
  action: e.action,
  target: e.target,
  accountId: e.accountId,
  outcome: e.outcome,
  before: e.before,
  after: e.after,
  requestId: e.requestId,
  source: e.source,
  prevHash: e.prevHash,
  hash: e.hash,
});

export interface SecurityAdminDeps {
  audit: AuditLog;
  canAccess(admin: AdminIdentity, accountId: string): Promise<boolean>;
  /** Writes a new root key to data/admin-key; the old one stops working. Returns the file's path. */
  rotateRootKey(): Promise<{ key: string; path: string }>;
}

function timeParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw new TokenGridError('invalid_request', `${name} must be an ISO time like 2026-12-01T00:00:00Z`, name);
  return ms;
}

export function securityAdminRoutes(deps: SecurityAdminDeps): Route<AdminIdentity>[] {
  return [
    {
      method: 'GET',
      path: '/admin/audit',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const q = rc.query;
        const accountId = q.get('account') ?? undefined;
        if (admin.accountIds !== null) {
          if (accountId === undefined)
            throw new TokenGridError('invalid_request', 'An enterprise admin reads the audit log of one of its accounts: ?account=<id>.', 'account');
          if (!(await deps.canAccess(admin, accountId))) throw new TokenGridError('permission_denied', `This admin key may not manage account ${accountId}.`);
        }
        const limitRaw = q.get('limit');
        const limit = limitRaw === null ? 100 : Number(limitRaw);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new TokenGridError('invalid_request', 'limit must be an integer 1..10000', 'limit');
        const data = await deps.audit.list({
          accountId,
          actor: q.get('actor') ?? undefined,
          action: q.get('action') ?? undefined,
          sinceMs: timeParam(q, 'since'),
          untilMs: timeParam(q, 'until'),
          limit,
        });
        sendJson(rc.res, 200, { data: data.map(auditView) });
      },
    },
    {
      method: 'GET',
      path: '/admin/audit/verify',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        sendJson(rc.res, 200, await deps.audit.verify());
      },
    },
    {
      method: 'POST',
      path: '/admin/root-key/rotate',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        rc.req.resume();
        const r = await deps.rotateRootKey();
        noteAudit(rc, { target: 'root', after: { path: r.path } });
        sendJson(rc.res, 200, {
          key: r.key,
          path: r.path,
          notice: 'The previous root admin key no longer works. The new key is shown once and saved to the file above (mode 0600).',
        });
      },
    },
  ];
}
