/** Admin routes for finance: bill runs, bills (JSON, CSV), payments, vendor settlement, margins; admin keys; entitlements. */
import { z } from 'zod';
import { TokenGridError } from '../../core/index.ts';
import { sendJson, sendText } from '../http.ts';
import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { noteAudit } from './audit.ts';
import { isoOrNull, parseBody } from './common.ts';
import { accessGuard, actorOf, billView, parseDate, value, type BillingRouteDeps } from './billing-common.ts';

export const financeSchemas = {
  billRun: z.object({ period: z.string() }).strict(),
  adminKey: z
    .object({
      name: z.string().min(1).max(100),
      role: z.enum(['operator', 'enterprise', 'finance']),
      accountIds: z.array(z.string().min(1)).min(1).max(1000).optional(),
    })
    .strict(),
};

/** Scope rule account-query: without ?account= only operator and finance (who see every account) may list. */
function requireFinance(admin: AdminIdentity): void {
  if (admin.accountIds !== null) throw new TokenGridError('permission_denied', 'Finance reports are for operator and finance admins.');
}

export function billingFinanceRoutes(deps: BillingRouteDeps): Route<AdminIdentity>[] {
  const b = deps.billing;
  const access = accessGuard(deps);
  const billOf = async (admin: AdminIdentity, id: string) => {
    const bill = await b.getBill(id);
    if (bill === undefined) throw new TokenGridError('not_found', `Bill ${id} does not exist.`);
    await access(admin, bill.accountId);
    return bill;
  };
  return [
    {
      method: 'POST',
      path: '/admin/bills/run',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        const body = await parseBody(rc, financeSchemas.billRun, deps.bodyLimitBytes);
        sendJson(rc.res, 200, value(await b.runBills(body.period)));
      },
    },
    {
      method: 'GET',
      path: '/admin/bills',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const accountId = rc.query.get('account') ?? undefined;
        if (accountId !== undefined) await access(admin, accountId);
        else if (admin.accountIds !== null)
          throw new TokenGridError('invalid_request', 'An enterprise admin lists one account at a time: ?account=<id>.', 'account');
        const bills = await b.listBills({ accountId, period: rc.query.get('period') ?? undefined });
        sendJson(rc.res, 200, { data: bills.map(billView) });
      },
    },
    {
      method: 'GET',
      path: '/admin/bills/preview',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const accountId = rc.query.get('account');
        if (accountId === null) throw new TokenGridError('invalid_request', 'give ?account=<id>&period=YYYY-MM', 'account');
        await access(admin, accountId);
        const period = rc.query.get('period') ?? new Date(deps.clock.nowMs()).toISOString().slice(0, 7);
        sendJson(rc.res, 200, { preview: true, ...billView(value(await b.previewBill(accountId, period))) });
      },
    },
    {
      // GET /admin/bills/<id>, /admin/bills/<id>.json, /admin/bills/<id>.csv (or ?format=csv)
      method: 'GET',
      path: '/admin/bills/:id',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const raw = rc.params.id!;
        const csv = raw.endsWith('.csv') || rc.query.get('format') === 'csv';
        const id = raw.replace(/\.(csv|json)$/, '');
        const bill = await billOf(admin, id);
        if (csv) sendText(rc.res, 200, b.billCsv(bill), 'text/csv; charset=utf-8');
        else sendJson(rc.res, 200, { ...billView(bill), carrierPayments: await b.listPayments({ billId: bill.id }) });
      },
    },
    {
      method: 'GET',
      path: '/admin/payments',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const accountId = rc.query.get('account') ?? undefined;
        if (accountId !== undefined) await access(admin, accountId);
        else requireFinance(admin);
        const data = await b.listPayments({ accountId, billId: rc.query.get('bill') ?? undefined, orderId: rc.query.get('order') ?? undefined });
        sendJson(rc.res, 200, { data: data.map((p) => ({ ...p, createdAt: isoOrNull(p.createdAtMs), updatedAt: isoOrNull(p.updatedAtMs) })) });
      },
    },
    {
      method: 'POST',
      path: '/admin/payments/deliver',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        rc.req.resume();
        sendJson(rc.res, 200, await b.deliverCarrierCharges());
      },
    },
    {
      method: 'POST',
      path: '/admin/renewals/run',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        rc.req.resume();
        // 200 with the accounts that failed listed (and logged): one account's failure never fails the run.
        sendJson(rc.res, 200, await b.renewDueReport());
      },
    },
    {
      method: 'GET',
      path: '/admin/reports/vendor-settlement',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        const now = deps.clock.nowMs();
        const fromMs = parseDate(rc.query, 'from', Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1));
        const toMs = parseDate(rc.query, 'to', now + 1);
        if (toMs <= fromMs) throw new TokenGridError('invalid_request', 'to must be after from', 'to');
        sendJson(rc.res, 200, await b.vendorSettlement(fromMs, toMs));
      },
    },
    {
      method: 'GET',
      path: '/admin/reports/margin',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        const period = rc.query.get('period') ?? new Date(deps.clock.nowMs()).toISOString().slice(0, 7);
        sendJson(rc.res, 200, value(await b.marginReport(period)));
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts/:id/entitlements',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        await access(admin, rc.params.id!);
        sendJson(rc.res, 200, await b.entitlements(rc.params.id!));
      },
    },
    {
      method: 'GET',
      path: '/admin/accounts/:id/statement',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        await access(admin, rc.params.id!);
        sendJson(rc.res, 200, await b.balance(rc.params.id!, rc.query.get('member')));
      },
    },
    {
      method: 'POST',
      path: '/admin/admin-keys',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        const body = await parseBody(rc, financeSchemas.adminKey, deps.bodyLimitBytes);
        for (const id of body.accountIds ?? []) await access(admin, id);
        const r = value(await b.adminKeys.create({ ...body, createdBy: actorOf(admin) }));
        const { hash: _hash, ...record } = r.record;
        noteAudit(rc, {
          target: record.id,
          after: { id: record.id, name: record.name, role: record.role, accountIds: record.accountIds, prefix: record.prefix },
        });
        sendJson(rc.res, 201, { key: r.key, ...record, createdAt: isoOrNull(record.createdAtMs) });
      },
    },
    {
      method: 'GET',
      path: '/admin/admin-keys',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        sendJson(rc.res, 200, {
          data: (await b.adminKeys.list()).map(({ hash: _hash, ...k }) => ({ ...k, createdAt: isoOrNull(k.createdAtMs), revokedAt: isoOrNull(k.revokedAtMs) })),
        });
      },
    },
    {
      method: 'POST',
      path: '/admin/admin-keys/:id/revoke',
      family: 'admin',
      auth: 'admin',
      async handler(rc) {
        rc.req.resume();
        const { hash: _hash, ...k } = value(await b.adminKeys.revoke(rc.params.id!));
        noteAudit(rc, { target: k.id, after: { revokedAt: isoOrNull(k.revokedAtMs), role: k.role } });
        sendJson(rc.res, 200, { ...k, revokedAt: isoOrNull(k.revokedAtMs) });
      },
    },
  ];
}
