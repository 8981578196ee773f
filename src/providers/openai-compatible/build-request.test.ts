import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Agent } from 'undici';
import type { ChatMessage, ChatRequest, ContentPart } from '../../wire/index.ts';
import type { UpstreamCall } from '../types.ts';
import { buildChatBody, buildChatBodyJson, buildCompletionBody, buildEmbeddingBody, encodeMessages } from './build-request.ts';

function call(baseUrl = 'https://api.deepseek.com/v1'): UpstreamCall {
  // The dispatcher is never used by the builders.
  return {
    provider: { name: 'p', adapter: 'openai-compatible', baseUrl },
    upstreamModel: 'deepseek-chat',
    dispatcher: null as unknown as Agent,
    signal: new AbortController().signal,
    requestId: 'req_1',
    timeoutMsHeaders: 1000,
    timeoutMsBody: 1000,
  };
}

const req = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'alias',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  stream: false,
  includeUsage: false,
  extra: {},
  ...over,
});

describe('buildChatBody', () => {
  test('uses the upstream model and maps every option to its OpenAI field', () => {
    const body = buildChatBody(
      call(),
      req({
        maxTokensOutput: 100,
        temperature: 0.5,
        topP: 0.9,
        topK: 40,
        stop: ['x'],
        seed: 3,
        user: 'u',
        tools: [{ name: 'f', description: 'd', parameters: { type: 'object' } }],
        toolChoice: { name: 'f' },
        parallelToolCalls: true,
        responseFormat: { type: 'json_schema', name: 's', schema: { type: 'object' }, strict: true },
      }),
      false,
    );
    assert.deepEqual(body, {
      model: 'deepseek-chat',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      stop: ['x'],
      seed: 3,
      user: 'u',
      tools: [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' } } }],
      parallel_tool_calls: true,
      tool_choice: { type: 'function', function: { name: 'f' } },
      response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' }, strict: true } },
    });
  });

  test('streaming always asks for usage, whatever the client asked', () => {
    const body = buildChatBody(call(), req({ stream: true, includeUsage: false }), true);
    assert.equal(body['stream'], true);
    assert.deepEqual(body['stream_options'], { include_usage: true });
  });

  test('api.openai.com gets max_completion_tokens; compatible vendors get max_tokens', () => {
    assert.equal(buildChatBody(call('https://api.openai.com/v1'), req({ maxTokensOutput: 5 }), false)['max_completion_tokens'], 5);
    assert.equal(buildChatBody(call('https://api.openai.com/v1'), req({ maxTokensOutput: 5 }), false)['max_tokens'], undefined);
    assert.equal(buildChatBody(call('https://dashscope.aliyuncs.com/compatible-mode/v1'), req({ maxTokensOutput: 5 }), false)['max_tokens'], 5);
  });

  test('extra fields pass through, but never override the modelled ones', () => {
    const body = buildChatBody(call(), req({ extra: { enable_thinking: false, model: 'evil', frequency_penalty: 1 } }), false);
    assert.equal(body['enable_thinking'], false);
    assert.equal(body['frequency_penalty'], 1);
    assert.equal(body['model'], 'deepseek-chat');
  });

  test('parallel_tool_calls is sent only with tools (OpenAI rejects it otherwise)', () => {
    assert.equal('parallel_tool_calls' in buildChatBody(call(), req({ parallelToolCalls: false }), false), false);
  });
});

describe('encodeMessages', () => {
  test('system parts join into one string, assistant tool calls have null content, tool results become tool messages', () => {
    assert.deepEqual(
      encodeMessages([
        {
          role: 'system',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
        {
          role: 'user',
          name: 'bob',
          content: [
            { type: 'text', text: 'see' },
            { type: 'image', url: 'https://x/i.png' },
          ],
        },
        { role: 'assistant', content: [{ type: 'tool_call', id: 'c1', name: 'f', argumentsJson: '{}' }] },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c1', content: 'r' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'ok' }] },
      ]),
      [
        { role: 'system', content: 'a\nb' },
        {
          role: 'user',
          name: 'bob',
          content: [
            { type: 'text', text: 'see' },
            { type: 'image_url', image_url: { url: 'https://x/i.png' } },
          ],
        },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'r' },
        { role: 'assistant', content: 'ok' },
      ],
    );
  });

  test('an Anthropic-style user turn with tool results gives tool messages first, then the user text', () => {
    assert.deepEqual(
      encodeMessages([
        {
          role: 'user',
          content: [
            { type: 'tool_result', toolCallId: 'c1', content: '1' },
            { type: 'tool_result', toolCallId: 'c2', content: '2' },
            { type: 'text', text: 'thanks' },
          ],
        },
        { role: 'user', content: [{ type: 'tool_result', toolCallId: 'c3', content: '3' }] },
      ]),
      [
        { role: 'tool', tool_call_id: 'c1', content: '1' },
        { role: 'tool', tool_call_id: 'c2', content: '2' },
        { role: 'user', content: 'thanks' },
        { role: 'tool', tool_call_id: 'c3', content: '3' },
      ],
    );
  });
});

describe('completion and embedding bodies', () => {
  test('completion streaming asks for usage and maps max_tokens', () => {
    assert.deepEqual(
      buildCompletionBody(call(), { model: 'a', prompt: 'p', stream: true, includeUsage: false, maxTokensOutput: 7, extra: { echo: true } }, true),
      {
        echo: true,
        model: 'deepseek-chat',
        prompt: 'p',
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 7,
      },
    );
  });

  test('embeddings never ask the upstream for base64', () => {
    assert.deepEqual(buildEmbeddingBody(call(), { model: 'a', input: ['x'], encodingFormat: 'base64', dimensions: 8, extra: {} }), {
      model: 'deepseek-chat',
      input: ['x'],
      dimensions: 8,
    });
  });
});

describe('buildChatBodyJson writes exactly JSON.stringify(buildChatBody(...))', () => {
  const same = (r: ChatRequest, c: UpstreamCall = call()): void => {
    for (const stream of [false, true]) assert.equal(buildChatBodyJson(c, r, stream), JSON.stringify(buildChatBody(c, r, stream)));
  };
  const text = (t: string): ContentPart => ({ type: 'text', text: t });

  test('every option, both max-token fields, extras, names, every kind of turn', () => {
    same(req());
    same(
      req({
        maxTokensOutput: 100,
        temperature: 0.5,
        topP: 0.9,
        topK: 40,
        stop: ['x', 'y"'],
        seed: -3,
        user: 'u',
        tools: [
          { name: 'f', description: 'd', parameters: { type: 'object' } },
          { name: 'g', parameters: {} },
        ],
        toolChoice: { name: 'f' },
        parallelToolCalls: false,
        responseFormat: { type: 'json_schema', name: 's', schema: { type: 'object' }, strict: true },
      }),
    );
    same(
      req({ maxTokensOutput: 7, toolChoice: 'required', responseFormat: { type: 'json_object' }, stop: [], tools: [], parallelToolCalls: true }),
      call('https://api.openai.com/v1'),
    );
    same(req({ temperature: Number.NaN, seed: Number.POSITIVE_INFINITY }));
    same(req({ extra: { logprobs: true, metadata: { a: [1, null] }, '1': 'x' }, maxTokensOutput: 3 }));
    same(req({ extra: { skipped: undefined } }));
    same(
      req({
        messages: [
          { role: 'system', content: [] },
          { role: 'system', content: [text('a'), text('b\n"c"')], name: 'sys' },
          { role: 'user', content: [text('\u0000\ud800😀\u2028')], name: 'n' },
          { role: 'user', content: [] },
          { role: 'user', content: [text('a'), text('b')] },
          { role: 'user', content: [text('look'), { type: 'image', url: 'http://x/y.png' }] },
          { role: 'user', content: [{ type: 'tool_result', toolCallId: 'c1', content: 'r' }] },
          { role: 'user', content: [{ type: 'tool_result', toolCallId: 'c2', content: 'r' }, text('and')] },
          { role: 'assistant', content: [] },
          { role: 'assistant', content: [text('x'), text('y')], name: 'bot' },
          { role: 'assistant', content: [text('x'), { type: 'tool_call', id: 'c', name: 'f', argumentsJson: '{}' }] },
          { role: 'assistant', content: [{ type: 'tool_call', id: 'c', name: 'f', argumentsJson: '{}' }] },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c', content: 'done' }] },
          { role: 'system', content: [text('s'), { type: 'image', url: 'u' }] },
        ],
      }),
    );
  });

  test('random requests', () => {
    const part: fc.Arbitrary<ContentPart> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ type: fc.constant('text' as const), text: fc.string({ unit: 'binary', maxLength: 30 }) }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('image' as const), url: fc.string() }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('tool_call' as const), id: fc.string(), name: fc.string(), argumentsJson: fc.string() }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('tool_result' as const), toolCallId: fc.string(), content: fc.string() }) },
    );
    const message: fc.Arbitrary<ChatMessage> = fc.record(
      {
        role: fc.constantFrom('system' as const, 'user' as const, 'assistant' as const, 'tool' as const),
        content: fc.array(part, { maxLength: 3 }),
        name: fc.option(fc.string({ maxLength: 5 }), { nil: undefined }),
      },
      { requiredKeys: ['role', 'content'] },
    );
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 5 }),
        fc.record(
          {
            maxTokensOutput: fc.nat(),
            temperature: fc.double(),
            topP: fc.double({ min: 0, max: 1 }),
            stop: fc.array(fc.string(), { maxLength: 2 }),
            seed: fc.integer(),
            user: fc.string(),
            parallelToolCalls: fc.boolean(),
            extra: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.jsonValue(), { maxKeys: 2 }),
          },
          { requiredKeys: ['extra'] },
        ),
        fc.constantFrom('https://api.openai.com/v1', 'http://127.0.0.1:9/v1'),
        (messages, options, baseUrl) => same(req({ messages, ...options }), call(baseUrl)),
      ),
      { numRuns: 500 },
    );
  });
});
