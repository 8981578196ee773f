import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/index.ts';
import { zeroUsage, type ChatRequest, type ChatResponse, type StreamEvent } from '../wire/index.ts';
import { answerOfEvents, eventsOfAnswer, isCacheable, keepEvent, MemoryResponseCache, promptPrefixKey, responseCacheKey, type CachedAnswer } from './index.ts';

const req = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'alias',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }],
  stream: false,
  includeUsage: false,
  temperature: 0,
  extra: {},
  ...over,
});
const usage = { ...zeroUsage(), tokensInput: 10, tokensOutput: 5 };

describe('the response cache key', () => {
  test('ignores the stream flag, usage option, user and label fields; not the model, account, messages or settings', () => {
    const k = responseCacheKey('acct_1', 'm', req());
    assert.equal(responseCacheKey('acct_1', 'm', req({ stream: true, includeUsage: true, user: 'u', extra: { metadata: { a: 1 } } })), k);
    assert.equal(responseCacheKey('acct_1', 'm', req({ extra: {} })), k);
    for (const other of [
      responseCacheKey('acct_2', 'm', req()),
      responseCacheKey('acct_1', 'm2', req()),
      responseCacheKey('acct_1', 'm', req({ maxTokensOutput: 5 })),
      responseCacheKey('acct_1', 'm', req({ temperature: 0.5 })),
      responseCacheKey('acct_1', 'm', req({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hello!' }] }] })),
      responseCacheKey('acct_1', 'm', req({ extra: { logit_bias: { 1: 2 } } })),
      responseCacheKey('acct_1', 'm', req({ responseFormat: { type: 'json_object' } })),
    ]) {
      assert.notEqual(other, k);
    }
  });

  test('object key order does not matter', () => {
    const a = responseCacheKey('a', 'm', req({ extra: { x: 1, y: { p: 1, q: 2 } } }));
    const b = responseCacheKey('a', 'm', req({ extra: { y: { q: 2, p: 1 }, x: 1 } }));
    assert.equal(a, b);
  });

  test('only temperature 0 is cached unless the header opts in; off always bypasses', () => {
    assert.equal(isCacheable(req(), undefined), true);
    assert.equal(isCacheable(req({ temperature: 0.7 }), undefined), false);
    const { temperature: _, ...noTemp } = req();
    assert.equal(isCacheable(noTemp as ChatRequest, undefined), false);
    assert.equal(isCacheable(req({ temperature: 0.7 }), 'on'), true);
    assert.equal(isCacheable(req(), 'off'), false);
  });
});

describe('cached answers replay as streams and fold back', () => {
  test('text, reasoning and tool calls survive answer -> events -> answer', () => {
    const res: ChatResponse = {
      id: 'c1',
      model: 'up',
      createdS: 5,
      content: [
        { type: 'text', text: 'x'.repeat(600) },
        { type: 'tool_call', id: 't1', name: 'bash', argumentsJson: '{"command":"ls"}' },
      ],
      reasoning: 'think',
      finishReason: 'tool_calls',
      usage,
    };
    const events = eventsOfAnswer(res);
    assert.ok(events.filter((e) => e.type === 'text').length >= 3, 'long text replays in pieces');
    assert.deepEqual(answerOfEvents(events, usage), res);
  });

  test('a kept stream holds merged events (not one object per chunk) and folds to the same answer', () => {
    const chunks: StreamEvent[] = [{ type: 'start', id: 'a', model: 'm', createdS: 1 }];
    for (let i = 0; i < 1000; i++) chunks.push({ type: 'reasoning', text: 'r' });
    for (let i = 0; i < 1000; i++) chunks.push({ type: 'text', text: 'ab' });
    chunks.push({ type: 'tool_call_start', index: 0, id: 't', name: 'f' });
    for (const d of ['{"a"', ':', '1}']) chunks.push({ type: 'tool_call_delta', index: 0, argumentsDelta: d });
    chunks.push({ type: 'finish', finishReason: 'tool_calls' });
    const kept: StreamEvent[] = [];
    let chars = 0;
    for (const ev of chunks) chars += keepEvent(kept, ev);
    assert.equal(kept.length, 6, JSON.stringify(kept.map((e) => e.type)));
    assert.equal(chars, 1000 + 2000 + 7);
    assert.deepEqual(answerOfEvents(kept, usage), answerOfEvents(chunks, usage));
    assert.deepEqual(chunks[1], { type: 'reasoning', text: 'r' }, 'the delivered events are not mutated');
  });

  test('a stream with Anthropic signatures or without a finish is not replayable', () => {
    const base: StreamEvent[] = [{ type: 'start', id: 'a', model: 'm', createdS: 1 }];
    assert.equal(answerOfEvents([...base, { type: 'reasoning', text: '', signature: 's' }, { type: 'finish', finishReason: 'stop' }], usage), undefined);
    assert.equal(answerOfEvents([...base, { type: 'text', text: 'hi' }], usage), undefined);
  });
});

describe('the in-process cache', () => {
  const entry = (text: string, expiresAtMs: number): CachedAnswer => ({
    answer: { id: 'a', model: 'm', createdS: 0, content: [{ type: 'text', text }], finishReason: 'stop', usage },
    vendorCostMicros: 7,
    expiresAtMs,
  });

  test('expires entries on the injected clock and is scoped by account', async () => {
    const clock = new ManualClock(1_000);
    const c = new MemoryResponseCache(clock, 1 << 20);
    await c.set('a1', 'h', entry('x', 2_000));
    assert.equal((await c.get('a1', 'h'))?.vendorCostMicros, 7);
    assert.equal(await c.get('a2', 'h'), undefined);
    clock.advance(1_000);
    assert.equal(await c.get('a1', 'h'), undefined);
    assert.equal(c.size, 0);
  });

  test('evicts the least recently used entries beyond its byte bound', async () => {
    const clock = new ManualClock(0);
    const one = JSON.stringify(entry('x'.repeat(100), 10_000)).length;
    const c = new MemoryResponseCache(clock, one * 2 + 10);
    await c.set('a', '1', entry('x'.repeat(100), 10_000));
    await c.set('a', '2', entry('y'.repeat(100), 10_000));
    await c.get('a', '1'); // 1 is now the most recently used
    await c.set('a', '3', entry('z'.repeat(100), 10_000));
    assert.ok((await c.get('a', '1')) !== undefined);
    assert.equal(await c.get('a', '2'), undefined);
    assert.ok((await c.get('a', '3')) !== undefined);
    assert.ok(c.bytes <= one * 2 + 10);
  });

  test("one account filling the cache evicts its own answers, not every other account's", async () => {
    const one = JSON.stringify(entry('x'.repeat(100), 10_000)).length;
    const c = new MemoryResponseCache(new ManualClock(0), one * 8);
    await c.set('victim', 'h', entry('v'.repeat(100), 10_000));
    for (let i = 0; i < 20; i++) await c.set('hog', String(i), entry('x'.repeat(100), 10_000));
    assert.ok((await c.get('victim', 'h')) !== undefined, "the victim's answer is still there");
    assert.ok(c.bytes <= one * 8);
    assert.ok((await c.get('hog', '19')) !== undefined, "the hog's newest answer is kept");
    assert.equal(await c.get('hog', '0'), undefined, "the hog's oldest answer went first");
  });

  test('a caller cannot change a cached answer', async () => {
    const c = new MemoryResponseCache(new ManualClock(0), 1 << 20);
    await c.set('a', 'h', entry('keep', 10));
    const got = await c.get('a', 'h');
    (got!.answer.content[0] as { text: string }).text = 'changed';
    assert.deepEqual((await c.get('a', 'h'))!.answer.content, [{ type: 'text', text: 'keep' }]);
  });
});

describe('the prompt prefix key', () => {
  const system = 'You are a careful assistant. '.repeat(200);
  const ask = (q: string, sys = system): ChatRequest =>
    req({
      messages: [
        { role: 'system', content: [{ type: 'text', text: sys }] },
        { role: 'user', content: [{ type: 'text', text: q }] },
      ],
    });

  test('requests sharing a long system prompt share the key; the last message does not count', () => {
    const k = promptPrefixKey(ask('one'), 1024);
    assert.ok(k !== undefined);
    assert.equal(promptPrefixKey(ask('two'), 1024), k);
    assert.notEqual(promptPrefixKey(ask('one', `${system}!`), 1024), k);
  });

  test('a short prefix or a single message has no key', () => {
    assert.equal(promptPrefixKey(ask('one', 'short'), 1024), undefined);
    assert.equal(promptPrefixKey(req({ messages: [{ role: 'user', content: [{ type: 'text', text: system }] }] }), 1024), undefined);
  });

  test('a conversation keeps its key as turns are added (the shortest long-enough prefix)', () => {
    const first = ask('q1');
    const later = req({
      messages: [...first.messages, { role: 'assistant', content: [{ type: 'text', text: 'a1' }] }, { role: 'user', content: [{ type: 'text', text: 'q2' }] }],
    });
    assert.equal(promptPrefixKey(later, 1024), promptPrefixKey(first, 1024));
  });
});
