import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMessagesBody, messagesUrl } from './index.ts';
import type { ChatRequest } from '../../wire/index.ts';

const req = (over: Partial<ChatRequest>): ChatRequest => ({
  model: 'client-model',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  stream: false,
  includeUsage: true,
  extra: {},
  ...over,
});

describe('buildMessagesBody', () => {
  test('max_tokens is always present: the request value or 4096', () => {
    assert.equal(buildMessagesBody(req({}), 'claude-up', false)['max_tokens'], 4096);
    assert.equal(buildMessagesBody(req({ maxTokensOutput: 10 }), 'claude-up', false)['max_tokens'], 10);
  });

  test('the upstream model name is sent and stream only when streaming', () => {
    const body = buildMessagesBody(req({}), 'claude-up', false);
    assert.equal(body['model'], 'claude-up');
    assert.equal(body['stream'], undefined);
    assert.equal(buildMessagesBody(req({}), 'claude-up', true)['stream'], true);
  });

  test('system messages anywhere are joined into the top-level system', () => {
    const body = buildMessagesBody(
      req({
        messages: [
          { role: 'system', content: [{ type: 'text', text: 'A' }] },
          { role: 'user', content: [{ type: 'text', text: 'q' }] },
          { role: 'system', content: [{ type: 'text', text: 'B' }] },
        ],
      }),
      'm',
      false,
    );
    assert.equal(body['system'], 'A\n\nB');
    assert.deepEqual(body['messages'], [{ role: 'user', content: [{ type: 'text', text: 'q' }] }]);
  });

  test('tool messages become one user turn of tool_result blocks, merged and placed before text', () => {
    const body = buildMessagesBody(
      req({
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'weather?' }] },
          {
            role: 'assistant',
            content: [
              { type: 'text', text: '' },
              { type: 'tool_call', id: 't1', name: 'w', argumentsJson: '{"c":"P"}' },
              { type: 'tool_call', id: 't2', name: 'w', argumentsJson: 'not json' },
            ],
          },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 't1', content: '15C' }] },
          { role: 'user', content: [{ type: 'text', text: 'and?' }] },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 't2', content: '', isError: true }] },
        ],
      }),
      'm',
      false,
    );
    assert.deepEqual(body['messages'], [
      { role: 'user', content: [{ type: 'text', text: 'weather?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 't1', name: 'w', input: { c: 'P' } },
          { type: 'tool_use', id: 't2', name: 'w', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 't1', content: '15C' },
          { type: 'tool_result', tool_use_id: 't2', is_error: true },
          { type: 'text', text: 'and?' },
        ],
      },
    ]);
  });

  test('consecutive same-role messages are merged and empty turns dropped', () => {
    const body = buildMessagesBody(
      req({
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'a' }] },
          { role: 'assistant', content: [{ type: 'text', text: '' }] },
          { role: 'user', content: [{ type: 'text', text: 'b' }] },
        ],
      }),
      'm',
      false,
    );
    assert.deepEqual(body['messages'], [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
    ]);
  });

  test('data URL images become base64 sources, http URLs url sources', () => {
    const body = buildMessagesBody(
      req({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', url: 'data:image/jpeg;base64,/9j/' },
              { type: 'image', url: 'https://x/y.png' },
              { type: 'image', url: 'data:image/svg+xml,%3Csvg%3E' },
            ],
          },
        ],
      }),
      'm',
      false,
    );
    const content = (body['messages'] as { content: unknown[] }[])[0]?.content;
    assert.deepEqual(content, [
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } },
      { type: 'image', source: { type: 'url', url: 'https://x/y.png' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/svg+xml', data: Buffer.from('<svg>').toString('base64') } },
    ]);
  });

  test('tools, tool choice and parallel tool calls are mapped', () => {
    const tools = [{ name: 'f', description: 'd', parameters: { type: 'object' } }];
    const body = buildMessagesBody(req({ tools, toolChoice: 'required', parallelToolCalls: false }), 'm', false);
    assert.deepEqual(body['tools'], [{ name: 'f', description: 'd', input_schema: { type: 'object' } }]);
    assert.deepEqual(body['tool_choice'], { type: 'any', disable_parallel_tool_use: true });
    assert.deepEqual(buildMessagesBody(req({ tools, toolChoice: { name: 'f' } }), 'm', false)['tool_choice'], { type: 'tool', name: 'f' });
    assert.deepEqual(buildMessagesBody(req({ tools, toolChoice: 'none' }), 'm', false)['tool_choice'], { type: 'none' });
    assert.equal(buildMessagesBody(req({ tools }), 'm', false)['tool_choice'], undefined);
    assert.equal(buildMessagesBody(req({ toolChoice: 'auto' }), 'm', false)['tool_choice'], undefined, 'no tools, no tool_choice');
  });

  test('sampling, stop, user are mapped; temperature is clamped to [0, 1]', () => {
    const body = buildMessagesBody(req({ temperature: 1.7, topP: 0.5, topK: 3, stop: ['X'], user: 'u' }), 'm', false);
    assert.equal(body['temperature'], 1);
    assert.equal(body['top_p'], 0.5);
    assert.equal(body['top_k'], 3);
    assert.deepEqual(body['stop_sequences'], ['X']);
    assert.deepEqual(body['metadata'], { user_id: 'u' });
  });

  test('json response formats become a system instruction', () => {
    const json = buildMessagesBody(req({ responseFormat: { type: 'json_object' } }), 'm', false);
    assert.match(String(json['system']), /JSON object/);
    const schema = buildMessagesBody(
      req({
        messages: [
          { role: 'system', content: [{ type: 'text', text: 'S' }] },
          { role: 'user', content: [{ type: 'text', text: 'q' }] },
        ],
        responseFormat: { type: 'json_schema', name: 'out', schema: { type: 'object', required: ['a'] } },
      }),
      'm',
      false,
    );
    assert.match(String(schema['system']), /^S\n\n.*"required":\["a"\]/s);
  });

  test('only Anthropic top-level fields are forwarded from extra', () => {
    const thinking = { type: 'enabled', budget_tokens: 2048 };
    const body = buildMessagesBody(req({ extra: { thinking, logprobs: true, frequency_penalty: 1 } }), 'm', false);
    assert.deepEqual(body['thinking'], thinking);
    assert.equal(body['logprobs'], undefined);
    assert.equal(body['frequency_penalty'], undefined);
  });
});

test('messagesUrl accepts base URLs with or without /v1', () => {
  assert.equal(messagesUrl('https://api.anthropic.com'), 'https://api.anthropic.com/v1/messages');
  assert.equal(messagesUrl('https://api.anthropic.com/'), 'https://api.anthropic.com/v1/messages');
  assert.equal(messagesUrl('http://proxy/anthropic/v1'), 'http://proxy/anthropic/v1/messages');
});

describe("an Anthropic client's own body (anthropicNative)", () => {
  const native = (body: Record<string, unknown>, headers: Record<string, string> = {}): ChatRequest =>
    req({ anthropicNative: { body, headers, requires: [] }, maxTokensOutput: 500 });
  const system = [{ type: 'text', text: 'S', cache_control: { type: 'ephemeral' } }];
  const messages = [
    { role: 'user', content: [{ type: 'text', text: 'q', cache_control: { type: 'ephemeral' } }] },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 't', signature: 'sig' },
        { type: 'redacted_thinking', data: 'r' },
        { type: 'tool_use', id: 'a', name: 'f', input: {} },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'a', content: 'ok', cache_control: { type: 'ephemeral' } },
        { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'd' } },
      ],
    },
  ];

  test('is forwarded as sent, with the upstream model, the granted max_tokens and stream replaced', () => {
    const body = {
      model: 'claude-opus-4-8',
      max_tokens: 32000,
      stream: true,
      system,
      messages,
      tools: [{ type: 'web_search_20250305', name: 'web_search' }],
      output_config: { effort: 'high' },
      context_management: { edits: [] },
      metadata: { user_id: 'u' },
    };
    const out = buildMessagesBody(native(body), 'claude-up', false);
    const { stream: _stream, ...rest } = body;
    assert.deepEqual(out, { ...rest, model: 'claude-up', max_tokens: 500 });
    assert.equal(buildMessagesBody(native(body), 'claude-up', true)['stream'], true);
  });

  test('system messages inside messages stay with the mid-conversation-system beta and are folded into system without it', () => {
    const body = { model: 'm', max_tokens: 10, system, messages: [messages[0], { role: 'system', content: 'later' }] };
    const kept = buildMessagesBody(native(body, { 'anthropic-beta': 'a-1,mid-conversation-system-2026-04-07' }), 'up', false);
    assert.deepEqual(kept['messages'], body.messages);
    assert.deepEqual(kept['system'], system);
    const folded = buildMessagesBody(native({ ...body, system: 'top' }), 'up', false);
    assert.deepEqual(folded['messages'], [messages[0]]);
    assert.deepEqual(folded['system'], [
      { type: 'text', text: 'top' },
      { type: 'text', text: 'later' },
    ]);
  });

  test('a thinking budget follows max_tokens down when the grant is smaller, and thinking is dropped when no budget fits', () => {
    const body = { model: 'm', max_tokens: 20000, thinking: { type: 'enabled', budget_tokens: 16000 }, messages: [messages[0]] };
    assert.deepEqual(buildMessagesBody(native(body), 'up', false)['thinking'], undefined);
    const roomy = buildMessagesBody({ ...native(body), maxTokensOutput: 8000 }, 'up', false);
    assert.deepEqual(roomy['thinking'], { type: 'enabled', budget_tokens: 7999 });
    assert.deepEqual(buildMessagesBody({ ...native(body), maxTokensOutput: 18000 }, 'up', false)['thinking'], body.thinking);
    assert.deepEqual(buildMessagesBody(native({ ...body, thinking: { type: 'adaptive' } }), 'up', false)['thinking'], { type: 'adaptive' });
  });
});
