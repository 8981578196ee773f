/** Time is a port: domain code never calls Date.now() itself, so cycles and expiries are testable. */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

/** A clock tests move by hand (Stripe-style test clock). */
export class ManualClock implements Clock {
  #nowMs: number;
  constructor(startMs: number | string = Date.UTC(2026, 0, 1)) {
    this.#nowMs = typeof startMs === 'string' ? Date.parse(startMs) : startMs;
  }
  nowMs(): number {
    return this.#nowMs;
  }
  set(ms: number | string): void {
    this.#nowMs = typeof ms === 'string' ? Date.parse(ms) : ms;
  }
  advance(ms: number): void {
    this.#nowMs += ms;
  }
}
