import type { Clock, Random } from '../core/index.ts';
import type { Deployment, ModelSpec, Ratio } from '../catalog/index.ts';
import { type Attempt, inRegions, weightedOrder } from './plan.ts';

/**
 * `model: "auto"` (issue 17 item 1): the gateway picks the model. Pure: latency comes from a LatencyTracker
 * fed at settle, randomness from the injected Random.
 */
export type AutoPolicy = 'balanced' | 'cheap' | 'best';

const POLICIES: Readonly<Record<string, AutoPolicy>> = { auto: 'balanced', 'auto:balanced': 'balanced', 'auto:cheap': 'cheap', 'auto:best': 'best' };

/** null: not an auto request (the ordinary path); 'unknown': `auto:<something>` this gateway does not know. */
export function parseAutoModel(requested: string): AutoPolicy | 'unknown' | null {
  if (requested.charCodeAt(0) !== 97 /* a */ || !(requested === 'auto' || requested.startsWith('auto:'))) return null;
  return POLICIES[requested] ?? 'unknown';
}

/**
 * Exponentially weighted moving averages of latency and time to first token per deployment (ms). A figure
 * older than `staleAfterMs` (by the injected clock) counts as unmeasured, so a deployment that was slow once
 * and then left alone is tried (and measured) again.
 */
export class LatencyTracker {
  readonly #latency = new Map<string, number>();
  readonly #ttft = new Map<string, number>();
  readonly #atMs = new Map<string, number>();
  constructor(
    private readonly clock: Clock,
    private readonly alpha = 0.2,
    private readonly staleAfterMs = 300_000,
  ) {}
  observe(deploymentId: string, latencyMs: number, ttftMs: number | null): void {
    const stale = this.#stale(deploymentId);
    const prev = stale ? undefined : this.#latency.get(deploymentId);
    this.#latency.set(deploymentId, prev === undefined ? latencyMs : prev + this.alpha * (latencyMs - prev));
    if (stale) this.#ttft.delete(deploymentId);
    if (ttftMs !== null) {
      const p = this.#ttft.get(deploymentId);
      this.#ttft.set(deploymentId, p === undefined ? ttftMs : p + this.alpha * (ttftMs - p));
    }
    this.#atMs.set(deploymentId, this.clock.nowMs());
  }
  #stale(deploymentId: string): boolean {
    const at = this.#atMs.get(deploymentId);
    return at === undefined || this.clock.nowMs() - at > this.staleAfterMs;
  }
  /** The figure a chooser compares: time to first token when streamed requests measured it, else latency. */
  latencyMs(deploymentId: string): number | undefined {
    if (this.#stale(deploymentId)) return undefined;
    return this.#ttft.get(deploymentId) ?? this.#latency.get(deploymentId);
  }
  snapshot(): Record<string, { latencyMs: number; ttftMs: number | null }> {
    const out: Record<string, { latencyMs: number; ttftMs: number | null }> = {};
    for (const [id, l] of this.#latency) out[id] = { latencyMs: Math.round(l), ttftMs: this.#ttft.has(id) ? Math.round(this.#ttft.get(id)!) : null };
    return out;
  }
}

export interface AutoChoiceInput {
  policy: AutoPolicy;
  /** Models of the right kind the key may use; those without a tier are ignored. */
  candidates: readonly ModelSpec[];
  /** Whether the account's package allowance pays for the model (else it would spill to the wallet). */
  covered: (model: ModelSpec) => boolean;
  isAvailable: (deploymentId: string) => boolean;
  latencyMs: (deploymentId: string) => number | undefined;
  tokensInput: number;
  tokensOutput: number;
  /** Data residency: only deployments in these regions count (undefined: anywhere). */
  regions?: readonly string[];
}

export interface AutoChoice {
  model: ModelSpec;
  reason: string;
}

const ratio = (r: Ratio): number => r.num / r.den;

/** Expected coins of the usage on this model (a ranking figure, not a charge). */
export function expectedCoins(model: ModelSpec, tokensInput: number, tokensOutput: number): number {
  return ratio(model.coins.input) * tokensInput + ratio(model.coins.output) * tokensOutput;
}

/** The best (lowest) measured latency among the model's available deployments; undefined when none measured. */
function modelLatency(model: ModelSpec, input: AutoChoiceInput): number | undefined {
  let best: number | undefined;
  for (const d of model.deployments) {
    if (!input.isAvailable(d.id) || !inRegions(d, input.regions)) continue;
    const l = input.latencyMs(d.id);
    if (l !== undefined && (best === undefined || l < best)) best = l;
  }
  return best;
}

/**
 * The model for an auto request: among tiered candidates with an available deployment, those the package
 * pays for first (any other only when none is covered); then by policy: `cheap` the lowest expected coins,
 * `best` the highest tier, `balanced` the lowest price x latency / tier (relative to the cheapest and the
 * fastest). Ties: cheaper, then faster, then higher tier, then id. null when nothing qualifies.
 */
export function chooseAutoModel(input: AutoChoiceInput): AutoChoice | null {
  const usable = input.candidates.filter((m) => m.tier !== undefined && m.deployments.some((d) => input.isAvailable(d.id) && inRegions(d, input.regions)));
  if (usable.length === 0) return null;
  const covered = usable.filter(input.covered);
  const pool = covered.length > 0 ? covered : usable;
  const where = covered.length > 0 ? 'covered' : 'wallet';
  const rows = pool.map((model) => ({
    model,
    price: expectedCoins(model, input.tokensInput, input.tokensOutput),
    latency: modelLatency(model, input),
    tier: model.tier!,
  }));
  const minPrice = Math.min(...rows.map((r) => r.price));
  const measured = rows.map((r) => r.latency).filter((l): l is number => l !== undefined);
  const minLatency = measured.length > 0 ? Math.min(...measured) : undefined;
  const relLatency = (l: number | undefined): number => (l === undefined || minLatency === undefined || minLatency <= 0 ? 1 : l / minLatency);
  const relPrice = (p: number): number => (minPrice <= 0 ? 1 + p : p / minPrice);
  type Row = (typeof rows)[number];
  const tie = (a: Row, b: Row): number =>
    a.price - b.price || (a.latency ?? Number.MAX_VALUE) - (b.latency ?? Number.MAX_VALUE) || b.tier - a.tier || (a.model.id < b.model.id ? -1 : 1);
  let cmp: (a: Row, b: Row) => number;
  let reason: string;
  switch (input.policy) {
    case 'cheap':
      cmp = tie;
      reason = `cheapest-${where}`;
      break;
    case 'best':
      cmp = (a, b) => b.tier - a.tier || tie(a, b);
      reason = `best-${where}`;
      break;
    case 'balanced': {
      const score = (r: Row): number => (relPrice(r.price) * relLatency(r.latency)) / r.tier;
      cmp = (a, b) => score(a) - score(b) || tie(a, b);
      reason = `balanced-${where}`;
      break;
    }
  }
  rows.sort(cmp);
  return { model: rows[0]!.model, reason };
}

/**
 * Deployments of an auto-chosen model by power of two choices: two healthy deployments drawn by weight
 * (the first two of a weighted order), the one with the lower measured latency first (an unmeasured one is
 * tried first, so it gets measured); the rest in weighted order; then the fallbacks as planAttempts does.
 */
export function planAutoAttempts(
  primary: ModelSpec,
  fallbacks: readonly ModelSpec[],
  isAvailable: (deploymentId: string) => boolean,
  latencyMs: (deploymentId: string) => number | undefined,
  random: Random,
  regions?: readonly string[],
): Attempt[] {
  const out: Attempt[] = [];
  const max = Math.max(1, primary.attemptsMax);
  for (const model of [primary, ...fallbacks]) {
    const order: Deployment[] = weightedOrder(
      model.deployments.filter((d) => isAvailable(d.id) && inRegions(d, regions)),
      random,
    );
    if (order.length >= 2) {
      const a = latencyMs(order[0]!.id);
      const b = latencyMs(order[1]!.id);
      if (a !== undefined && (b === undefined || b < a)) [order[0], order[1]] = [order[1]!, order[0]!];
    }
    for (const deployment of order) {
      if (out.length >= max) return out;
      out.push({ model, deployment });
    }
  }
  return out;
}

/** The `x-tokengrid-route` header value. */
export function routeHeader(choice: AutoChoice): string {
  return `model=${choice.model.id}; reason=${choice.reason}; tier=${choice.model.tier ?? 0}`;
}
