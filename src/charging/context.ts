/** Shared helpers of the use cases: resolved config, eligibility context, cycle of a member's cap. */
import type { ChargingDeps } from './service.ts';
import type { ChargingConfig, MemberCap, ModelRate, Reservation } from './types.ts';
import { defaultChargingConfig } from './types.ts';
import type { EligibilityContext } from './burn-down.ts';
import type { Work } from './work.ts';
import { cycleIndexAt } from './cycle.ts';
import { forfeitExpired, renewDueCycles } from './renew.ts';

export interface Ctx {
  deps: ChargingDeps;
  config: ChargingConfig;
  newId: (prefix: string) => string;
  /** Expired-leftover sweeps are complete up to this time (in-process watermark; 0 = look at everything). */
  sweptLeftoversUntilMs: number;
}

export function makeCtx(deps: ChargingDeps): Ctx {
  return { deps, config: { ...defaultChargingConfig, ...deps.config }, newId: (p) => deps.ids.next(p), sweptLeftoversUntilMs: 0 };
}

/** Every account operation first brings the account to `now`: due cycles created, expired leftovers forfeited. */
export function catchUp(ctx: Ctx, w: Work): number {
  const created = renewDueCycles(w, () => ctx.newId('bkt'));
  forfeitExpired(w);
  return created;
}

export function eligibility(ctx: Ctx, w: Work, r: { memberId: string | null; model: string; rate: ModelRate; currency: string }): EligibilityContext {
  return { nowMs: w.nowMs, memberId: r.memberId, model: r.model, rate: r.rate, currency: r.currency, overage: w.policy?.overage ?? ctx.config.defaultOverage };
}

/** Members without an explicit cap are still metered per calendar month (UTC), so a cap set mid-month counts. */
export function capOf(w: Work, accountId: string, memberId: string): MemberCap {
  if (w.memberCap !== null && w.memberCap.memberId === memberId) return w.memberCap;
  return { accountId, memberId, tokensPerCycle: null, cycle: 'month', anchorMs: 0 };
}

export function capCycleIndex(cap: MemberCap, nowMs: number): number {
  return cycleIndexAt(cap.anchorMs, cap.cycle, nowMs);
}

export function isRequestPaid(r: Reservation): boolean {
  return r.allocations.some((a) => a.unit === 'requests');
}
