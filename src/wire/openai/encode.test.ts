import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SseParser } from '../sse.ts';
import type { ChatResponse, ContentPart, FinishReason, Usage } from '../types.ts';
import {
  encodeChatResponse,
  encodeChatResponseJson,
  encodeCompletionResponse,
  encodeEmbeddingResponse,
  OpenAICompletionStreamEncoder,
  openaiErrorBody,
} from './index.ts';

const usage: Usage = { tokensInput: 12, tokensOutput: 7, tokensCachedInput: 3, tokensCacheWrite: 1, tokensReasoning: 4 };

function chat(content: ChatResponse['content'], extra: Partial<ChatResponse> = {}): ChatResponse {
  return { id: 'chatcmpl-9', model: 'upstream-x', createdS: 1700000001, content, finishReason: 'stop', usage, ...extra };
}

describe('encodeChatResponse', () => {
  test('a text answer is a chat.completion with the client model name and full usage details', () => {
    assert.deepEqual(
      encodeChatResponse(
        chat([
          { type: 'text', text: 'Hel' },
          { type: 'text', text: 'lo' },
        ]),
        'alias-model',
      ),
      {
        id: 'chatcmpl-9',
        object: 'chat.completion',
        created: 1700000001,
        model: 'alias-model',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hello', refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage: {
          prompt_tokens: 12,
          completion_tokens: 7,
          total_tokens: 19,
          prompt_tokens_details: { cached_tokens: 3, audio_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 4, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
        },
        system_fingerprint: null,
      },
    );
  });

  test('tool calls alone give content null and message.tool_calls', () => {
    const body = encodeChatResponse(
      chat([{ type: 'tool_call', id: 'call_1', name: 'f', argumentsJson: '{"a":1}' }], { finishReason: 'tool_calls' }),
      'm',
    ) as any;
    assert.equal(body.choices[0].message.content, null);
    assert.deepEqual(body.choices[0].message.tool_calls, [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }]);
    assert.equal(body.choices[0].finish_reason, 'tool_calls');
  });

  test('reasoning is exposed as reasoning_content; an empty answer is an empty string', () => {
    const body = encodeChatResponse(chat([], { reasoning: 'because' }), 'm') as any;
    assert.equal(body.choices[0].message.content, '');
    assert.equal(body.choices[0].message.reasoning_content, 'because');
  });
});

describe('encodeChatResponseJson writes exactly JSON.stringify(encodeChatResponse(...))', () => {
  const same = (res: ChatResponse, model: string, id?: string): void =>
    assert.equal(encodeChatResponseJson(res, model, id), JSON.stringify(encodeChatResponse(res, model, id)));

  test('text, tool calls, reasoning, empty answers, every finish reason, the id default', () => {
    same(
      chat([
        { type: 'text', text: 'Hel' },
        { type: 'text', text: 'lo' },
      ]),
      'alias-model',
      'chatcmpl-req',
    );
    same(chat([{ type: 'text', text: 'x' }]), 'm');
    same(chat([]), 'm');
    same(chat([], { reasoning: '' }), 'm');
    same(chat([], { reasoning: 'because "quoted"\n' }), 'm');
    same(chat([{ type: 'tool_call', id: 'call_1', name: 'f', argumentsJson: '{"a":1}' }], { finishReason: 'tool_calls' }), 'm');
    same(
      chat(
        [
          { type: 'text', text: 'calling' },
          { type: 'tool_call', id: 'c1', name: 'f', argumentsJson: '' },
          { type: 'tool_call', id: 'c2', name: 'g', argumentsJson: '{"q":"\u2028"}' },
        ],
        { reasoning: 'r' },
      ),
      'm',
    );
    // Parts a chat response never carries are ignored by both.
    same(chat([{ type: 'image', url: 'http://x/y.png' } as ContentPart, { type: 'text', text: 't' }]), 'm');
    for (const finishReason of ['stop', 'length', 'tool_calls', 'content_filter', 'error'] as FinishReason[]) same(chat([], { finishReason }), 'm');
  });

  test('strings that need escaping, lone surrogates, odd numbers', () => {
    same(chat([{ type: 'text', text: '\u0000\u001f"\\/\ud800 \udfff 😀 \u2028\t\r\n' }]), 'm\u0001"', 'id"\\');
    for (const n of [0, -0, 1e21, 1.5, -3, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER]) {
      same(chat([], { createdS: n, usage: { tokensInput: n, tokensOutput: 2, tokensCachedInput: n, tokensCacheWrite: 0, tokensReasoning: n } }), 'm');
    }
  });

  test('random responses', () => {
    const part: fc.Arbitrary<ContentPart> = fc.oneof(
      fc.record({ type: fc.constant('text' as const), text: fc.string({ unit: 'binary' }) }),
      fc.record({ type: fc.constant('tool_call' as const), id: fc.string(), name: fc.string({ unit: 'binary' }), argumentsJson: fc.string() }),
    );
    const count = fc.nat();
    fc.assert(
      fc.property(
        fc.record(
          {
            id: fc.string(),
            model: fc.string(),
            createdS: fc.integer(),
            content: fc.array(part, { maxLength: 4 }),
            reasoning: fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
            finishReason: fc.constantFrom<FinishReason>('stop', 'length', 'tool_calls', 'content_filter', 'error'),
            usage: fc.record({ tokensInput: count, tokensOutput: count, tokensCachedInput: count, tokensCacheWrite: count, tokensReasoning: count }),
          },
          { requiredKeys: ['id', 'model', 'createdS', 'content', 'finishReason', 'usage'] },
        ),
        fc.string({ unit: 'binary' }),
        fc.option(fc.string(), { nil: undefined }),
        (res, model, id) => same(res as ChatResponse, model, id),
      ),
      { numRuns: 500 },
    );
  });
});

describe('legacy completions and embeddings', () => {
  test('encodeCompletionResponse lists every choice with its index', () => {
    const body = encodeCompletionResponse(
      {
        id: 'cmpl-1',
        model: 'u',
        createdS: 5,
        choices: [
          { text: 'a', finishReason: 'stop' },
          { text: 'b', finishReason: 'length' },
        ],
        usage,
      },
      'm',
    );
    assert.deepEqual(body, {
      id: 'cmpl-1',
      object: 'text_completion',
      created: 5,
      model: 'm',
      choices: [
        { text: 'a', index: 0, logprobs: null, finish_reason: 'stop' },
        { text: 'b', index: 1, logprobs: null, finish_reason: 'length' },
      ],
      usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
    });
  });

  test('the completion stream is text chunks, a finish chunk, one usage chunk, [DONE]', () => {
    const enc = new OpenAICompletionStreamEncoder({ id: 'cmpl-2', model: 'm', createdS: 5, includeUsage: true });
    let raw = enc.encode({ type: 'start', id: 'u', model: 'u', createdS: 1 });
    raw += enc.encode({ type: 'text', text: 'Once' });
    raw += enc.encode({ type: 'usage', usage });
    raw += enc.encode({ type: 'reasoning', text: 'dropped' });
    raw += enc.encode({ type: 'finish', finishReason: 'length' });
    raw += enc.finish();
    const frames = new SseParser().push(raw);
    assert.equal(frames.at(-1)?.data, '[DONE]');
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.data));
    assert.deepEqual(
      chunks.map((c) => c.choices),
      [[{ text: 'Once', index: 0, logprobs: null, finish_reason: null }], [{ text: '', index: 0, logprobs: null, finish_reason: 'length' }], []],
    );
    assert.equal(chunks[0].object, 'text_completion');
    assert.deepEqual(chunks[2].usage, { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 });
  });

  test('embeddings encode as floats or as little-endian float32 base64', () => {
    const res = { model: 'u', data: [[0.5, -1], [2]], usage: { ...usage, tokensOutput: 0 } };
    const floats = encodeEmbeddingResponse(res, 'emb') as any;
    assert.deepEqual(floats, {
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [0.5, -1] },
        { object: 'embedding', index: 1, embedding: [2] },
      ],
      model: 'emb',
      usage: { prompt_tokens: 12, total_tokens: 12 },
    });
    const b64 = encodeEmbeddingResponse(res, 'emb', 'base64') as any;
    const buf = Buffer.from(b64.data[0].embedding, 'base64');
    assert.deepEqual(Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4)), [0.5, -1]);
  });
});

describe('openaiErrorBody', () => {
  test('uses the registry type and our code, param null by default', () => {
    assert.deepEqual(openaiErrorBody('insufficient_quota', 'out of tokens'), {
      error: { message: 'out of tokens', type: 'insufficient_quota', param: null, code: 'insufficient_quota' },
    });
    assert.deepEqual(openaiErrorBody('invalid_request', 'bad', 'messages[0].role').error.param, 'messages[0].role');
    assert.equal(openaiErrorBody('rate_limited', 'slow down').error.type, 'rate_limit_error');
  });
});
