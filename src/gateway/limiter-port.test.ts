/**
 * The gateway over its Limiter port (issue 15 item 2) and a store failure at settle: a shared limiter answers with
 * a promise (Redis), its refusal is a 429 before anything is reserved, and every admitted request ends its slot
 * exactly once; a settle that fails in the store is a 503 charging_unavailable, not an internal error.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { ManualClock, SeededRandom, TokenGridError, ok } from '../core/index.ts';
import { buildCatalog } from '../catalog/index.ts';
import { DeploymentHealth } from '../routing/index.ts';
import type { ProviderAdapter } from '../providers/index.ts';
import { zeroUsage, type ChatRequest, type ChatResponse, type Usage } from '../wire/index.ts';
import type { KeyLimits } from '../accounts/index.ts';
import { Gateway } from './gateway.ts';
import type { LimitCheck, Limiter } from './limits.ts';
import { noopMetrics, type ChargingPort, type RequestContext } from './ports.ts';
import { testModel, testProvider } from './test-kit.ts';

const model = testModel;
const provider = testProvider;
const usage: Usage = { ...zeroUsage(), tokensInput: 11, tokensOutput: 7 };
const answer = { id: 'up', model: 'up', createdS: 1, content: [{ type: 'text', text: 'hello' }], finishReason: 'stop', usage } as ChatResponse;

/** An asynchronous limiter (as the Redis one is) that records what the gateway asks. */
class AsyncLimiter implements Limiter {
  admits: { requestId: string; keyId: string; accountId: string; accountLimits: KeyLimits }[] = [];
  dones: string[] = [];
  constructor(private readonly answer: LimitCheck) {}
  admit(requestId: string, keyId: string, _k: KeyLimits, accountId: string, accountLimits: KeyLimits): Promise<LimitCheck> {
    this.admits.push({ requestId, keyId, accountId, accountLimits });
    return Promise.resolve(this.answer);
  }
  done(requestId: string): void {
    this.dones.push(requestId);
  }
}

function world(limiter: Limiter, settle: 'ok' | 'store down' = 'ok') {
  const calls = { reserve: 0, settled: 0 };
  const charging: ChargingPort = {
    async reserve() {
      calls.reserve++;
      return ok({ reservationId: 'rsv_1', tokensOutputGranted: 1000, validUntilMs: 0, rateVersion: 'v' });
    },
    async extend() {
      return ok({ tokensOutputGranted: 1000, final: true });
    },
    async settle() {
      if (settle === 'store down') throw new Error('Connection terminated unexpectedly');
      calls.settled++;
    },
    async void() {},
  };
  const adapter = {
    kind: 'openai-compatible',
    async chat() {
      return { ...answer };
    },
  } as unknown as ProviderAdapter;
  const clock = new ManualClock();
  const gw = new Gateway({
    catalog: () => buildCatalog('t', [model]),
    providers: () => new Map([['p', provider]]),
    adapters: { 'openai-compatible': adapter, anthropic: adapter, gemini: adapter },
    dispatcher: new Agent(),
    charging,
    health: new DeploymentHealth(clock),
    limiter,
    random: new SeededRandom(1),
    clock,
    now: () => 0,
    metrics: noopMetrics,
    timeoutMsUpstreamHeaders: 1000,
    timeoutMsUpstreamBody: 1000,
  });
  return { gw, calls };
}

const ctx = (): RequestContext => ({
  requestId: 'req_1',
  family: 'openai',
  signal: new AbortController().signal,
  startedAt: 0,
  accountLimits: { concurrentRequests: 4 },
  key: {
    id: 'key_child',
    parentKeyId: 'key_root',
    accountId: 'acct_1',
    memberId: null,
    name: 'k',
    hash: 'h',
    prefix: 'tg-',
    allowedModels: null,
    expiresAtMs: null,
    revokedAtMs: null,
    limits: {},
    createdAtMs: 0,
  },
});
const req: ChatRequest = { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], stream: false, includeUsage: true, extra: {} };

describe('the gateway over an asynchronous (shared) limiter', () => {
  test('a refusal is 429 rate_limited with its message and retry-after, before anything is reserved', async () => {
    const limiter = new AsyncLimiter({ ok: false, message: "Too many concurrent requests for this account's plan (limit 4).", retryAfterS: 1 });
    const w = world(limiter);
    await assert.rejects(w.gw.chat(ctx(), req), (e: TokenGridError) => {
      assert.equal(e.code, 'rate_limited');
      assert.match(e.message, /plan \(limit 4\)/);
      assert.deepEqual(e.headers, { 'retry-after': '1' });
      return true;
    });
    assert.equal(w.calls.reserve, 0);
    assert.deepEqual(limiter.dones, [], 'a refused request has no slot to end');
  });

  test('an admitted request is counted against its root key and its account, and its slot ends once, after settle', async () => {
    const limiter = new AsyncLimiter({ ok: true });
    const w = world(limiter);
    await w.gw.chat(ctx(), req);
    assert.deepEqual(limiter.admits, [{ requestId: 'req_1', keyId: 'key_root', accountId: 'acct_1', accountLimits: { concurrentRequests: 4 } }]);
    assert.equal(w.calls.settled, 1);
    assert.deepEqual(limiter.dones, ['req_1']);
  });

  test('a settle that fails in the store (a database restart) is 503 charging_unavailable, not an internal error', async () => {
    const limiter = new AsyncLimiter({ ok: true });
    const w = world(limiter, 'store down');
    await assert.rejects(w.gw.chat(ctx(), req), (e: TokenGridError) => {
      assert.ok(e instanceof TokenGridError, String(e));
      assert.equal(e.code, 'charging_unavailable');
      assert.match(e.message, /not delivered/);
      return true;
    });
    assert.deepEqual(limiter.dones, ['req_1'], 'the slot still ends');
  });
});
