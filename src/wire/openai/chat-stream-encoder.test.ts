import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser } from '../sse.ts';
import type { StreamEvent, Usage } from '../types.ts';
import { OpenAIChatStreamEncoder } from './index.ts';

const usage: Usage = { tokensInput: 10, tokensOutput: 5, tokensCachedInput: 4, tokensCacheWrite: 0, tokensReasoning: 2 };

/** Encode a sequence and parse the frames back, as a client would. */
function run(events: StreamEvent[], includeUsage: boolean): { chunks: any[]; raw: string } {
  const enc = new OpenAIChatStreamEncoder({ id: 'chatcmpl-1', model: 'my-model', createdS: 1700000000, includeUsage });
  let raw = '';
  for (const ev of events) raw += enc.encode(ev);
  raw += enc.finish();
  const frames = new SseParser().push(raw);
  assert.equal(frames.at(-1)?.data, '[DONE]', 'stream ends with [DONE]');
  return { chunks: frames.slice(0, -1).map((f) => JSON.parse(f.data)), raw };
}

const deltas = (chunks: any[]) => chunks.map((c) => c.choices[0]?.delta);

describe('OpenAIChatStreamEncoder', () => {
  test('a text stream is role chunk, content deltas, finish chunk, [DONE]', () => {
    const { chunks } = run(
      [
        { type: 'start', id: 'up-1', model: 'upstream-model', createdS: 1 },
        { type: 'text', text: 'Hel' },
        { type: 'text', text: 'lo "x"\n' },
        { type: 'finish', finishReason: 'stop' },
      ],
      false,
    );
    assert.deepEqual(deltas(chunks), [{ role: 'assistant', content: '' }, { content: 'Hel' }, { content: 'lo "x"\n' }, {}]);
    assert.deepEqual(
      chunks.map((c) => c.choices[0].finish_reason),
      [null, null, null, 'stop'],
    );
    for (const c of chunks) {
      assert.equal(c.id, 'chatcmpl-1');
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.created, 1700000000);
      assert.equal(c.model, 'my-model', 'the model the client asked for');
      assert.equal('usage' in c, false, 'no usage key without include_usage');
    }
  });

  test('tool calls stream as index/id/name first, then argument pieces', () => {
    const { chunks } = run(
      [
        { type: 'start', id: 'x', model: 'x', createdS: 1 },
        { type: 'tool_call_start', index: 0, id: 'call_a', name: 'get_weather' },
        { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city":' },
        { type: 'tool_call_delta', index: 0, argumentsDelta: '"Paris"}' },
        { type: 'tool_call_start', index: 1, id: 'call_b', name: 'get_time' },
        { type: 'tool_call_delta', index: 1, argumentsDelta: '{}' },
        { type: 'finish', finishReason: 'tool_calls' },
      ],
      false,
    );
    assert.deepEqual(deltas(chunks).slice(1), [
      { tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] },
      { tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '' } }] },
      { tool_calls: [{ index: 1, function: { arguments: '{}' } }] },
      {},
    ]);
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
  });

  test('with include_usage, usage comes once after the finish chunk even when it arrives first', () => {
    for (const order of ['usage-first', 'usage-last'] as const) {
      const evs: StreamEvent[] = [
        { type: 'start', id: 'x', model: 'x', createdS: 1 },
        { type: 'text', text: 'hi' },
      ];
      if (order === 'usage-first') evs.push({ type: 'usage', usage }, { type: 'finish', finishReason: 'length' });
      else evs.push({ type: 'finish', finishReason: 'length' }, { type: 'usage', usage });
      const { chunks } = run(evs, true);
      assert.equal(chunks.length, 4, order);
      assert.equal(chunks[2].choices[0].finish_reason, 'length');
      const last = chunks[3];
      assert.deepEqual(last.choices, []);
      assert.deepEqual(last.usage, {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        prompt_tokens_details: { cached_tokens: 4, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 2, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      });
      for (const c of chunks.slice(0, 3)) assert.equal(c.usage, null, 'earlier chunks carry usage: null as OpenAI does');
    }
  });

  test('usage reported twice is sent once, with the latest numbers', () => {
    const { chunks } = run(
      [
        { type: 'usage', usage: { ...usage, tokensOutput: 1 } },
        { type: 'finish', finishReason: 'stop' },
        { type: 'usage', usage },
      ],
      true,
    );
    const usageChunks = chunks.filter((c) => c.usage);
    assert.equal(usageChunks.length, 1);
    assert.equal(usageChunks[0].usage.completion_tokens, 5);
  });

  test('without include_usage no usage chunk is sent even if usage is known', () => {
    const { chunks } = run(
      [
        { type: 'text', text: 'a' },
        { type: 'usage', usage },
        { type: 'finish', finishReason: 'stop' },
      ],
      false,
    );
    assert.equal(
      chunks.some((c) => c.choices.length === 0),
      false,
    );
  });

  test('reasoning streams as reasoning_content deltas before the answer', () => {
    const { chunks } = run(
      [
        { type: 'reasoning', text: 'think' },
        { type: 'text', text: 'answer' },
      ],
      false,
    );
    assert.deepEqual(deltas(chunks), [{ role: 'assistant', content: '' }, { reasoning_content: 'think' }, { content: 'answer' }, {}]);
  });

  test('finish() alone still yields a well-formed stream; a second finish() adds nothing', () => {
    const enc = new OpenAIChatStreamEncoder({ id: 'i', model: 'm', createdS: 1, includeUsage: false });
    const out = enc.finish();
    const frames = new SseParser().push(out);
    assert.equal(frames.length, 3);
    assert.equal(JSON.parse(frames[1]!.data).choices[0].finish_reason, 'stop');
    assert.equal(enc.finish(), '');
    assert.equal(enc.encode({ type: 'text', text: 'late' }), '');
  });

  test('events after finish and a second finish are dropped; empty deltas emit nothing', () => {
    const enc = new OpenAIChatStreamEncoder({ id: 'i', model: 'm', createdS: 1, includeUsage: false });
    enc.encode({ type: 'start', id: 'a', model: 'b', createdS: 2 });
    assert.equal(enc.encode({ type: 'text', text: '' }), '');
    assert.notEqual(enc.encode({ type: 'finish', finishReason: 'stop' }), '');
    assert.equal(enc.encode({ type: 'finish', finishReason: 'length' }), '');
    assert.equal(enc.encode({ type: 'text', text: 'x' }), '');
  });

  test('an upstream error finish is reported as stop, the only OpenAI equivalent', () => {
    const { chunks } = run([{ type: 'finish', finishReason: 'error' }], false);
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  });

  test('fail() ends the stream with an OpenAI error frame and [DONE]', () => {
    const enc = new OpenAIChatStreamEncoder({ id: 'i', model: 'm', createdS: 1, includeUsage: true });
    enc.encode({ type: 'text', text: 'partial' });
    const frames = new SseParser().push(enc.fail('upstream_error', 'upstream went away'));
    assert.deepEqual(JSON.parse(frames[0]!.data), { error: { message: 'upstream went away', type: 'server_error', param: null, code: 'upstream_error' } });
    assert.equal(frames[1]?.data, '[DONE]');
    assert.equal(enc.finish(), '');
  });
});
