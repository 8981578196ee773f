import type { Clock } from '../core/index.ts';

export interface BreakerPolicy {
  /** Consecutive failures that open the breaker. */
  failuresToOpen: number;
  /** How long an open breaker keeps the deployment out before one probe is let through. */
  cooldownMs: number;
}

export const defaultBreakerPolicy: BreakerPolicy = { failuresToOpen: 3, cooldownMs: 30_000 };

type BreakerState = { failures: number; openedAtMs: number | null; probeInFlight: boolean };

export type HealthState = 'closed' | 'open' | 'half_open';

/**
 * Circuit breaker per deployment. Closed: serve. After `failuresToOpen` consecutive failures: open (skipped)
 * for `cooldownMs`; then half-open: exactly one request probes it; success closes, failure reopens.
 */
export class DeploymentHealth {
  readonly #states = new Map<string, BreakerState>();
  constructor(
    private readonly clock: Clock,
    private readonly policy: BreakerPolicy = defaultBreakerPolicy,
  ) {}

  #get(id: string): BreakerState {
    let s = this.#states.get(id);
    if (!s) {
      s = { failures: 0, openedAtMs: null, probeInFlight: false };
      this.#states.set(id, s);
    }
    return s;
  }

  state(id: string): HealthState {
    const s = this.#states.get(id);
    if (!s || s.openedAtMs === null) return 'closed';
    return this.clock.nowMs() - s.openedAtMs >= this.policy.cooldownMs ? 'half_open' : 'open';
  }

  /** May a request be sent now? For a half-open deployment this claims the single probe slot. */
  tryAcquire(id: string): boolean {
    const st = this.state(id);
    if (st === 'closed') return true;
    if (st === 'open') return false;
    const s = this.#get(id);
    if (s.probeInFlight) return false;
    s.probeInFlight = true;
    return true;
  }

  /** Without claiming anything: would this deployment be tried? */
  isAvailable(id: string): boolean {
    const st = this.state(id);
    return st === 'closed' || (st === 'half_open' && !this.#get(id).probeInFlight);
  }

  recordSuccess(id: string): void {
    const s = this.#get(id);
    s.failures = 0;
    s.openedAtMs = null;
    s.probeInFlight = false;
  }

  recordFailure(id: string): void {
    const s = this.#get(id);
    s.failures += 1;
    s.probeInFlight = false;
    if (s.openedAtMs !== null || s.failures >= this.policy.failuresToOpen) s.openedAtMs = this.clock.nowMs();
  }

  /** Release a probe slot without a verdict (e.g. the client went away). */
  release(id: string): void {
    const s = this.#states.get(id);
    if (s) s.probeInFlight = false;
  }

  snapshot(): Record<string, { state: HealthState; failures: number }> {
    const out: Record<string, { state: HealthState; failures: number }> = {};
    for (const [id, s] of this.#states) out[id] = { state: this.state(id), failures: s.failures };
    return out;
  }
}
