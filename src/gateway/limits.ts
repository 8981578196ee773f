import type { KeyLimits } from '../accounts/index.ts';

/**
 * The gateway's rate-limit port (issue 15 item 2): admit a request against its (root) key's limits and its
 * account's plan limits, both or neither, and end it. `RateLimiter` below keeps the counts in this process and
 * answers synchronously (the default: no await on the hot path); `store/redis` shares them across nodes and answers
 * with a promise (one round trip), used only when TOKENGRID_REDIS_URL is set. Positional arguments: no object per
 * request.
 */
export interface Limiter {
  /** Counts the request against both ids or refuses it (the refusal's message names the key or the plan). */
  admit(
    requestId: string,
    keyId: string,
    keyLimits: KeyLimits,
    accountId: string,
    accountLimits: KeyLimits,
    tokensEstimate: number,
    nowMs: number,
  ): LimitCheck | Promise<LimitCheck>;
  /** The request admitted under `requestId` ended: end its concurrency slots and correct its token count. */
  done(requestId: string, keyId: string, accountId: string, tokensEstimate: number, tokensActual: number, nowMs: number): void;
}

/**
 * Per-key rate limits kept in this process: requests/minute and tokens/minute as a sliding window of
 * per-second buckets, and concurrent requests as a counter. (Multi-node limits: `store/redis/limiter.ts`.)
 */
interface Window {
  secs: Int32Array;
  reqs: Int32Array;
  toks: Float64Array;
}

export type LimitCheck = { ok: true } | { ok: false; message: string; retryAfterS: number };

/** One shared answer for an admitted request (the common case allocates nothing). */
const ADMITTED: LimitCheck = Object.freeze({ ok: true });

export class RateLimiter implements Limiter {
  readonly #windows = new Map<string, Window>();
  readonly #concurrent = new Map<string, number>();

  #window(id: string): Window {
    let w = this.#windows.get(id);
    if (!w) {
      w = { secs: new Int32Array(60).fill(-1), reqs: new Int32Array(60), toks: new Float64Array(60) };
      this.#windows.set(id, w);
    }
    return w;
  }

  #sum(w: Window, nowS: number): { reqs: number; toks: number } {
    let reqs = 0;
    let toks = 0;
    for (let i = 0; i < 60; i++) {
      if (w.secs[i]! > nowS - 60) {
        reqs += w.reqs[i]!;
        toks += w.toks[i]!;
      }
    }
    return { reqs, toks };
  }

  admit(_requestId: string, keyId: string, keyLimits: KeyLimits, accountId: string, accountLimits: KeyLimits, tokens: number, nowMs: number): LimitCheck {
    const byKey = this.admitOne(keyId, keyLimits, tokens, nowMs);
    if (!byKey.ok) return byKey;
    const byPlan = this.admitOne(accountId, accountLimits, tokens, nowMs);
    if (!byPlan.ok) {
      this.doneOne(keyId, tokens, 0, nowMs);
      return { ok: false, message: byPlan.message.replace('for this key', "for this account's plan"), retryAfterS: byPlan.retryAfterS };
    }
    return ADMITTED;
  }

  done(_requestId: string, keyId: string, accountId: string, tokensEstimate: number, tokensActual: number, nowMs: number): void {
    this.doneOne(keyId, tokensEstimate, tokensActual, nowMs);
    this.doneOne(accountId, tokensEstimate, tokensActual, nowMs);
  }

  /** Admit a request under one id (counts it) or say which limit it hit. */
  admitOne(id: string, limits: KeyLimits, tokensEstimate: number, nowMs: number): LimitCheck {
    const conc = this.#concurrent.get(id) ?? 0;
    if (limits.concurrentRequests !== undefined && conc >= limits.concurrentRequests) {
      return { ok: false, message: `Too many concurrent requests for this key (limit ${limits.concurrentRequests}).`, retryAfterS: 1 };
    }
    if (limits.requestsPerMinute !== undefined || limits.tokensPerMinute !== undefined) {
      const nowS = Math.floor(nowMs / 1000);
      const w = this.#window(id);
      const used = this.#sum(w, nowS);
      if (limits.requestsPerMinute !== undefined && used.reqs + 1 > limits.requestsPerMinute) {
        return { ok: false, message: `Rate limit reached: ${limits.requestsPerMinute} requests per minute for this key.`, retryAfterS: 60 - (nowS % 60) || 1 };
      }
      if (limits.tokensPerMinute !== undefined && used.toks + tokensEstimate > limits.tokensPerMinute) {
        return { ok: false, message: `Rate limit reached: ${limits.tokensPerMinute} tokens per minute for this key.`, retryAfterS: 60 - (nowS % 60) || 1 };
      }
      const slot = nowS % 60;
      if (w.secs[slot] !== nowS) {
        w.secs[slot] = nowS;
        w.reqs[slot] = 0;
        w.toks[slot] = 0;
      }
      w.reqs[slot]! += 1;
      w.toks[slot]! += tokensEstimate;
    }
    this.#concurrent.set(id, conc + 1);
    return ADMITTED;
  }

  /** Correct the token count once the actual usage is known, and end the concurrency slot. */
  doneOne(id: string, tokensEstimate: number, tokensActual: number, nowMs: number): void {
    const conc = (this.#concurrent.get(id) ?? 1) - 1;
    if (conc <= 0) this.#concurrent.delete(id);
    else this.#concurrent.set(id, conc);
    const w = this.#windows.get(id);
    if (!w) return;
    const nowS = Math.floor(nowMs / 1000);
    const slot = nowS % 60;
    if (w.secs[slot] !== nowS) {
      w.secs[slot] = nowS;
      w.reqs[slot] = 0;
      w.toks[slot] = 0;
    }
    w.toks[slot]! += tokensActual - tokensEstimate;
  }
}
