/**
 * Rate and concurrency limits shared by every node (issue 15 item 2), on Redis: the gateway's `Limiter` port with
 * the local `RateLimiter`'s rules (requests/minute and tokens/minute over a 60 s window of per-second counts,
 * concurrent requests), each admit one atomic Lua script over the key's and the account's counters (both or
 * neither). Keys are hash-tagged by account id, `<prefix>{<accountId>}:w:<id>` (window hash, fields `r<sec>` and
 * `t<sec>`) and `<prefix>{<accountId>}:c:<id>` (concurrency leases), so one script touches one Cluster slot.
 *
 * Concurrency is a sorted set of leases (member = request id, score = expiry): this node renews the leases of its
 * requests in flight every leaseMs/3, so a node killed mid-request leaks nothing: its leases expire within leaseMs
 * and the next admit on any node removes them.
 *
 * Redis down, slow or refusing: the request is admitted by the local per-node `RateLimiter` instead (fail open,
 * `onFallback` counts it and the app logs a warning), for `breakMs` before Redis is tried again. Rate limits protect
 * capacity, not money: charging runs on the system of record (PostgreSQL), so an outage of Redis costs exactness of
 * the limits (each node enforces the whole limit for a while), never a charge. ARCHITECTURE.md "Many nodes".
 *
 * Accounts and keys without any limit never reach Redis (answered synchronously, like the local limiter).
 */
import type { Redis } from 'ioredis';
import type { KeyLimits } from '../../accounts/index.ts';
import type { Clock } from '../../core/index.ts';
import { RateLimiter, type LimitCheck, type Limiter } from '../../gateway/index.ts';

const ADMIT_LUA = `
local now = tonumber(ARGV[1])
local nowS = math.floor(now / 1000)
local tokens = tonumber(ARGV[2])
local leaseMs = tonumber(ARGV[3])
local member = ARGV[4]
local function usage(key)
  local all = redis.call('HGETALL', key)
  local reqs, toks = 0, 0
  for i = 1, #all, 2 do
    local f = all[i]
    local sec = tonumber(string.sub(f, 2))
    if sec ~= nil and sec > nowS - 60 then
      if string.sub(f, 1, 1) == 'r' then reqs = reqs + tonumber(all[i + 1]) else toks = toks + tonumber(all[i + 1]) end
    else
      redis.call('HDEL', key, f)
    end
  end
  return reqs, toks
end
local function check(w, c, rpm, tpm, conc, who)
  if conc >= 0 then
    redis.call('ZREMRANGEBYSCORE', c, '-inf', now)
    if redis.call('ZCARD', c) >= conc then return {1, who, conc} end
  end
  if rpm >= 0 or tpm >= 0 then
    local reqs, toks = usage(w)
    if rpm >= 0 and reqs + 1 > rpm then return {2, who, rpm} end
    if tpm >= 0 and toks + tokens > tpm then return {3, who, tpm} end
  end
  return nil
end
local function count(w, c, rpm, tpm, conc)
  if conc >= 0 then
    redis.call('ZADD', c, now + leaseMs, member)
    redis.call('PEXPIRE', c, leaseMs * 2)
  end
  if rpm >= 0 or tpm >= 0 then
    redis.call('HINCRBY', w, 'r' .. nowS, 1)
    redis.call('HINCRBY', w, 't' .. nowS, tokens)
    redis.call('PEXPIRE', w, 120000)
  end
end
local kr, kt, kc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ar, at, ac = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local refused = check(KEYS[1], KEYS[2], kr, kt, kc, 0)
if refused then return refused end
refused = check(KEYS[3], KEYS[4], ar, at, ac, 1)
if refused then return refused end
count(KEYS[1], KEYS[2], kr, kt, kc)
count(KEYS[3], KEYS[4], ar, at, ac)
return 0
`;

const DONE_LUA = `
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[3])
local d = tonumber(ARGV[2])
if d ~= 0 then
  local f = 't' .. math.floor(tonumber(ARGV[1]) / 1000)
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], f, d) end
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('HINCRBY', KEYS[3], f, d) end
end
return 0
`;

interface ScriptedRedis {
  tgLimitAdmit(...args: (string | number)[]): Promise<0 | [number, number, number]>;
  tgLimitDone(...args: (string | number)[]): Promise<0>;
}

/** A request admitted through Redis: its four keys (renewal and done). */
interface InFlight {
  kw: string;
  kc: string;
  aw: string;
  ac: string;
  /** It holds a concurrency lease (renewed while it runs). */
  leased: boolean;
}

export interface RedisLimiterOptions {
  /** A command connection (`connectRedis`); the limiter does not close it. */
  redis: Redis;
  clock: Clock;
  /** Key prefix (default `tg:`): tests use a random one. */
  prefix?: string;
  /** Lifetime of a concurrency lease not renewed (a dead node's requests): default 30 s. */
  leaseMs?: number;
  /** After a Redis failure, admit locally for this long before trying Redis again: default 1 s. */
  breakMs?: number;
  /** The per-node limiter used while Redis fails (default a new `RateLimiter`). */
  fallback?: Limiter;
  /** Called on each Redis failure that sent requests to the fallback (a metric and a warning). */
  onFallback?: (err: unknown) => void;
  /** Renew leases on a timer (default true; tests of a node's death switch it off). */
  renew?: boolean;
}

const NONE = -1;
const lim = (n: number | undefined): number => (n === undefined ? NONE : n);
const hasAny = (l: KeyLimits): boolean => l.requestsPerMinute !== undefined || l.tokensPerMinute !== undefined || l.concurrentRequests !== undefined;
const ADMITTED: LimitCheck = Object.freeze({ ok: true });
const WHAT = ['', '', 'requests per minute', 'tokens per minute'];

export class RedisLimiter implements Limiter {
  readonly #redis: Redis & ScriptedRedis;
  readonly #clock: Clock;
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #breakMs: number;
  readonly #fallback: Limiter;
  readonly #onFallback: (err: unknown) => void;
  readonly #inFlight = new Map<string, InFlight>();
  /** Request ids the fallback admitted: their `done` goes to the fallback. */
  readonly #local = new Set<string>();
  readonly #timer: NodeJS.Timeout | undefined;
  #downUntilMs = 0;
  /** Admissions decided by the fallback since start (tests, metrics). */
  fallbacks = 0;

  constructor(opts: RedisLimiterOptions) {
    this.#redis = opts.redis as Redis & ScriptedRedis;
    this.#clock = opts.clock;
    this.#prefix = opts.prefix ?? 'tg:';
    this.#leaseMs = opts.leaseMs ?? 30_000;
    this.#breakMs = opts.breakMs ?? 1_000;
    this.#fallback = opts.fallback ?? new RateLimiter();
    this.#onFallback = opts.onFallback ?? (() => {});
    if (typeof this.#redis.tgLimitAdmit !== 'function') {
      opts.redis.defineCommand('tgLimitAdmit', { numberOfKeys: 4, lua: ADMIT_LUA });
      opts.redis.defineCommand('tgLimitDone', { numberOfKeys: 4, lua: DONE_LUA });
    }
    if (opts.renew !== false) {
      this.#timer = setInterval(() => void this.renewLeases(), Math.max(100, Math.floor(this.#leaseMs / 3)));
      this.#timer.unref();
    }
  }

  admit(
    requestId: string,
    keyId: string,
    keyLimits: KeyLimits,
    accountId: string,
    accountLimits: KeyLimits,
    tokens: number,
    nowMs: number,
  ): LimitCheck | Promise<LimitCheck> {
    if (!hasAny(keyLimits) && !hasAny(accountLimits)) return ADMITTED;
    if (this.#clock.nowMs() < this.#downUntilMs) return this.#admitLocally(requestId, keyId, keyLimits, accountId, accountLimits, tokens, nowMs);
    return this.#admitShared(requestId, keyId, keyLimits, accountId, accountLimits, tokens, nowMs);
  }

  async #admitShared(
    requestId: string,
    keyId: string,
    keyLimits: KeyLimits,
    accountId: string,
    accountLimits: KeyLimits,
    tokens: number,
    nowMs: number,
  ): Promise<LimitCheck> {
    const tag = `${this.#prefix}{${accountId}}:`;
    const f: InFlight = {
      kw: `${tag}w:${keyId}`,
      kc: `${tag}c:${keyId}`,
      aw: `${tag}w:${accountId}`,
      ac: `${tag}c:${accountId}`,
      leased: keyLimits.concurrentRequests !== undefined || accountLimits.concurrentRequests !== undefined,
    };
    let answer: 0 | [number, number, number];
    try {
      answer = await this.#redis.tgLimitAdmit(
        f.kw,
        f.kc,
        f.aw,
        f.ac,
        nowMs,
        Math.round(tokens),
        this.#leaseMs,
        requestId,
        lim(keyLimits.requestsPerMinute),
        lim(keyLimits.tokensPerMinute),
        lim(keyLimits.concurrentRequests),
        lim(accountLimits.requestsPerMinute),
        lim(accountLimits.tokensPerMinute),
        lim(accountLimits.concurrentRequests),
      );
    } catch (e) {
      this.#downUntilMs = this.#clock.nowMs() + this.#breakMs;
      this.#onFallback(e);
      return this.#admitLocally(requestId, keyId, keyLimits, accountId, accountLimits, tokens, nowMs);
    }
    if (answer === 0) {
      this.#inFlight.set(requestId, f);
      return ADMITTED;
    }
    const [kind, who, limit] = answer;
    const whose = who === 0 ? 'this key' : "this account's plan";
    if (kind === 1) return { ok: false, message: `Too many concurrent requests for ${whose} (limit ${limit}).`, retryAfterS: 1 };
    const nowS = Math.floor(nowMs / 1000);
    return { ok: false, message: `Rate limit reached: ${limit} ${WHAT[kind]} for ${whose}.`, retryAfterS: 60 - (nowS % 60) || 1 };
  }

  #admitLocally(
    requestId: string,
    keyId: string,
    keyLimits: KeyLimits,
    accountId: string,
    accountLimits: KeyLimits,
    tokens: number,
    nowMs: number,
  ): LimitCheck | Promise<LimitCheck> {
    this.fallbacks++;
    const r = this.#fallback.admit(requestId, keyId, keyLimits, accountId, accountLimits, tokens, nowMs);
    if (r instanceof Promise) {
      return r.then((c) => {
        if (c.ok) this.#local.add(requestId);
        return c;
      });
    }
    if (r.ok) this.#local.add(requestId);
    return r;
  }

  done(requestId: string, keyId: string, accountId: string, tokensEstimate: number, tokensActual: number, nowMs: number): void {
    if (this.#local.delete(requestId)) {
      this.#fallback.done(requestId, keyId, accountId, tokensEstimate, tokensActual, nowMs);
      return;
    }
    const f = this.#inFlight.get(requestId);
    if (f === undefined) return;
    this.#inFlight.delete(requestId);
    // Fire and forget: a failure leaves the lease to expire (it is no longer renewed) and the token count uncorrected.
    this.#redis.tgLimitDone(f.kw, f.kc, f.aw, f.ac, nowMs, Math.round(tokensActual - tokensEstimate), requestId).catch((e: unknown) => this.#onFallback(e));
  }

  /** Extends the leases of this node's requests in flight (on a timer; public for tests). */
  async renewLeases(): Promise<void> {
    if (this.#inFlight.size === 0) return;
    const expiry = this.#clock.nowMs() + this.#leaseMs;
    const p = this.#redis.pipeline();
    for (const [requestId, f] of this.#inFlight) {
      if (!f.leased) continue;
      p.zadd(f.kc, 'XX', expiry, requestId);
      p.zadd(f.ac, 'XX', expiry, requestId);
      p.pexpire(f.kc, this.#leaseMs * 2);
      p.pexpire(f.ac, this.#leaseMs * 2);
    }
    try {
      await p.exec();
    } catch {
      // Redis is away: the leases are renewed on the next tick, or expire (and the fallback admits meanwhile).
    }
  }

  /** Requests in flight admitted through Redis (tests). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Stops the renewal timer; the connection is the caller's. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
