import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { StreamEvent } from '../../wire/index.ts';
import { UpstreamError } from '../types.ts';
import { ChatChunkParser, CompletionChunkParser } from './stream-reader.ts';

const defaults = { id: 'req_1', model: 'up-model', createdS: 42 };

function feed(chunks: unknown[], end = true): StreamEvent[] {
  const p = new ChatChunkParser(defaults);
  const out: StreamEvent[] = [];
  for (const c of chunks) p.chunk(c, out);
  if (end) p.end(out);
  return out;
}

const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-x',
  object: 'chat.completion.chunk',
  created: 7,
  model: 'deepseek-chat',
  choices: [{ index: 0, delta, finish_reason: finish }],
  ...extra,
});

describe('ChatChunkParser', () => {
  test('start comes once from the first chunk; text, finish and the held-back usage follow in order', () => {
    const evs = feed([
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Hi' }),
      chunk({}, 'stop'),
      { id: 'chatcmpl-x', choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11, prompt_tokens_details: { cached_tokens: 4 } } },
    ]);
    assert.deepEqual(evs, [
      { type: 'start', id: 'chatcmpl-x', model: 'deepseek-chat', createdS: 7 },
      { type: 'text', text: 'Hi' },
      { type: 'finish', finishReason: 'stop' },
      { type: 'usage', usage: { tokensInput: 9, tokensOutput: 2, tokensCachedInput: 4, tokensCacheWrite: 0, tokensReasoning: 0 } },
    ]);
  });

  test('DeepSeek: reasoning_content, then content, usage on the finish chunk with prompt_cache_hit_tokens', () => {
    const evs = feed([
      chunk({ role: 'assistant', content: null, reasoning_content: 'hmm' }),
      chunk({ content: 'ok', reasoning_content: null }),
      chunk({ content: '' }, 'stop', {
        usage: {
          prompt_tokens: 10,
          completion_tokens: 8,
          prompt_cache_hit_tokens: 6,
          prompt_cache_miss_tokens: 4,
          completion_tokens_details: { reasoning_tokens: 5 },
        },
      }),
    ]);
    assert.deepEqual(evs.slice(1), [
      { type: 'reasoning', text: 'hmm' },
      { type: 'text', text: 'ok' },
      { type: 'finish', finishReason: 'stop' },
      { type: 'usage', usage: { tokensInput: 10, tokensOutput: 8, tokensCachedInput: 6, tokensCacheWrite: 0, tokensReasoning: 5 } },
    ]);
  });

  test('tool calls: upstream indexes starting at 1 become 0, 1; name once, then argument pieces', () => {
    const evs = feed([
      chunk({ tool_calls: [{ index: 1, id: 'call_a', type: 'function', function: { name: 'f', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: '{"x"' } }] }),
      // Some builds repeat id and name on every delta.
      chunk({ tool_calls: [{ index: 1, id: 'call_a', type: 'function', function: { name: 'f', arguments: ':1}' } }] }),
      chunk({ tool_calls: [{ index: 2, id: 'call_b', function: { name: 'g', arguments: '{}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(evs.slice(1), [
      { type: 'tool_call_start', index: 0, id: 'call_a', name: 'f' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '{"x"' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: ':1}' },
      { type: 'tool_call_start', index: 1, id: 'call_b', name: 'g' },
      { type: 'tool_call_delta', index: 1, argumentsDelta: '{}' },
      { type: 'finish', finishReason: 'tool_calls' },
    ]);
  });

  test('tool deltas without index: a new id opens a new call, no id continues the last one', () => {
    const evs = feed([
      chunk({ tool_calls: [{ id: 'c1', function: { name: 'f', arguments: '{' } }] }),
      chunk({ tool_calls: [{ function: { arguments: '}' } }] }),
      chunk({ tool_calls: [{ id: 'c2', function: { name: 'g', arguments: '{}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(
      evs.filter((e) => e.type.startsWith('tool')).map((e) => [e.type, (e as { index: number }).index]),
      [
        ['tool_call_start', 0],
        ['tool_call_delta', 0],
        ['tool_call_delta', 0],
        ['tool_call_start', 1],
        ['tool_call_delta', 1],
      ],
    );
  });

  test('arguments that arrive before the name are held until the call can start', () => {
    const evs = feed([
      chunk({ tool_calls: [{ index: 0, id: 'c1', function: { arguments: '{"a":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { name: 'f', arguments: '1}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(evs.slice(1, 4), [
      { type: 'tool_call_start', index: 0, id: 'c1', name: 'f' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '{"a":' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '1}' },
    ]);
  });

  test("a tool-call answer that finishes with 'stop' (Ollama, older vLLM) is reported as tool_calls", () => {
    const evs = feed([chunk({ tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: '{}' } }] }), chunk({}, 'stop')]);
    assert.deepEqual(evs.at(-1), { type: 'finish', finishReason: 'tool_calls' });
  });

  test('Moonshot: usage inside the finishing choice and a top-level cached_tokens are read', () => {
    const evs = feed([
      {
        id: 'x',
        choices: [
          { index: 0, delta: { content: 'a' }, finish_reason: 'stop', usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6, cached_tokens: 3 } },
        ],
      },
    ]);
    assert.deepEqual(evs.at(-1), { type: 'usage', usage: { tokensInput: 5, tokensOutput: 1, tokensCachedInput: 3, tokensCacheWrite: 0, tokensReasoning: 0 } });
  });

  test('usage repeated on several chunks is emitted once, the last one, after finish', () => {
    const u = (n: number) => ({ prompt_tokens: 3, completion_tokens: n });
    const evs = feed([chunk({ content: 'a' }, null, { usage: u(1) }), chunk({ content: 'b' }, null, { usage: u(2) }), chunk({}, 'length', { usage: u(3) })]);
    const usages = evs.filter((e) => e.type === 'usage');
    assert.equal(usages.length, 1);
    assert.equal(evs.at(-1)?.type, 'usage');
    assert.equal((usages[0] as { usage: { tokensOutput: number } }).usage.tokensOutput, 3);
    assert.equal(evs.at(-2)?.type, 'finish');
  });

  test('usage: null on ordinary chunks and choices: null on the usage chunk (vLLM) are tolerated', () => {
    const evs = feed([
      chunk({ content: 'a' }, null, { usage: null }),
      chunk({}, 'stop', { usage: null }),
      { id: 'x', choices: null, usage: { prompt_tokens: 1, completion_tokens: 1 } },
    ]);
    assert.deepEqual(
      evs.map((e) => e.type),
      ['start', 'text', 'finish', 'usage'],
    );
  });

  test('an in-stream error object is an UpstreamError disconnect; a non-object chunk is malformed', () => {
    const p = new ChatChunkParser(defaults);
    assert.throws(
      () => p.chunk({ error: { message: 'overloaded', type: 'server_error' } }, []),
      (e: unknown) => e instanceof UpstreamError && e.kind === 'disconnect' && /overloaded/.test(e.message),
    );
    assert.throws(
      () => p.chunk([1], []),
      (e: unknown) => e instanceof UpstreamError && e.kind === 'malformed',
    );
  });

  test('end() without any chunk still yields start and finish; the finished flag tracks finish_reason', () => {
    const p = new ChatChunkParser(defaults);
    const out: StreamEvent[] = [];
    assert.equal(p.finished, false);
    p.end(out);
    assert.deepEqual(out, [
      { type: 'start', id: 'req_1', model: 'up-model', createdS: 42 },
      { type: 'finish', finishReason: 'stop' },
    ]);
  });

  test('vendor finish reasons map to canonical ones', () => {
    const last = (r: string) => feed([chunk({}, r)]).at(-1);
    assert.deepEqual(last('sensitive'), { type: 'finish', finishReason: 'content_filter' });
    assert.deepEqual(last('insufficient_system_resource'), { type: 'finish', finishReason: 'error' });
    assert.deepEqual(last('length'), { type: 'finish', finishReason: 'length' });
  });
});

describe('CompletionChunkParser', () => {
  test('text_completion chunks give text, finish and usage', () => {
    const p = new CompletionChunkParser(defaults);
    const out: StreamEvent[] = [];
    p.chunk({ id: 'cmpl-1', object: 'text_completion', created: 3, model: 'm', choices: [{ text: 'Once', index: 0, finish_reason: null }] }, out);
    p.chunk({ id: 'cmpl-1', choices: [{ text: '', index: 0, finish_reason: 'length' }] }, out);
    p.chunk({ id: 'cmpl-1', choices: [], usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 } }, out);
    p.end(out);
    assert.deepEqual(
      out.map((e) => e.type),
      ['start', 'text', 'finish', 'usage'],
    );
  });
});

describe('ChatChunkParser.plainDelta (OpenAI text-answer chunks without JSON.parse)', () => {
  const head = { id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1795648251, model: 'deepseek-v3.2' };
  const first = JSON.stringify({
    ...head,
    created: 7,
    model: 'm',
    choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
  });
  /** The frame data in OpenAI's own key order, as the emulator and OpenAI send it. */
  const frame = (
    content: unknown,
    o: { fingerprint?: string | null; usageNull?: boolean; id?: string; finish?: string | null; role?: boolean; refusal?: boolean } = {},
  ): string =>
    JSON.stringify({
      ...head,
      id: o.id ?? head.id,
      ...(o.fingerprint === undefined ? {} : { system_fingerprint: o.fingerprint }),
      choices: [
        {
          index: 0,
          delta: { ...(o.role ? { role: 'assistant' } : {}), ...(content === undefined ? {} : { content }), ...(o.refusal ? { refusal: null } : {}) },
          logprobs: null,
          finish_reason: o.finish ?? null,
        },
      ],
      ...(o.usageNull ? { usage: null } : {}),
    });
  const usageFrame = (u: Record<string, unknown>, fingerprint?: string): string =>
    JSON.stringify({ ...head, ...(fingerprint === undefined ? {} : { system_fingerprint: fingerprint }), choices: [], usage: u });
  const openaiUsage = (input: number, output: number, cached?: number, reasoning?: number): Record<string, unknown> => ({
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    ...(cached === undefined ? {} : { prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 } }),
    ...(reasoning === undefined
      ? {}
      : { completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } }),
  });

  /** Events from the fast path where it applies, else from JSON.parse + chunk(), then end(). */
  function viaFastPath(frames: string[]): { events: StreamEvent[]; fast: number } {
    const p = new ChatChunkParser(defaults);
    const out: StreamEvent[] = [];
    let fast = 0;
    for (const f of frames) {
      if (p.plainDelta(f, out)) fast++;
      else p.chunk(JSON.parse(f), out);
    }
    p.end(out);
    return { events: out, fast };
  }
  function viaParse(frames: string[]): StreamEvent[] {
    const p = new ChatChunkParser(defaults);
    const out: StreamEvent[] = [];
    for (const f of frames) p.chunk(JSON.parse(f), out);
    p.end(out);
    return out;
  }

  test('every chunk of an OpenAI text answer takes the fast path, with exactly the events of JSON.parse + chunk()', () => {
    const count = fc.integer({ min: 0, max: 2 ** 40 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom(undefined, null, 'fp_1'), fc.boolean()), { maxLength: 8 }),
        fc.boolean(),
        fc.constantFrom('stop', 'length', 'content_filter', 'tool_calls', 'sensitive', 'odd'),
        fc.option(fc.tuple(count, count, fc.option(count, { nil: undefined }), fc.option(count, { nil: undefined })), { nil: undefined }),
        (deltas, refusal, finish, usage) => {
          const frames = [
            frame('', { role: true, refusal, usageNull: usage !== undefined }),
            ...deltas.map(([c, fp, u]) => frame(c, { fingerprint: fp, usageNull: u })),
            frame(undefined, { finish, usageNull: usage !== undefined }),
            ...(usage === undefined ? [] : [usageFrame(openaiUsage(...usage), 'fp_1')]),
          ];
          const fast = viaFastPath(frames);
          assert.deepEqual(fast.events, viaParse(frames));
          assert.equal(fast.fast, frames.length, 'every chunk took the fast path');
        },
      ),
      { numRuns: 300 },
    );
  });

  test('odd orders agree too: content on the first or finishing chunk, chunks after the finish, usage before the finish', () => {
    const cases: string[][] = [
      [frame('hello', { role: true }), frame('!', { finish: 'length' })],
      [frame('a'), frame(undefined), frame(undefined, { finish: 'stop' }), frame('late'), frame(undefined, { finish: 'length' })],
      [usageFrame(openaiUsage(3, 2)), frame('x'), frame(undefined, { finish: 'stop' }), usageFrame(openaiUsage(9, 9, 20, 20))],
      [frame('x', { fingerprint: null }), usageFrame(openaiUsage(0, 0))],
      [first, frame('a\\"b\\u00e9\\n')],
      [first],
      [],
    ];
    for (const frames of cases) assert.deepEqual(viaFastPath(frames).events, viaParse(frames), frames.join('\n'));
  });

  test('pending tool calls at the finish, and every other shape, are left to JSON.parse', () => {
    const tool = JSON.stringify({
      ...head,
      choices: [
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'f', arguments: '' } }] },
          logprobs: null,
          finish_reason: null,
        },
      ],
    });
    const p = new ChatChunkParser(defaults);
    const out: StreamEvent[] = [];
    assert.equal(p.plainDelta(first, out), true);
    assert.equal(p.plainDelta(tool, out), false);
    p.chunk(JSON.parse(tool), out);
    assert.equal(p.plainDelta(frame('more'), out), true);
    assert.equal(p.plainDelta(frame(undefined, { finish: 'stop' }), out), false, 'the finish must flush and remap the tool calls');
    const frames = [first, tool, frame('more'), frame(undefined, { finish: 'stop' })];
    assert.deepEqual(viaFastPath(frames).events, viaParse(frames));

    const q = new ChatChunkParser(defaults);
    for (const data of [
      frame(null),
      frame(['a']),
      frame('a', { id: 'with\\"escape' }),
      frame('a', { id: '' }),
      JSON.stringify({ ...head, model: '', choices: [] }),
      JSON.stringify({ ...head, choices: [{ index: 0, delta: { content: 'a', reasoning_content: 'r' }, logprobs: null, finish_reason: null }] }),
      JSON.stringify({ ...head, choices: [{ index: 0, delta: { role: 'assistant' }, logprobs: null, finish_reason: null }] }),
      JSON.stringify({ ...head, choices: [{ index: 0, delta: { content: 'a' }, logprobs: null, finish_reason: null }], usage: { prompt_tokens: 1 } }),
      JSON.stringify({ ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop', usage: openaiUsage(1, 1) }] }),
      JSON.stringify({ ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: openaiUsage(1, 1) }),
      JSON.stringify({ ...head, choices: [{ index: 1, delta: { content: 'a' }, logprobs: null, finish_reason: null }] }),
      usageFrame({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, prompt_cache_hit_tokens: 1 }),
      usageFrame({ prompt_tokens: 1e16, completion_tokens: 1, total_tokens: 2 }),
      usageFrame({ prompt_tokens: 1, total_tokens: 2 }),
      JSON.stringify({
        object: 'chat.completion.chunk',
        id: 'x',
        created: 1,
        model: 'm',
        choices: [{ index: 0, delta: { content: 'a' }, logprobs: null, finish_reason: null }],
      }),
      JSON.stringify({ ...head, error: { message: 'x' }, choices: [] }),
      frame('a').replace('"created":1795648251', '"created":01795648251'),
      frame('a').replace('"content":"a"', '"content":"a\tb"'),
      frame('a').replace('"content":"a"', '"content":"a\\x"'),
      frame('a') + ' ',
    ])
      assert.equal(q.plainDelta(data, out), false, data);
  });
});
