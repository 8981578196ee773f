import { z } from 'zod';
import { TokenGridError } from '../../core/index.ts';
import { addMember, createAccount, createApiKey, revokeApiKey, type AccountDeps, type ApiKeyRecord } from '../../accounts/index.ts';
import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { noteAudit } from './audit.ts';
import { failWith, isoOrNull, parseBody, requireAccountAccess } from './common.ts';
import { authorize } from './permissions.ts';

export interface AccountAdminDeps {
  accounts: AccountDeps;
  bodyLimitBytes: number;
  /** How many members the account's plan allows (team seats or family members); null = no limit. */
  memberLimit?: (accountId: string) => Promise<{ limit: number; what: 'seats' | 'members' } | null>;
  /** The role of the admin who last suspended the account (from the audit log); undefined if unknown. */
  suspendedByRole?: (accountId: string) => Promise<string | undefined>;
}

const keyView = (k: ApiKeyRecord) => ({
  id: k.id,
  accountId: k.accountId,
  memberId: k.memberId,
  name: k.name,
  prefix: k.prefix,
  allowedModels: k.allowedModels,
  expiresAt: isoOrNull(k.expiresAtMs),
  revokedAt: isoOrNull(k.revokedAtMs),
  limits: k.limits,
  createdAt: isoOrNull(k.createdAtMs),
});

const createAccountBody = z
  .object({
    name: z.string().min(1).max(200),
    kind: z.enum(['individual', 'family', 'team']).optional(),
    parentId: z.string().optional(),
  })
  .strict();

const createKeyBody = z
  .object({
    accountId: z.string().optional(),
    memberId: z.string().nullable().optional(),
    name: z.string().min(1).max(100).optional(),
    allowedModels: z.array(z.string().min(1)).nullable().optional(),
    expiresAt: z.string().datetime({ offset: true }).nullable().optional(),
    limits: z
      .object({
        requestsPerMinute: z.number().int().positive().optional(),
        tokensPerMinute: z.number().int().positive().optional(),
        concurrentRequests: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** The request body of each route, by route: the OpenAPI document is generated from these (billing-openapi.ts). */
export const accountBodies = {
  'POST /admin/accounts': createAccountBody,
  'PATCH /admin/accounts/:id': z
    .object({
      name: z.string().min(1).max(200).optional(),
      status: z.enum(['active', 'suspended', 'closed']).optional(),
      /** Data residency pin (operator only): the regions the account's requests must stay in; null lifts it (the package decides). */
      regions: z.array(z.string().min(1).max(100)).min(1).max(50).nullable().optional(),
    })
    .strict(),
  'POST /admin/accounts/:id/members': z.object({ name: z.string().min(1).max(200), role: z.enum(['owner', 'admin', 'member']).optional() }).strict(),
  'POST /admin/accounts/:id/keys': createKeyBody,
  'POST /admin/keys': createKeyBody,
};

export function accountAdminRoutes(deps: AccountAdminDeps): Route<AdminIdentity>[] {
  const store = deps.accounts.store;
  const parentOf = async (id: string) => (await store.getAccount(id))?.parentId;
  const access = (admin: AdminIdentity, id: string) => requireAccountAccess(admin, id, parentOf);
  const createKey = async (admin: AdminIdentity, accountId: string, body: z.infer<typeof createKeyBody>) => {
    await access(admin, accountId);
    const r = await createApiKey(deps.accounts, {
      accountId,
      memberId: body.memberId ?? null,
      name: body.name,
      allowedModels: body.allowedModels ?? null,
      expiresAtMs: body.expiresAt ? Date.parse(body.expiresAt) : null,
      limits: body.limits,
    });
    if (!r.ok) failWith(r.code, r.message);
    return { key: r.value.key, view: keyView(r.value.record) };
  };
  return [
    {
      method: 'POST',
      path: '/admin/accounts',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, createAccountBody, deps.bodyLimitBytes);
        if (admin.accountIds !== null) {
          if (!body.parentId) throw new TokenGridError('permission_denied', 'An enterprise admin creates sub-accounts: give parentId.');
          await access(admin, body.parentId);
        }
        const r = await createAccount(deps.accounts, { name: body.name, kind: body.kind, parentId: body.parentId ?? null });
        if (!r.ok) failWith(r.code, r.message);
        noteAudit(rc, { target: r.value.id, accountId: r.value.id, after: { name: r.value.name, kind: r.value.kind, parentId: r.value.parentId } });
        sendJson(rc.res, 201, { ...r.value, createdAt: isoOrNull(r.value.createdAtMs) });
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const all = await store.listAccounts();
        const visible = [];
        for (const a of all) {
          try {
            await access(admin, a.id);
            visible.push(a);
          } catch {
            /* not this admin's */
          }
        }
        sendJson(rc.res, 200, { data: visible.map((a) => ({ ...a, createdAt: isoOrNull(a.createdAtMs) })) });
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts/:id',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        await access(admin, rc.params.id!);
        const a = await store.getAccount(rc.params.id!);
        if (!a) throw new TokenGridError('not_found', `account ${rc.params.id} does not exist`);
        const members = await store.listMembers(a.id);
        sendJson(rc.res, 200, { ...a, createdAt: isoOrNull(a.createdAtMs), members });
      },
    },
    {
      method: 'PATCH',
      path: '/admin/accounts/:id',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        await access(admin, rc.params.id!);
        const body = await parseBody(rc, accountBodies['PATCH /admin/accounts/:id'], deps.bodyLimitBytes);
        const a = await store.getAccount(rc.params.id!);
        if (!a) throw new TokenGridError('not_found', `account ${rc.params.id} does not exist`);
        // Lifting a suspension (or reopening) creates the right to spend again: operator-only (the matrix's actions).
        if (body.status !== undefined && body.status !== a.status) {
          if (body.status !== 'active') authorize(admin, 'account.suspend');
          else if (a.status === 'suspended' && (await deps.suspendedByRole?.(a.id)) === 'enterprise') authorize(admin, 'account.reactivate-own');
          else authorize(admin, 'account.reactivate');
        }
        if (body.regions !== undefined) authorize(admin, 'account.regions');
        const before = { name: a.name, status: a.status, regions: a.regions ?? null };
        if (body.name) a.name = body.name;
        if (body.status) a.status = body.status;
        if (body.regions === null) delete a.regions;
        else if (body.regions !== undefined) a.regions = [...new Set(body.regions)];
        await store.updateAccount(a);
        await deps.accounts.onKeysChanged?.();
        noteAudit(rc, { accountId: a.id, before, after: { name: a.name, status: a.status, regions: a.regions ?? null } });
        sendJson(rc.res, 200, { ...a, createdAt: isoOrNull(a.createdAtMs) });
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/members',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        await access(admin, rc.params.id!);
        const body = await parseBody(rc, accountBodies['POST /admin/accounts/:id/members'], deps.bodyLimitBytes);
        const cap = await deps.memberLimit?.(rc.params.id!);
        if (cap) {
          const count = (await store.listMembers(rc.params.id!)).length;
          if (count >= cap.limit) {
            throw new TokenGridError(
              'unprocessable',
              `Account ${rc.params.id} already has ${count} members and its plan allows ${cap.limit} ${cap.what}; buy extra seats or upgrade the plan first.`,
            );
          }
        }
        const r = await addMember(deps.accounts, { accountId: rc.params.id!, name: body.name, role: body.role });
        if (!r.ok) failWith(r.code, r.message);
        noteAudit(rc, { target: r.value.id, accountId: rc.params.id!, after: { memberId: r.value.id, name: r.value.name, role: r.value.role } });
        sendJson(rc.res, 201, r.value);
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/keys',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, createKeyBody, deps.bodyLimitBytes);
        const k = await createKey(admin, rc.params.id!, body);
        noteAudit(rc, { target: k.view.id, accountId: k.view.accountId, after: k.view });
        sendJson(rc.res, 201, { key: k.key, ...k.view });
      },
    },
    {
      method: 'POST',
      path: '/admin/keys',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, createKeyBody, deps.bodyLimitBytes);
        if (!body.accountId) throw new TokenGridError('invalid_request', 'accountId: Required', 'accountId');
        const k = await createKey(admin, body.accountId, body);
        noteAudit(rc, { target: k.view.id, accountId: k.view.accountId, after: k.view });
        sendJson(rc.res, 201, { key: k.key, ...k.view });
      },
    },
    {
      method: 'GET',
      path: '/admin/keys',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const accountId = rc.query.get('account') ?? undefined;
        if (accountId) await access(admin, accountId);
        else requireOperatorOrFinance(admin);
        sendJson(rc.res, 200, { data: (await store.listKeys(accountId)).map(keyView) });
      },
    },
    {
      method: 'POST',
      path: '/admin/keys/:id/revoke',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const k = await store.getKey(rc.params.id!);
        if (!k) throw new TokenGridError('not_found', `key ${rc.params.id} does not exist`);
        await access(admin, k.accountId);
        rc.req.resume();
        const r = await revokeApiKey(deps.accounts, k.id);
        if (!r.ok) failWith(r.code, r.message);
        noteAudit(rc, {
          target: k.id,
          accountId: k.accountId,
          before: { revokedAt: isoOrNull(k.revokedAtMs) },
          after: { revokedAt: isoOrNull(r.value.revokedAtMs) },
        });
        sendJson(rc.res, 200, keyView(r.value));
      },
    },
  ];
}

/** Scope rule account-query: an enterprise admin names one of its accounts. */
function requireOperatorOrFinance(admin: AdminIdentity): void {
  if (admin.accountIds !== null) throw new TokenGridError('permission_denied', 'An enterprise admin lists the keys of one of its accounts: ?account=<id>.');
}
