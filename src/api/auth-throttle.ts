/**
 * Authentication failures per source address: after `limit` failures within `windowMs`, the source gets 429
 * (with Retry-After) on every authenticated route until the window ends. Time comes from the injectable clock.
 * Memory is bounded: expired windows are dropped when the table grows.
 */
export class AuthThrottle {
  readonly #windows = new Map<string, { startMs: number; failures: number }>();
  constructor(
    readonly limit = 20,
    readonly windowMs = 60_000,
    readonly maxSources = 50_000,
  ) {}

  /** True while no failure is on record: the request path then skips the lookup (and reading the address). */
  get idle(): boolean {
    return this.#windows.size === 0;
  }

  /** Seconds until this source may try again (Retry-After), or 0 when it is not blocked. */
  blockedForS(source: string, nowMs: number): number {
    const w = this.#windows.get(source);
    if (w === undefined) return 0;
    const endMs = w.startMs + this.windowMs;
    if (nowMs >= endMs) {
      this.#windows.delete(source);
      return 0;
    }
    return w.failures >= this.limit ? Math.max(1, Math.ceil((endMs - nowMs) / 1000)) : 0;
  }

  /** Records one failure; `burstStarted` is true exactly once per burst (the failure that reaches the limit). */
  fail(source: string, nowMs: number): { failures: number; burstStarted: boolean } {
    let w = this.#windows.get(source);
    if (w === undefined || nowMs >= w.startMs + this.windowMs) {
      if (this.#windows.size >= this.maxSources) this.#prune(nowMs);
      w = { startMs: nowMs, failures: 0 };
      this.#windows.set(source, w);
    }
    w.failures++;
    return { failures: w.failures, burstStarted: w.failures === this.limit };
  }

  #prune(nowMs: number): void {
    for (const [k, w] of this.#windows) if (nowMs >= w.startMs + this.windowMs) this.#windows.delete(k);
    // Still full (a flood from many sources): forget the oldest half rather than grow without bound.
    if (this.#windows.size >= this.maxSources) {
      let n = this.#windows.size / 2;
      for (const k of this.#windows.keys()) {
        if (n-- <= 0) break;
        this.#windows.delete(k);
      }
    }
  }
}
