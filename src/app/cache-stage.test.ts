import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../core/index.ts';
import type { FlightView, RequestStatus } from '../gateway/index.ts';
import { MemoryResponseCache, type ResponseCachePort } from '../cache/index.ts';
import { zeroUsage, type ChatRequest, type ChatResponse, type StreamEvent, type Usage } from '../wire/index.ts';
import { createCacheStage } from './cache-stage.ts';

const model = { id: 'm', cost: { currency: 'CNY', inputMicrosPerMillion: 1_000_000, outputMicrosPerMillion: 1_000_000, cachedInputMicrosPerMillion: 0 } };
const usage = { ...zeroUsage(), tokensInput: 10, tokensOutput: 4 };

function flight(stream: boolean, over: Partial<ChatRequest> = {}): Mutable {
  const req: ChatRequest = {
    model: 'm',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'q' }] }],
    stream,
    includeUsage: true,
    temperature: 0,
    extra: {},
    ...over,
  };
  return {
    ctx: { requestId: 'req_1', family: 'openai', key: { accountId: 'acct_1' } },
    op: 'chat',
    stream,
    req,
    model,
    reservationId: 'r',
    tokensOutputMax: 1000,
    tokensOutputGranted: 1000,
    usage: undefined,
    status: 'ok',
    serving: undefined,
    routeKey: undefined,
  } as unknown as Mutable;
}

type Mutable = FlightView & { status: RequestStatus; usage: Usage | undefined };

const answer = (finishReason: ChatResponse['finishReason'], extra: Partial<ChatResponse> = {}): ChatResponse => ({
  id: 'a',
  model: 'up',
  createdS: 1,
  content: [{ type: 'text', text: 'the answer' }],
  finishReason,
  usage,
  ...extra,
});

function setup(cache: ResponseCachePort = new MemoryResponseCache(new ManualClock(0), 1 << 20)) {
  const results: string[] = [];
  const s = createCacheStage({
    cache,
    clock: new ManualClock(0),
    ttlMs: 1000,
    chargeRatio: { num: 1, den: 10 },
    stickyMinTokens: undefined,
    onResult: (r) => results.push(r),
  });
  return { s, results };
}

/** A whole miss: lookup, the answer, settle (status as given), then a second lookup. */
async function missThenLookup(s: ReturnType<typeof setup>['s'], res: ChatResponse, status: RequestStatus = 'ok', over: Partial<ChatRequest> = {}) {
  const f = flight(false, over);
  assert.equal(await s.beforeDispatch!(f), undefined);
  s.onAnswer!(f, res);
  f.status = status;
  f.usage = usage;
  s.afterSettle!(f);
  await new Promise((r) => setImmediate(r));
  return { first: f, second: await s.beforeDispatch!(flight(false, over)) };
}

describe('the cache stage', () => {
  test('stores a settled ok answer with the usage charged and its vendor cost; the next lookup answers it', async () => {
    const { s, results } = setup();
    const { first, second } = await missThenLookup(s, answer('stop'));
    assert.equal(first.serving?.cache, 'stored');
    assert.ok(second !== undefined && second.kind === 'answer');
    assert.deepEqual((second.answer as ChatResponse).content, [{ type: 'text', text: 'the answer' }]);
    assert.deepEqual(second.chargeRatio, { num: 1, den: 10 });
    assert.deepEqual(results, ['miss', 'stored', 'hit']);
  });

  test('a hit for a stream replays events; the note carries the saving', async () => {
    const { s } = setup();
    await missThenLookup(s, answer('stop'));
    const f = flight(true);
    const served = await s.beforeDispatch!(f);
    assert.ok(served !== undefined && served.kind === 'events');
    assert.deepEqual(
      served.events.map((e: StreamEvent) => e.type),
      ['start', 'text', 'finish', 'usage'],
    );
    assert.deepEqual(f.serving, { cache: 'hit', savings: { cache: 14 } });
  });

  test('not stored: a request that did not end ok, a length stop the client did not ask for, Anthropic verbatim blocks', async () => {
    for (const [res, status] of [
      [answer('stop'), 'truncated'],
      [answer('length'), 'ok'],
      [answer('content_filter'), 'ok'],
      [answer('stop', { anthropicContent: [{ type: 'thinking', thinking: 'x', signature: 's' }] }), 'ok'],
    ] as const) {
      const { s } = setup();
      const { second } = await missThenLookup(s, res, status);
      assert.equal(second, undefined, `${res.finishReason} ${status}`);
    }
    const { s } = setup();
    assert.ok((await missThenLookup(s, answer('length'), 'ok', { maxTokensOutput: 4 })).second !== undefined, 'the client asked for the limit');
  });

  test('not stored: a length stop at a grant the balance cut below what the client asked (attack: a low balance poisons the cache with a truncated answer)', async () => {
    const { s } = setup();
    const f = flight(false, { maxTokensOutput: 1000 });
    // The balance afforded 4 output tokens of the 1000 asked: the upstream was capped at 4 and stopped on `length`.
    (f as unknown as { tokensOutputGranted: number }).tokensOutputGranted = 4;
    await s.beforeDispatch!(f);
    s.onAnswer!(f, answer('length'));
    f.usage = usage;
    s.afterSettle!(f);
    await new Promise((r) => setImmediate(r));
    assert.equal(f.serving?.cache, undefined);
    assert.equal(
      await s.beforeDispatch!(flight(false, { maxTokensOutput: 1000 })),
      undefined,
      'a later request with a full balance must not get the cut answer',
    );
  });

  test('an answer to a request with guardrail hits is not stored', async () => {
    const { s } = setup();
    const f = flight(false);
    await s.beforeDispatch!(f);
    f.serving = { guardrailHits: { phone: 1 } };
    s.onAnswer!(f, answer('stop'));
    f.usage = usage;
    s.afterSettle!(f);
    await new Promise((r) => setImmediate(r));
    assert.equal(f.serving.cache, undefined);
    assert.equal(await s.beforeDispatch!(flight(false)), undefined);
  });

  test('a stream is folded from its events when it settles ok', async () => {
    const { s } = setup();
    const f = flight(true);
    await s.beforeDispatch!(f);
    for (const ev of [
      { type: 'start', id: 'x', model: 'up', createdS: 1 },
      { type: 'text', text: 'a ' },
      { type: 'text', text: 'b' },
      { type: 'finish', finishReason: 'stop' },
    ] as StreamEvent[])
      s.onEvent!(f, ev);
    f.usage = usage;
    s.afterSettle!(f);
    await new Promise((r) => setImmediate(r));
    const hit = await s.beforeDispatch!(flight(false));
    assert.ok(hit !== undefined && hit.kind === 'answer');
    assert.deepEqual((hit.answer as ChatResponse).content, [{ type: 'text', text: 'a b' }]);
  });

  test('a stream larger than maxAnswerChars is neither kept nor stored (attack: many long cacheable streams exhausting memory)', async () => {
    const s = createCacheStage({
      cache: new MemoryResponseCache(new ManualClock(0), 1 << 20),
      clock: new ManualClock(0),
      ttlMs: 1000,
      chargeRatio: { num: 1, den: 10 },
      stickyMinTokens: undefined,
      maxAnswerChars: 10,
    });
    const f = flight(true);
    await s.beforeDispatch!(f);
    for (const ev of [
      { type: 'start', id: 'x', model: 'up', createdS: 1 },
      { type: 'text', text: '0123456789' },
      { type: 'text', text: 'a' },
      { type: 'finish', finishReason: 'stop' },
    ] as StreamEvent[])
      assert.equal(s.onEvent!(f, ev), ev, 'every event is delivered as is');
    f.usage = usage;
    s.afterSettle!(f);
    await new Promise((r) => setImmediate(r));
    assert.equal(f.serving?.cache, undefined);
    assert.equal(await s.beforeDispatch!(flight(false)), undefined);
  });

  test("the prompt-prefix route key is per account (attack: probing another tenant's prompts through the shared vendor prompt cache)", () => {
    const s = createCacheStage({ cache: undefined, clock: new ManualClock(0), ttlMs: 1, chargeRatio: { num: 1, den: 10 }, stickyMinTokens: 16 });
    const system = { role: 'system' as const, content: [{ type: 'text' as const, text: 'a shared long system prompt, '.repeat(20) }] };
    const keyOf = (accountId: string, question: string): string | undefined => {
      const f = flight(false, { messages: [system, { role: 'user', content: [{ type: 'text', text: question }] }] });
      (f.ctx.key as { accountId: string }).accountId = accountId;
      s.beforeAdmit!(f);
      return f.routeKey;
    };
    const a1 = keyOf('acct_a', 'q1');
    assert.ok(a1 !== undefined);
    assert.equal(keyOf('acct_a', 'q2'), a1, "one account's requests sharing the prefix stay on one deployment");
    assert.notEqual(keyOf('acct_b', 'q1'), a1, "another account's same prefix is placed independently");
  });

  test('a failing backend is a miss, never an error', async () => {
    const broken: ResponseCachePort = {
      get: () => Promise.reject(new Error('down')),
      set: () => Promise.reject(new Error('down')),
    };
    const { s, results } = setup(broken);
    const { second } = await missThenLookup(s, answer('stop'));
    assert.equal(second, undefined);
    assert.deepEqual(results, ['error', 'miss', 'error', 'error', 'miss']);
  });

  test('temperature above 0 without the opt-in header is not looked up', async () => {
    const { s, results } = setup();
    assert.equal(await s.beforeDispatch!(flight(false, { temperature: 0.7 })), undefined);
    assert.deepEqual(results, []);
  });
});
