/**
 * Data residency (issue 17 item 3): where an account's pin comes from. Its package's offers may carry `regions`
 * (billing entitlements: the intersection of its live plan and payg offers' pins); an operator may set or lift
 * an account's own pin with PATCH /admin/accounts/:id `regions` (action account.regions), which wins over the
 * package's. The key snapshot serves the result to authentication (ctx.regions); routing keeps a pinned
 * request's attempts, fallbacks included, inside the regions (routing/plan.ts planAttempts, auto.ts).
 */
import type { Account } from '../accounts/index.ts';
import type { AccountRouting } from '../gateway/index.ts';

/** The routing the key snapshot serves: each account's package routing, with an operator's residency pin (PATCH /admin/accounts/:id) over the package's. */
export function withRegionPins(byPackage: ReadonlyMap<string, AccountRouting>, accounts: readonly Account[]): ReadonlyMap<string, AccountRouting> {
  if (!accounts.some((a) => a.regions !== undefined)) return byPackage;
  const out = new Map(byPackage);
  for (const a of accounts) if (a.regions !== undefined) out.set(a.id, { ...byPackage.get(a.id), regions: a.regions });
  return out;
}
