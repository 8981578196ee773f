import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';

/** Billing admin routes (issue 5): offers, subscriptions, orders, codes, bills. Filled in by the billing work. */
export function billingAdminRoutes(_deps: unknown): Route<AdminIdentity>[] {
  return [];
}
