import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import type { BillingRouteDeps } from './billing-common.ts';
import { billingFinanceRoutes } from './billing-finance.ts';
import { openApiDocument } from './billing-openapi.ts';
import { billingOrderRoutes } from './billing-orders.ts';

export type { BillingRouteDeps } from './billing-common.ts';

/** Billing admin routes (issue 5): offers, subscriptions, orders, codes, points, bills, reports, admin keys, OpenAPI. */
export function billingAdminRoutes(deps: BillingRouteDeps): Route<AdminIdentity>[] {
  return [
    ...billingOrderRoutes(deps),
    ...billingFinanceRoutes(deps),
    { method: 'GET', path: '/admin/openapi.json', family: 'admin', auth: 'admin', handler: (rc) => sendJson(rc.res, 200, openApiDocument()) },
  ];
}
