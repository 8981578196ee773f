import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamError } from '../types.ts';
import { chatResponseEvents, parseChatResponse, parseEmbeddingResponse } from './parse-response.ts';
import { mapUsage } from './upstream-fields.ts';

const defaults = { id: 'req_1', model: 'up', createdS: 1 };

describe('mapUsage across vendors', () => {
  test('OpenAI / Qwen / GLM / Ark details, DeepSeek hit tokens, Moonshot top-level cached, cache writes', () => {
    assert.deepEqual(mapUsage({ prompt_tokens: 100, completion_tokens: 50, prompt_tokens_details: { cached_tokens: 60 }, completion_tokens_details: { reasoning_tokens: 20 } }),
      { tokensInput: 100, tokensOutput: 50, tokensCachedInput: 60, tokensCacheWrite: 0, tokensReasoning: 20 });
    assert.equal(mapUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36 })?.tokensCachedInput, 64);
    assert.equal(mapUsage({ prompt_tokens: 100, completion_tokens: 1, cached_tokens: 30 })?.tokensCachedInput, 30);
    assert.equal(mapUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 0, cache_creation_input_tokens: 40 } })?.tokensCacheWrite, 40);
  });

  test('subsets are clamped to their totals and garbage counts read as absent', () => {
    assert.deepEqual(mapUsage({ prompt_tokens: 10, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 50 }, completion_tokens_details: { reasoning_tokens: 9 } }),
      { tokensInput: 10, tokensOutput: 2, tokensCachedInput: 10, tokensCacheWrite: 0, tokensReasoning: 2 });
    assert.equal(mapUsage({}), undefined);
    assert.equal(mapUsage(null), undefined);
    assert.deepEqual(mapUsage({ prompt_tokens: -1, completion_tokens: 3.5, total_tokens: 2 }), undefined);
  });
});

describe('parseChatResponse', () => {
  test('text, reasoning, tool calls, finish and usage map to the canonical response', () => {
    const res = parseChatResponse({
      id: 'chatcmpl-1', object: 'chat.completion', created: 99, model: 'deepseek-reasoner',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi', reasoning_content: 'think', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    }, defaults);
    assert.deepEqual(res, {
      id: 'chatcmpl-1', model: 'deepseek-reasoner', createdS: 99,
      content: [{ type: 'text', text: 'hi' }, { type: 'tool_call', id: 'c', name: 'f', argumentsJson: '{"a":1}' }],
      finishReason: 'tool_calls', reasoning: 'think',
      usage: { tokensInput: 3, tokensOutput: 4, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 },
    });
    assert.deepEqual(chatResponseEvents(res).map((e) => e.type), ['start', 'reasoning', 'text', 'tool_call_start', 'tool_call_delta', 'finish', 'usage']);
  });

  test('missing usage gives zeros flagged usageEstimated, for the gateway to count', () => {
    const res = parseChatResponse({ choices: [{ message: { content: 'x' }, finish_reason: 'stop' }] }, defaults);
    assert.equal(res.usageEstimated, true);
    assert.equal(res.id, 'req_1');
    assert.equal(res.model, 'up');
    assert.equal(chatResponseEvents(res).some((e) => e.type === 'usage'), false);
  });

  test('a 2xx error object or a body without choices is malformed', () => {
    for (const body of [{ error: { message: 'quota' } }, { choices: [] }, 'text', { choices: [{}] }]) {
      assert.throws(() => parseChatResponse(body, defaults), (e: unknown) => e instanceof UpstreamError && e.kind === 'malformed');
    }
  });
});

describe('parseEmbeddingResponse', () => {
  test('vectors come back in input order, base64 ones decoded', () => {
    const b64 = Buffer.from(new Float32Array([0.25, -2]).buffer).toString('base64');
    const res = parseEmbeddingResponse({ object: 'list', data: [{ index: 1, embedding: [1, 2] }, { index: 0, embedding: b64 }], model: 'e', usage: { prompt_tokens: 4, total_tokens: 4 } }, defaults);
    assert.deepEqual(res.data, [[0.25, -2], [1, 2]]);
    assert.deepEqual(res.usage, { tokensInput: 4, tokensOutput: 0, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 });
  });
});
