import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UpstreamError } from '../types.ts';
import { chatResponseEvents, parseChatResponse, parseEmbeddingResponse, parsePlainChatResponse } from './parse-response.ts';
import { mapUsage } from './upstream-fields.ts';

const defaults = { id: 'req_1', model: 'up', createdS: 1 };

describe('mapUsage across vendors', () => {
  test('OpenAI / Qwen / GLM / Ark details, DeepSeek hit tokens, Moonshot top-level cached, cache writes', () => {
    assert.deepEqual(
      mapUsage({
        prompt_tokens: 100,
        completion_tokens: 50,
        prompt_tokens_details: { cached_tokens: 60 },
        completion_tokens_details: { reasoning_tokens: 20 },
      }),
      { tokensInput: 100, tokensOutput: 50, tokensCachedInput: 60, tokensCacheWrite: 0, tokensReasoning: 20 },
    );
    assert.equal(mapUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36 })?.tokensCachedInput, 64);
    assert.equal(mapUsage({ prompt_tokens: 100, completion_tokens: 1, cached_tokens: 30 })?.tokensCachedInput, 30);
    assert.equal(
      mapUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 0, cache_creation_input_tokens: 40 } })?.tokensCacheWrite,
      40,
    );
  });

  test('subsets are clamped to their totals and garbage counts read as absent', () => {
    assert.deepEqual(
      mapUsage({ prompt_tokens: 10, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 50 }, completion_tokens_details: { reasoning_tokens: 9 } }),
      { tokensInput: 10, tokensOutput: 2, tokensCachedInput: 10, tokensCacheWrite: 0, tokensReasoning: 2 },
    );
    assert.equal(mapUsage({}), undefined);
    assert.equal(mapUsage(null), undefined);
    assert.deepEqual(mapUsage({ prompt_tokens: -1, completion_tokens: 3.5, total_tokens: 2 }), undefined);
  });
});

describe('parseChatResponse', () => {
  test('text, reasoning, tool calls, finish and usage map to the canonical response', () => {
    const res = parseChatResponse(
      {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 99,
        model: 'deepseek-reasoner',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: 'hi',
              reasoning_content: 'think',
              tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
            },
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
      },
      defaults,
    );
    assert.deepEqual(res, {
      id: 'chatcmpl-1',
      model: 'deepseek-reasoner',
      createdS: 99,
      content: [
        { type: 'text', text: 'hi' },
        { type: 'tool_call', id: 'c', name: 'f', argumentsJson: '{"a":1}' },
      ],
      finishReason: 'tool_calls',
      reasoning: 'think',
      usage: { tokensInput: 3, tokensOutput: 4, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 },
    });
    assert.deepEqual(
      chatResponseEvents(res).map((e) => e.type),
      ['start', 'reasoning', 'text', 'tool_call_start', 'tool_call_delta', 'finish', 'usage'],
    );
  });

  test('missing usage gives zeros flagged usageEstimated, for the gateway to count', () => {
    const res = parseChatResponse({ choices: [{ message: { content: 'x' }, finish_reason: 'stop' }] }, defaults);
    assert.equal(res.usageEstimated, true);
    assert.equal(res.id, 'req_1');
    assert.equal(res.model, 'up');
    assert.equal(
      chatResponseEvents(res).some((e) => e.type === 'usage'),
      false,
    );
  });

  test('a 2xx error object or a body without choices is malformed', () => {
    for (const body of [{ error: { message: 'quota' } }, { choices: [] }, 'text', { choices: [{}] }]) {
      assert.throws(
        () => parseChatResponse(body, defaults),
        (e: unknown) => e instanceof UpstreamError && e.kind === 'malformed',
      );
    }
  });
});

describe('parsePlainChatResponse (OpenAI plain text answers without JSON.parse)', () => {
  /** What OpenAI (and the emulator) send for a text answer, key order included. */
  const openai = (
    o: {
      id?: string;
      created?: number;
      model?: string;
      content?: string;
      finish?: string;
      usage?: Record<string, unknown>;
      tail?: Record<string, unknown>;
    } = {},
  ): Record<string, unknown> => ({
    id: o.id ?? 'chatcmpl-emu0000000002',
    object: 'chat.completion',
    created: o.created ?? 1795661418,
    model: o.model ?? 'gpt-4o-mini',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: o.content ?? 'This is the answer.', refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: o.finish ?? 'stop',
      },
    ],
    usage: o.usage ?? {
      prompt_tokens: 5,
      completion_tokens: 20,
      total_tokens: 25,
      prompt_tokens_details: { cached_tokens: 2, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 3, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    ...(o.tail ?? { service_tier: 'default', system_fingerprint: 'fp_tokengrid_emu' }),
  });
  /** The fast path either declines or gives exactly what JSON.parse + parseChatResponse give; returns whether it took the text. */
  const agrees = (text: string): boolean => {
    const fast = parsePlainChatResponse(text);
    if (fast === undefined) return false;
    assert.deepEqual(fast, parseChatResponse(JSON.parse(text), defaults), text);
    return true;
  };

  test('takes OpenAI text answers, with or without the optional parts, and reads them as the general path does', () => {
    const cases = [
      openai(),
      openai({ content: '' }),
      openai({ content: 'quote " backslash \\ newline \n tab \t nul \u0000 \u2028 é 😀 \ud800' }),
      openai({ usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } }),
      openai({ usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12, prompt_tokens_details: { cached_tokens: 50, audio_tokens: 0 } } }),
      openai({
        usage: {
          prompt_tokens: 10,
          completion_tokens: 2,
          total_tokens: 12,
          completion_tokens_details: { reasoning_tokens: 9, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
        },
      }),
      openai({ created: 0, tail: {} }),
      openai({ tail: { service_tier: null, system_fingerprint: null } }),
      openai({ tail: { system_fingerprint: 'fp' } }),
      openai({ usage: { prompt_tokens: 999999999999999, completion_tokens: 1, total_tokens: 1 } }),
      ...['stop', 'length', 'tool_calls', 'content_filter', 'sensitive', 'abort', 'weird'].map((finish) => openai({ finish })),
    ];
    for (const body of cases) {
      assert.equal(agrees(JSON.stringify(body)), true, JSON.stringify(body));
      // api.openai.com pretty-prints its answers; any JSON whitespace between tokens is read the same.
      assert.equal(agrees(JSON.stringify(body, null, 2)), true, JSON.stringify(body, null, 2));
      assert.equal(agrees(` \r\n${JSON.stringify(body, null, '\t').replaceAll('\n', '\r\n')}\n`), true);
    }
    const m = openai() as { choices: { message: Record<string, unknown> }[] };
    delete m.choices[0]!.message['annotations'];
    assert.equal(agrees(JSON.stringify(m)), true);
  });

  test('declines every other shape, which the general path reads', () => {
    const withMessage = (extra: Record<string, unknown>): Record<string, unknown> => {
      const b = openai() as { choices: { message: Record<string, unknown> }[] };
      Object.assign(b.choices[0]!.message, extra);
      return b;
    };
    const declined = [
      JSON.stringify(openai()).replace('{"id"', '{\u00a0"id"'),
      JSON.stringify(openai()).replace('"content":"', '"content" "'),
      JSON.stringify(openai({ id: '' })),
      JSON.stringify(openai({ id: 'a\\b' })),
      JSON.stringify(openai({ model: '' })),
      JSON.stringify(openai({ created: 1.5 })),
      JSON.stringify(openai({ usage: { prompt_tokens: 1e16, completion_tokens: 1, total_tokens: 1 } })),
      JSON.stringify(openai({ usage: { prompt_tokens: 5, total_tokens: 5 } })),
      JSON.stringify(
        openai({
          usage: {
            prompt_tokens: 1,
            completion_tokens: 2,
            total_tokens: 3,
            prompt_tokens_details: { cached_tokens: 1, audio_tokens: 0, cache_creation_input_tokens: 1 },
          },
        }),
      ),
      JSON.stringify(openai({ usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, prompt_cache_hit_tokens: 1 } })),
      JSON.stringify(openai({ tail: { service_tier: 'default', system_fingerprint: 'fp', error: { message: 'x' } } })),
      JSON.stringify({ ...openai(), usage: undefined }),
      JSON.stringify(withMessage({ content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] })),
      JSON.stringify(withMessage({ tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] })),
      JSON.stringify(withMessage({ annotations: [{ type: 'url_citation' }] })),
      JSON.stringify(withMessage({ reasoning_content: 'think' })),
      JSON.stringify(withMessage({ content: [{ type: 'text', text: 'a' }] })),
      JSON.stringify(openai()).replace('"stop"', 'null'),
      JSON.stringify(openai()).replace('"This is', '"\u0001This is'),
      JSON.stringify(openai()).replace('is the', 'is \\x the'),
      JSON.stringify(openai()) + ' x',
      JSON.stringify(openai({ content: 'x'.repeat(5000) })),
    ];
    for (const text of declined) assert.equal(parsePlainChatResponse(text), undefined, text.slice(0, 300));
  });

  test('random answers: the fast path takes the OpenAI shape and agrees with the general path', () => {
    const count = fc.integer({ min: 0, max: 2 ** 40 });
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.stringMatching(/^[\w.-]{1,30}$/),
        count,
        fc.constantFrom('stop', 'length', 'content_filter', 'tool_calls'),
        count,
        count,
        count,
        count,
        (content, model, created, finish, input, output, cached, reasoning) => {
          const usage = {
            prompt_tokens: input,
            completion_tokens: output,
            total_tokens: input + output,
            prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
            completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
          };
          const body = openai({ content, model, created, finish, usage });
          assert.equal(agrees(JSON.stringify(body)), true);
          assert.equal(agrees(JSON.stringify(body, null, 2)), true);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('random edits of an OpenAI answer: declined, or read as the general path reads them', () => {
    const base = JSON.stringify(openai({ content: 'Hello \\"world\\"' }));
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.nat(8), fc.string({ maxLength: 4 }), (at, cut, insert) => {
        const text = base.slice(0, at) + insert + base.slice(at + cut);
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          assert.equal(parsePlainChatResponse(text), undefined, text);
          return;
        }
        const fast = parsePlainChatResponse(text);
        if (fast !== undefined) assert.deepEqual(fast, parseChatResponse(parsed, defaults), text);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseEmbeddingResponse', () => {
  test('vectors come back in input order, base64 ones decoded', () => {
    const b64 = Buffer.from(new Float32Array([0.25, -2]).buffer).toString('base64');
    const res = parseEmbeddingResponse(
      {
        object: 'list',
        data: [
          { index: 1, embedding: [1, 2] },
          { index: 0, embedding: b64 },
        ],
        model: 'e',
        usage: { prompt_tokens: 4, total_tokens: 4 },
      },
      defaults,
    );
    assert.deepEqual(res.data, [
      [0.25, -2],
      [1, 2],
    ]);
    assert.deepEqual(res.usage, { tokensInput: 4, tokensOutput: 0, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 });
  });
});
