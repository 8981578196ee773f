import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AnthropicStreamEncoder } from './index.ts';
import { SseParser } from '../sse.ts';
import type { StreamEvent, Usage } from '../types.ts';

interface Frame {
  event: string | undefined;
  data: Record<string, unknown>;
}

function run(events: StreamEvent[], fallback?: Usage): Frame[] {
  const enc = new AnthropicStreamEncoder({ id: 'msg_x', model: 'claude-x', inputTokensEstimate: 12 });
  let text = '';
  for (const ev of events) text += enc.encode(ev);
  text += enc.finish(fallback);
  assert.equal(enc.finish(), '', 'finish emits its frames only once');
  return new SseParser().push(text).map((e) => {
    const data = JSON.parse(e.data) as Record<string, unknown>;
    // Every frame's event: line names the same type as its data (the SDK dispatches on the event name).
    assert.equal(e.event, data['type']);
    return { event: e.event, data };
  });
}

const names = (frames: Frame[]) =>
  frames.map((f) => {
    const delta = f.data['delta'] as Record<string, unknown> | undefined;
    const block = f.data['content_block'] as Record<string, unknown> | undefined;
    if (f.event === 'content_block_delta') return `delta:${String(delta?.['type'])}@${String(f.data['index'])}`;
    if (f.event === 'content_block_start') return `start:${String(block?.['type'])}@${String(f.data['index'])}`;
    if (f.event === 'content_block_stop') return `stop@${String(f.data['index'])}`;
    return String(f.event);
  });

const usage: Usage = { tokensInput: 50, tokensOutput: 7, tokensCachedInput: 20, tokensCacheWrite: 5, tokensReasoning: 0 };
const start: StreamEvent = { type: 'start', id: 'up', model: 'up', createdS: 1 };

describe('AnthropicStreamEncoder', () => {
  test('a text stream is message_start, one text block, message_delta, message_stop', () => {
    const frames = run([
      start,
      { type: 'text', text: 'Hel' },
      { type: 'text', text: 'lo "q"' },
      { type: 'finish', finishReason: 'stop' },
      { type: 'usage', usage },
    ]);
    assert.deepEqual(names(frames), ['message_start', 'start:text@0', 'delta:text_delta@0', 'delta:text_delta@0', 'stop@0', 'message_delta', 'message_stop']);
    const msg = frames[0]?.data['message'] as Record<string, unknown>;
    assert.equal(msg['id'], 'msg_x');
    assert.equal(msg['model'], 'claude-x');
    assert.deepEqual(msg['content'], []);
    assert.deepEqual(msg['usage'], { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 });
    assert.deepEqual(frames[3]?.data['delta'], { type: 'text_delta', text: 'lo "q"' });
    assert.deepEqual(frames[5]?.data, {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { input_tokens: 25, output_tokens: 7, cache_creation_input_tokens: 5, cache_read_input_tokens: 20 },
    });
  });

  test('usage arriving before finish gives the same single message_delta', () => {
    const after = run([start, { type: 'text', text: 'a' }, { type: 'finish', finishReason: 'length' }, { type: 'usage', usage }]);
    const before = run([start, { type: 'text', text: 'a' }, { type: 'usage', usage }, { type: 'finish', finishReason: 'length' }]);
    assert.deepEqual(before, after);
    assert.equal(after.filter((f) => f.event === 'message_delta').length, 1);
    assert.equal((after.find((f) => f.event === 'message_delta')?.data['delta'] as Record<string, unknown>)['stop_reason'], 'max_tokens');
  });

  test('text and tool calls alternate into separate blocks with increasing indexes', () => {
    const frames = run([
      start,
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_call_start', index: 0, id: 'toolu_a', name: 'get_weather' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city":' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '"Paris"}' },
      { type: 'tool_call_start', index: 1, id: 'toolu_b', name: 'get_time' },
      { type: 'tool_call_delta', index: 1, argumentsDelta: '' },
      { type: 'tool_call_delta', index: 1, argumentsDelta: '{}' },
      { type: 'finish', finishReason: 'tool_calls' },
    ]);
    assert.deepEqual(names(frames), [
      'message_start',
      'start:text@0',
      'delta:text_delta@0',
      'stop@0',
      'start:tool_use@1',
      'delta:input_json_delta@1',
      'delta:input_json_delta@1',
      'stop@1',
      'start:tool_use@2',
      'delta:input_json_delta@2',
      'stop@2',
      'message_delta',
      'message_stop',
    ]);
    assert.deepEqual(frames[4]?.data['content_block'], { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} });
    assert.deepEqual(frames[5]?.data['delta'], { type: 'input_json_delta', partial_json: '{"city":' });
    assert.equal((frames[11]?.data['delta'] as Record<string, unknown>)['stop_reason'], 'tool_use');
  });

  test('thinking comes first as its own block with thinking_delta', () => {
    const frames = run([start, { type: 'reasoning', text: 'hmm' }, { type: 'reasoning', text: '...' }, { type: 'text', text: 'ok' }]);
    assert.deepEqual(names(frames), [
      'message_start',
      'start:thinking@0',
      'delta:thinking_delta@0',
      'delta:thinking_delta@0',
      'stop@0',
      'start:text@1',
      'delta:text_delta@1',
      'stop@1',
      'message_delta',
      'message_stop',
    ]);
    assert.deepEqual(frames[1]?.data['content_block'], { type: 'thinking', thinking: '', signature: '' });
    assert.deepEqual(frames[2]?.data['delta'], { type: 'thinking_delta', thinking: 'hmm' });
  });

  test('message_start is emitted by whatever event comes first, with known usage if any', () => {
    const frames = run([
      { type: 'usage', usage },
      { type: 'text', text: 'x' },
    ]);
    assert.equal(frames[0]?.event, 'message_start');
    const msg = frames[0]?.data['message'] as Record<string, unknown>;
    assert.deepEqual(msg['usage'], { input_tokens: 25, cache_creation_input_tokens: 5, cache_read_input_tokens: 20, output_tokens: 1 });
  });

  test('message_start shows the upstream start usage (Anthropic message_start) instead of the estimate; message_delta the final counts', () => {
    const final: Usage = { ...usage, tokensOutput: 9 };
    const frames = run([
      { type: 'start', id: 'up', model: 'up', createdS: 0, usage: { ...usage, tokensOutput: 1 } },
      { type: 'text', text: 'x' },
      { type: 'usage', usage: final },
    ]);
    const start = (frames[0]?.data['message'] as Record<string, unknown>)['usage'];
    assert.deepEqual(start, { input_tokens: 25, cache_creation_input_tokens: 5, cache_read_input_tokens: 20, output_tokens: 1 });
    const delta = frames.find((f) => f.event === 'message_delta')?.data['usage'];
    assert.deepEqual(delta, { input_tokens: 25, output_tokens: 9, cache_creation_input_tokens: 5, cache_read_input_tokens: 20 });
    const estimated = run([
      { type: 'start', id: 'up', model: 'up', createdS: 0 },
      { type: 'text', text: 'x' },
      { type: 'usage', usage: final },
    ]);
    assert.equal(
      ((estimated[0]?.data['message'] as Record<string, unknown>)['usage'] as Record<string, unknown>)['input_tokens'],
      12,
      'no start usage: the estimate',
    );
    assert.equal(
      (estimated.find((f) => f.event === 'message_delta')?.data['usage'] as Record<string, unknown>)['input_tokens'],
      25,
      'the final input count wins in message_delta',
    );
  });

  test('an empty stream still produces a complete message; fallback usage fills message_delta', () => {
    const frames = run([], usage);
    assert.deepEqual(names(frames), ['message_start', 'message_delta', 'message_stop']);
    assert.equal((frames[1]?.data['usage'] as Record<string, unknown>)['output_tokens'], 7);
    const noUsage = run([]);
    assert.deepEqual(noUsage[1]?.data['usage'], { input_tokens: 12, output_tokens: 0 });
  });

  test('stop reason is tool_use when tools were called and no finish event came', () => {
    const frames = run([{ type: 'tool_call_start', index: 0, id: 't', name: 'f' }]);
    assert.equal((frames.at(-2)?.data['delta'] as Record<string, unknown>)['stop_reason'], 'tool_use');
  });

  test('empty text deltas produce no frames beyond message_start', () => {
    const enc = new AnthropicStreamEncoder({ id: 'i', model: 'm', inputTokensEstimate: 0 });
    assert.match(enc.encode({ type: 'text', text: '' }), /^event: message_start\n/);
    assert.equal(enc.encode({ type: 'text', text: '' }), '');
    assert.equal(enc.encode({ type: 'reasoning', text: '' }), '');
  });

  test('arguments for a tool call that never started still arrive in a tool_use block', () => {
    const frames = run([{ type: 'tool_call_delta', index: 3, argumentsDelta: '{}' }]);
    assert.deepEqual(names(frames), ['message_start', 'start:tool_use@0', 'delta:input_json_delta@0', 'stop@0', 'message_delta', 'message_stop']);
  });

  test('a signature closes the thinking block as a signature_delta; whole native blocks pass through as start + stop', () => {
    const redacted = { type: 'redacted_thinking', data: 'opaque' };
    const server = { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'q' } };
    const frames = run([
      start,
      { type: 'reasoning', text: 'hmm' },
      { type: 'reasoning', text: '', signature: 'sig1' },
      { type: 'reasoning', text: '', block: redacted },
      { type: 'reasoning', text: '', block: server },
      { type: 'text', text: 'ok' },
    ]);
    assert.deepEqual(names(frames), [
      'message_start',
      'start:thinking@0',
      'delta:thinking_delta@0',
      'delta:signature_delta@0',
      'stop@0',
      'start:redacted_thinking@1',
      'stop@1',
      'start:server_tool_use@2',
      'stop@2',
      'start:text@3',
      'delta:text_delta@3',
      'stop@3',
      'message_delta',
      'message_stop',
    ]);
    assert.deepEqual(frames[3]?.data['delta'], { type: 'signature_delta', signature: 'sig1' });
    assert.deepEqual(frames[5]?.data['content_block'], redacted);
    assert.deepEqual(frames[7]?.data['content_block'], server);
  });
});
