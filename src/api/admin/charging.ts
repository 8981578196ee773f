import { z } from 'zod';
import { TokenGridError, isIsoCurrency, type Clock } from '../../core/index.ts';
import type { AccountDeps } from '../../accounts/index.ts';
import { clientRef, type BucketBalance, type ChargingService } from '../../charging/index.ts';
import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { noteAudit } from './audit.ts';
import { failWith, isoOrNull, parseBody, requireAccountAccess } from './common.ts';
import { authorize } from './permissions.ts';

export interface ChargingAdminDeps {
  accounts: AccountDeps;
  charging: ChargingService;
  clock: Clock;
  bodyLimitBytes: number;
  /** Does a model, alias or group of this name exist? (grants that name models are checked) */
  modelExists?: (name: string) => boolean;
}

export const bucketView = (b: BucketBalance) => ({
  id: b.id,
  unit: b.unit,
  currency: b.currency,
  kind: b.kind,
  memberId: b.memberId,
  granted: b.amount,
  used: b.used,
  reserved: b.reserved,
  remaining: b.remaining,
  forfeited: b.forfeited,
  effectiveAt: isoOrNull(b.effectiveAtMs),
  expiresAt: isoOrNull(b.expiresAtMs),
  expired: b.expired,
  models: b.models,
  priority: b.priority,
  source: b.sourceRef,
});

const iso = z.string().datetime({ offset: true });
/** An ISO 4217 code (src/core/currencies.ts); a made-up currency is refused. */
const currency = z.string().length(3).refine(isIsoCurrency, { message: 'must be an ISO 4217 currency code such as CNY, USD, EUR' });

const grantBody = z
  .object({
    unit: z.enum(['tokens', 'requests', 'money']).default('tokens'),
    amount: z.number().int().positive().max(1e15),
    currency: currency.optional(),
    kind: z.enum(['plan_allowance', 'addon', 'trial', 'points', 'code', 'manual']).default('manual'),
    effectiveAt: iso.optional(),
    expiresAt: iso.nullable().optional(),
    priority: z.number().int().optional(),
    models: z.array(z.string()).nullable().optional(),
    memberId: z.string().nullable().optional(),
    reference: z.string().min(1).max(200).optional(),
  })
  .strict();

const topupBody = z
  .object({
    amountMinor: z.number().int().positive().max(1e12),
    currency: currency.default('CNY'),
    reference: z.string().min(1).max(200).optional(),
  })
  .strict();

const policyBody = z
  .object({
    overage: z.enum(['block', 'wallet', 'postpaid']),
    creditLimitMinor: z.number().int().nonnegative().max(1e12).optional(),
    currency: currency.optional(),
  })
  .strict();

/** The request body of each route, by route: the OpenAPI document is generated from these (billing-openapi.ts). */
export const chargingBodies = {
  'POST /admin/accounts/:id/grants': grantBody,
  'POST /admin/accounts/:id/topups': topupBody,
  'PUT /admin/accounts/:id/policy': policyBody,
  'PUT /admin/accounts/:id/members/:memberId/cap': z.object({ tokensPerCycle: z.number().int().nonnegative().nullable() }).strict(),
};

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
      method: 'POST',
      path: '/admin/accounts/:id/grants',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, grantBody, deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        const now = deps.clock.nowMs();
        // References are checked: the member belongs to this account, the models exist, the period is not empty.
        if (body.memberId) {
          const m = await deps.accounts.store.getMember(body.memberId);
          if (m === undefined || m.accountId !== a.id)
            throw new TokenGridError('not_found', `memberId: member ${body.memberId} is not a member of account ${a.id}.`, 'memberId');
        }
        const unknown = (body.models ?? []).filter((m) => deps.modelExists !== undefined && !deps.modelExists(m));
        if (unknown.length > 0) throw new TokenGridError('model_not_found', `models: no model, alias or group named ${unknown.join(', ')}.`, 'models');
        const effectiveAtMs = body.effectiveAt ? Date.parse(body.effectiveAt) : now;
        const expiresAtMs = body.expiresAt ? Date.parse(body.expiresAt) : null;
        if (expiresAtMs !== null && expiresAtMs <= effectiveAtMs)
          throw new TokenGridError('invalid_request', 'expiresAt: must be after effectiveAt (the grant would never be usable).', 'expiresAt');
        const r = await deps.charging.grantBucket({
          accountId: a.id,
          memberId: body.memberId ?? null,
          unit: body.unit,
          currency: body.unit === 'money' ? (body.currency ?? 'CNY') : null,
          amount: body.amount,
          kind: body.kind,
          effectiveAtMs,
          expiresAtMs,
          priority: body.priority,
          models: body.models ?? null,
          sourceRef: body.reference !== undefined ? clientRef(body.reference) : `grant:${rc.requestId}`,
        });
        if (!r.ok) failWith(r.code, r.message);
        noteAudit(rc, {
          target: r.value.id,
          accountId: a.id,
          after: {
            bucketId: r.value.id,
            unit: body.unit,
            amount: body.amount,
            kind: body.kind,
            currency: body.unit === 'money' ? (body.currency ?? 'CNY') : null,
            memberId: body.memberId ?? null,
            reference: body.reference ?? null,
          },
        });
        const balance = (await deps.charging.listBuckets(a.id)).find((b) => b.id === r.value.id);
        sendJson(rc.res, 201, balance ? bucketView(balance) : r.value);
      },
    },
    {
      method: 'POST',
      path: '/admin/accounts/:id/topups',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, topupBody, deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        const r = await deps.charging.topUpWallet({
          accountId: a.id,
          currency: body.currency,
          amountMinor: body.amountMinor,
          sourceRef: body.reference !== undefined ? clientRef(body.reference) : `topup:${rc.requestId}`,
        });
        if (!r.ok) failWith(r.code, r.message);
        noteAudit(rc, {
          target: r.value.id,
          accountId: a.id,
          after: { bucketId: r.value.id, amountMinor: body.amountMinor, currency: body.currency, reference: body.reference ?? null },
        });
        const balance = (await deps.charging.listBuckets(a.id)).find((b) => b.id === r.value.id);
        sendJson(rc.res, 201, balance ? bucketView(balance) : r.value);
      },
    },
    {
      method: 'PUT',
      path: '/admin/accounts/:id/policy',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, policyBody, deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        // A credit line (postpaid overage, a credit limit) creates spendable value: operator-only.
        if (body.overage === 'postpaid' || (body.creditLimitMinor ?? 0) > 0) authorize(admin, 'policy.credit');
        const r = await deps.charging.setAccountPolicy(a.id, body);
        if (!r.ok) failWith(r.code, r.message);
        noteAudit(rc, { accountId: a.id, after: r.value });
        sendJson(rc.res, 200, r.value);
      },
    },
    {
      method: 'PUT',
      path: '/admin/accounts/:id/members/:memberId/cap',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, chargingBodies['PUT /admin/accounts/:id/members/:memberId/cap'], deps.bodyLimitBytes);
        const a = await account(admin, rc.params.id!);
        const r = await deps.charging.setMemberCap(a.id, rc.params.memberId!, { tokensPerCycle: body.tokensPerCycle });
        if (!r.ok) failWith(r.code, r.message);
        noteAudit(rc, { target: rc.params.memberId!, accountId: a.id, after: { tokensPerCycle: body.tokensPerCycle } });
        sendJson(rc.res, 200, r.value);
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts/:id/balance',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const a = await account(admin, rc.params.id!);
        sendJson(rc.res, 200, { accountId: a.id, buckets: (await deps.charging.listBuckets(a.id)).map(bucketView) });
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts/:id/usage',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const a = await account(admin, rc.params.id!);
        const r = range(rc.query);
        const summary = rc.query.get('detail') !== 'records';
        sendJson(
          rc.res,
          200,
          summary
            ? { accountId: a.id, from: isoOrNull(r.fromMs), to: isoOrNull(r.toMs), data: await deps.charging.usageSummary(a.id, r) }
            : { accountId: a.id, from: isoOrNull(r.fromMs), to: isoOrNull(r.toMs), data: await deps.charging.listUsage(a.id, r) },
        );
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts/:id/events',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const a = await account(admin, rc.params.id!);
        sendJson(rc.res, 200, { data: await deps.charging.listEvents(a.id, { afterId: rc.query.get('after') ?? undefined, limit: 200 }) });
      },
    },
    {
      method: 'GET',
      path: '/admin/usage/:requestId',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const rec = await deps.charging.getUsageRecord(rc.params.requestId!);
        if (!rec) throw new TokenGridError('not_found', `no usage record for request ${rc.params.requestId}`);
        await account(admin, rec.accountId);
        sendJson(rc.res, 200, rec);
      },
    },
  ];
}
