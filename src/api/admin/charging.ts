import { z } from 'zod';
import { TokenGridError, type Clock } from '../../core/index.ts';
import type { AccountDeps } from '../../accounts/index.ts';
import type { BucketBalance, ChargingService } from '../../charging/index.ts';
import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { failWith, isoOrNull, parseBody, requireAccountAccess, requireWrite } from './common.ts';

export interface ChargingAdminDeps {
  accounts: AccountDeps;
  charging: ChargingService;
  clock: Clock;
  bodyLimitBytes: number;
}

export const bucketView = (b: BucketBalance) => ({
  id: b.id, unit: b.unit, currency: b.currency, kind: b.kind, memberId: b.memberId, granted: b.amount, used: b.used,
  reserved: b.reserved, remaining: b.remaining, forfeited: b.forfeited, effectiveAt: isoOrNull(b.effectiveAtMs),
  expiresAt: isoOrNull(b.expiresAtMs), expired: b.expired, models: b.models, priority: b.priority, source: b.sourceRef,
});

const iso = z.string().datetime({ offset: true });

const grantBody = z.object({
  unit: z.enum(['tokens', 'requests', 'money']).default('tokens'),
  amount: z.number().int().positive().max(1e15),
  currency: z.string().length(3).optional(),
  kind: z.enum(['plan_allowance', 'addon', 'trial', 'points', 'code', 'manual']).default('manual'),
  effectiveAt: iso.optional(),
  expiresAt: iso.nullable().optional(),
  priority: z.number().int().optional(),
  models: z.array(z.string()).nullable().optional(),
  memberId: z.string().nullable().optional(),
  reference: z.string().min(1).max(200).optional(),
}).strict();

const topupBody = z.object({
  amountMinor: z.number().int().positive().max(1e12),
  currency: z.string().length(3).default('CNY'),
  reference: z.string().min(1).max(200).optional(),
}).strict();

const policyBody = z.object({
  overage: z.enum(['block', 'wallet', 'postpaid']),
  creditLimitMinor: z.number().int().nonnegative().max(1e12).optional(),
  currency: z.string().length(3).optional(),
}).strict();

export function chargingAdminRoutes(deps: ChargingAdminDeps): Route<AdminIdentity>[] {
  const parentOf = async (id: string) => (await deps.accounts.store.getAccount(id))?.parentId;
  const account = async (admin: AdminIdentity, id: string) => {
    await requireAccountAccess(admin, id, parentOf);
    const a = await deps.accounts.store.getAccount(id);
    if (!a) throw new TokenGridError('not_found', `account ${id} does not exist`);
    return a;
  };
  const range = (q: URLSearchParams) => {
    const now = deps.clock.nowMs();
    const fromMs = q.get('from') ? Date.parse(q.get('from')!) : now - 30 * 86_400_000;
    const toMs = q.get('to') ? Date.parse(q.get('to')!) : now + 1;
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) throw new TokenGridError('invalid_request', 'from and to must be ISO dates');
    return { fromMs, toMs };
  };
  return [
    {
      method: 'POST', path: '/admin/accounts/:id/grants', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        requireWrite(admin);
        const body = await parseBody(rc, grantBody, deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        const now = deps.clock.nowMs();
        const r = await deps.charging.grantBucket({
          accountId: a.id, memberId: body.memberId ?? null, unit: body.unit, currency: body.unit === 'money' ? body.currency ?? 'CNY' : null,
          amount: body.amount, kind: body.kind, effectiveAtMs: body.effectiveAt ? Date.parse(body.effectiveAt) : now,
          expiresAtMs: body.expiresAt ? Date.parse(body.expiresAt) : null, priority: body.priority, models: body.models ?? null,
          sourceRef: body.reference !== undefined ? `client:${body.reference}` : `grant:${rc.requestId}`, // client namespace (charging clientRef)
        });
        if (!r.ok) failWith(r.code, r.message);
        const balance = (await deps.charging.listBuckets(a.id)).find((b) => b.id === r.value.id);
        sendJson(rc.res, 201, balance ? bucketView(balance) : r.value);
      },
    },
    {
      method: 'POST', path: '/admin/accounts/:id/topups', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        requireWrite(admin);
        const body = await parseBody(rc, topupBody, deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        const r = await deps.charging.topUpWallet({ accountId: a.id, currency: body.currency, amountMinor: body.amountMinor, sourceRef: body.reference !== undefined ? `client:${body.reference}` : `topup:${rc.requestId}` }); // client namespace
        if (!r.ok) failWith(r.code, r.message);
        const balance = (await deps.charging.listBuckets(a.id)).find((b) => b.id === r.value.id);
        sendJson(rc.res, 201, balance ? bucketView(balance) : r.value);
      },
    },
    {
      method: 'PUT', path: '/admin/accounts/:id/policy', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        requireWrite(admin);
        const body = await parseBody(rc, policyBody, deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        const r = await deps.charging.setAccountPolicy(a.id, body);
        if (!r.ok) failWith(r.code, r.message);
        sendJson(rc.res, 200, r.value);
      },
    },
    {
      method: 'PUT', path: '/admin/accounts/:id/members/:memberId/cap', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        requireWrite(admin);
        const body = await parseBody(rc, z.object({ tokensPerCycle: z.number().int().nonnegative().nullable() }).strict(), deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        const r = await deps.charging.setMemberCap(a.id, rc.params.memberId!, { tokensPerCycle: body.tokensPerCycle });
        if (!r.ok) failWith(r.code, r.message);
        sendJson(rc.res, 200, r.value);
      },
    },
    {
      method: 'GET', path: '/admin/accounts/:id/balance', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        const a = await account(admin, rc.params.id!);
        sendJson(rc.res, 200, { accountId: a.id, buckets: (await deps.charging.listBuckets(a.id)).map(bucketView) });
      },
    },
    {
      method: 'GET', path: '/admin/accounts/:id/usage', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        const a = await account(admin, rc.params.id!);
        const r = range(rc.query);
        const summary = rc.query.get('detail') !== 'records';
        sendJson(rc.res, 200, summary
          ? { accountId: a.id, from: isoOrNull(r.fromMs), to: isoOrNull(r.toMs), data: await deps.charging.usageSummary(a.id, r) }
          : { accountId: a.id, from: isoOrNull(r.fromMs), to: isoOrNull(r.toMs), data: await deps.charging.listUsage(a.id, r) });
      },
    },
    {
      method: 'GET', path: '/admin/accounts/:id/events', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        const a = await account(admin, rc.params.id!);
        sendJson(rc.res, 200, { data: await deps.charging.listEvents(a.id, { afterId: rc.query.get('after') ?? undefined, limit: 200 }) });
      },
    },
    {
      method: 'GET', path: '/admin/usage/:requestId', family: 'admin', auth: 'admin',
      async handler(rc, admin) {
        const rec = await deps.charging.getUsageRecord(rc.params.requestId!);
        if (!rec) throw new TokenGridError('not_found', `no usage record for request ${rc.params.requestId}`);
        await account(admin, rec.accountId);
        sendJson(rc.res, 200, rec);
      },
    },
  ];
}
