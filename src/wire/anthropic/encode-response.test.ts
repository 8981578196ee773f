import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicErrorBody, anthropicStreamErrorFrame, encodeCountTokensResponse, encodeMessagesResponse, parseToolInput } from './index.ts';
import { SseParser } from '../sse.ts';
import type { ChatResponse } from '../types.ts';

const usage = { tokensInput: 100, tokensOutput: 20, tokensCachedInput: 30, tokensCacheWrite: 10, tokensReasoning: 0 };
const res = (over: Partial<ChatResponse>): ChatResponse => ({ id: 'msg_1', model: 'up-model', createdS: 1, content: [], finishReason: 'stop', usage, ...over });

describe('encodeMessagesResponse', () => {
  test('a text answer has the Anthropic message shape with the client model name', () => {
    assert.deepEqual(encodeMessagesResponse(res({ content: [{ type: 'text', text: 'Hello' }] }), 'claude-x'), {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [{ type: 'text', text: 'Hello' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 60, output_tokens: 20, cache_creation_input_tokens: 10, cache_read_input_tokens: 30 },
    });
  });

  test('tool calls become tool_use blocks with parsed input; unparsable arguments become {}', () => {
    const out = encodeMessagesResponse(
      res({
        finishReason: 'tool_calls',
        content: [
          { type: 'text', text: 'ok' },
          { type: 'tool_call', id: 'c1', name: 'f', argumentsJson: '{"a":1}' },
          { type: 'tool_call', id: 'c2', name: 'g', argumentsJson: '{"a":' },
        ],
      }),
      'm',
    );
    assert.deepEqual(out['content'], [
      { type: 'text', text: 'ok' },
      { type: 'tool_use', id: 'c1', name: 'f', input: { a: 1 } },
      { type: 'tool_use', id: 'c2', name: 'g', input: {} },
    ]);
    assert.equal(out['stop_reason'], 'tool_use');
  });

  test('reasoning becomes a leading thinking block; empty text parts are dropped', () => {
    const out = encodeMessagesResponse(
      res({
        reasoning: 'think',
        content: [
          { type: 'text', text: '' },
          { type: 'text', text: 'x' },
        ],
      }),
      'm',
    );
    assert.deepEqual(out['content'], [
      { type: 'thinking', thinking: 'think', signature: '' },
      { type: 'text', text: 'x' },
    ]);
  });

  test('finish reasons map to Anthropic stop reasons', () => {
    const stop = (finishReason: ChatResponse['finishReason']) => encodeMessagesResponse(res({ finishReason }), 'm')['stop_reason'];
    assert.equal(stop('stop'), 'end_turn');
    assert.equal(stop('length'), 'max_tokens');
    assert.equal(stop('tool_calls'), 'tool_use');
    assert.equal(stop('content_filter'), 'refusal');
    assert.equal(stop('error'), 'end_turn');
  });

  test('parseToolInput only yields objects', () => {
    assert.deepEqual(parseToolInput(''), {});
    assert.deepEqual(parseToolInput('[1]'), {});
    assert.deepEqual(parseToolInput('{"x":[1]}'), { x: [1] });
  });

  test('count_tokens answer', () => {
    assert.deepEqual(encodeCountTokensResponse(42), { input_tokens: 42 });
  });
});

describe('anthropic error shapes', () => {
  test('error body uses the registered anthropic type', () => {
    assert.deepEqual(anthropicErrorBody('insufficient_quota', 'out of tokens'), {
      type: 'error',
      error: { type: 'rate_limit_error', message: 'out of tokens' },
    });
    assert.equal(anthropicErrorBody('no_healthy_deployment', 'x').error.type, 'overloaded_error');
  });

  test('a stream error is one SSE error event carrying the same body', () => {
    const frame = anthropicStreamErrorFrame('upstream_error', 'boom');
    const events = new SseParser().push(frame);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.event, 'error');
    assert.deepEqual(JSON.parse(events[0]?.data ?? ''), { type: 'error', error: { type: 'api_error', message: 'boom' } });
  });
});
