import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResponse, GeminiStreamDecoder, mapFinishReason, mapUsage } from './parse-response.ts';

describe('Gemini response -> canonical', () => {
  test('finish reasons map to stop, tool_calls, length, content_filter and error', () => {
    assert.equal(mapFinishReason('STOP', false), 'stop');
    assert.equal(mapFinishReason('STOP', true), 'tool_calls');
    assert.equal(mapFinishReason('MAX_TOKENS', true), 'length');
    for (const r of ['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'LANGUAGE']) {
      assert.equal(mapFinishReason(r, false), 'content_filter', r);
    }
    assert.equal(mapFinishReason('MALFORMED_FUNCTION_CALL', false), 'error');
    assert.equal(mapFinishReason('SOMETHING_NEW', false), 'stop');
  });

  test('thought tokens count as output and as reasoning; cached tokens are a subset of input', () => {
    assert.deepEqual(
      mapUsage({
        promptTokenCount: 100,
        candidatesTokenCount: 20,
        thoughtsTokenCount: 30,
        cachedContentTokenCount: 64,
        totalTokenCount: 150,
      }),
      { tokensInput: 100, tokensOutput: 50, tokensCachedInput: 64, tokensCacheWrite: 0, tokensReasoning: 30 },
    );
    assert.deepEqual(mapUsage(undefined), { tokensInput: 0, tokensOutput: 0, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 });
  });

  test('a response blocked at the prompt has no candidates and finishes with content_filter', () => {
    const d = decodeResponse({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 9 } }, 'r1');
    assert.equal(d.finishReason, 'content_filter');
    assert.deepEqual(d.content, []);
    assert.equal(d.usage.tokensInput, 9);
  });

  test('function calls get ids that are stable for one response and differ between responses', () => {
    const body = {
      candidates: [{ content: { parts: [{ functionCall: { name: 'f', args: { x: 1 } } }, { functionCall: { name: 'f' } }] }, finishReason: 'STOP' }],
    };
    const a = decodeResponse(body, 'resp-A');
    const again = decodeResponse(body, 'resp-A');
    const b = decodeResponse(body, 'resp-B');
    assert.deepEqual(a, again);
    const ids = a.content.map((p) => (p.type === 'tool_call' ? p.id : ''));
    assert.equal(new Set(ids).size, 2);
    assert.notDeepEqual(
      ids,
      b.content.map((p) => (p.type === 'tool_call' ? p.id : '')),
    );
    assert.deepEqual(a.content[0], { type: 'tool_call', id: ids[0], name: 'f', argumentsJson: '{"x":1}' });
    assert.equal(a.finishReason, 'tool_calls');
  });

  test('the stream decoder emits start once, keeps the last usage, and ends with finish then usage', () => {
    const d = new GeminiStreamDecoder({ fallbackId: 'gemini-req1', fallbackModel: 'm', createdS: 5 });
    const first = d.push({ candidates: [{ content: { parts: [{ text: 'Hi' }] } }], usageMetadata: { promptTokenCount: 4 }, responseId: 'R' });
    const second = d.push({
      candidates: [{ content: { parts: [{ text: ' there' }] }, finishReason: 'STOP' }],
      usageMetadata: { promptTokenCount: 4, candidatesTokenCount: 2 },
      responseId: 'R',
    });
    assert.equal(d.sawFinish, true);
    assert.deepEqual(
      [...first, ...second, ...d.end()],
      [
        { type: 'start', id: 'R', model: 'm', createdS: 5 },
        { type: 'text', text: 'Hi' },
        { type: 'text', text: ' there' },
        { type: 'finish', finishReason: 'stop' },
        { type: 'usage', usage: { tokensInput: 4, tokensOutput: 2, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 } },
      ],
    );
  });
});
