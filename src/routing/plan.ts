import { sha256Hex, type Random } from '../core/index.ts';
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

/**
 * The ordered attempts for one request: the model's deployments in weighted order, then each fallback
 * model's, skipping deployments whose breaker is open; at most `attemptsMax` in all.
 * Returns [] when nothing is available (the gateway answers no_healthy_deployment).
 */
export function planAttempts(
  primary: ModelSpec,
  fallbacks: readonly ModelSpec[],
  isAvailable: (deploymentId: string) => boolean,
  random: Random,
  stickyKey?: string,
): Attempt[] {
  const out: Attempt[] = [];
  const max = Math.max(1, primary.attemptsMax);
  for (const model of [primary, ...fallbacks]) {
    const healthy = model.deployments.filter((d) => isAvailable(d.id));
    const order = stickyKey !== undefined && model === primary ? rendezvousOrder(healthy, stickyKey) : weightedOrder(healthy, random);
    for (const deployment of order) {
      if (out.length >= max) return out;
      out.push({ model, deployment });
    }
  }
  return out;
}

/**
 * Prompt-prefix stickiness (issue 17 item 5): deployments ordered by weighted rendezvous hashing of `key` (the
 * prompt prefix's hash): every request with that prefix tries the same deployment first, so the vendor's prompt
 * cache there hits; when it is unhealthy (filtered out before) the next in this order takes over, and the other
 * prefixes keep theirs. Weight w scores -w / ln(u), u uniform in (0, 1) from sha256(key, deployment id): each
 * deployment is first for a share of the prefixes proportional to its weight; weight 0 goes last.
 */
export function rendezvousOrder<T extends { id: string; weight: number }>(items: readonly T[], key: string): T[] {
  if (items.length <= 1) return [...items];
  const keyed = items.map((item) => {
    const u = (Number.parseInt(sha256Hex(`${key}\n${item.id}`).slice(0, 13), 16) + 0.5) / 2 ** 52;
    return { item, score: item.weight > 0 ? -item.weight / Math.log(u) : -1 };
  });
  keyed.sort((a, b) => b.score - a.score);
  return keyed.map((k) => k.item);
}
