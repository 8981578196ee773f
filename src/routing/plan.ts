import type { Random } from '../core/index.ts';
import type { Deployment, ModelSpec } from '../catalog/index.ts';

export interface Attempt {
  model: ModelSpec;
  deployment: Deployment;
}

/** Weighted order without replacement (Efraimidis-Spirakis keys), from an injected Random. */
export function weightedOrder<T extends { weight: number }>(items: readonly T[], random: Random): T[] {
  if (items.length <= 1) return [...items];
  const keyed = items.map((item) => ({ item, key: item.weight > 0 ? random.float() ** (1 / item.weight) : -1 }));
  keyed.sort((a, b) => b.key - a.key);
  return keyed.map((k) => k.item);
}

/** Data residency: may this deployment serve a request pinned to `regions` (undefined: not pinned)? */
export function inRegions(d: Deployment, regions: readonly string[] | undefined): boolean {
  return regions === undefined || regions.includes(d.region);
}

/** Does the model (or one of its fallbacks) have any deployment in the pinned regions, healthy or not? */
export function servedInRegions(models: readonly ModelSpec[], regions: readonly string[] | undefined): boolean {
  return regions === undefined || models.some((m) => m.deployments.some((d) => regions.includes(d.region)));
}

/**
 * The ordered attempts for one request: the model's deployments in weighted order, then each fallback
 * model's, skipping deployments whose breaker is open and, for a request pinned to regions (data residency),
 * every deployment outside them (fallbacks included); at most `attemptsMax` in all.
 * Returns [] when nothing is available (the gateway answers no_healthy_deployment or no_deployment_in_region).
 */
export function planAttempts(
  primary: ModelSpec,
  fallbacks: readonly ModelSpec[],
  isAvailable: (deploymentId: string) => boolean,
  random: Random,
  regions?: readonly string[],
): Attempt[] {
  const out: Attempt[] = [];
  const max = Math.max(1, primary.attemptsMax);
  for (const model of [primary, ...fallbacks]) {
    const healthy = model.deployments.filter((d) => isAvailable(d.id) && inRegions(d, regions));
    for (const deployment of weightedOrder(healthy, random)) {
      if (out.length >= max) return out;
      out.push({ model, deployment });
    }
  }
  return out;
}
