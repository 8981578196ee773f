import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCountTokensRequest, decodeMessagesRequest } from './index.ts';
import type { ChatRequest } from '../types.ts';

const base = { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'hi' }] };

function decodeOk(body: unknown): ChatRequest {
  const r = decodeMessagesRequest(body);
  if (!r.ok) assert.fail(`expected ok, got ${r.message}`);
  return r.value;
}

function decodeErr(body: unknown): { message: string; param: unknown } {
  const r = decodeMessagesRequest(body);
  if (r.ok) assert.fail('expected an error');
  assert.equal(r.code, 'invalid_request');
  return { message: r.message, param: r.details?.['param'] };
}

describe('decodeMessagesRequest: happy paths', () => {
  test('a minimal request decodes to one user message with the required fields', () => {
    const req = decodeOk(base);
    assert.equal(req.model, 'claude-sonnet-4-5');
    assert.equal(req.maxTokensOutput, 256);
    assert.equal(req.stream, false);
    assert.equal(req.includeUsage, true);
    assert.deepEqual(req.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
    assert.deepEqual(req.extra, {});
  });

  test('a system string becomes a leading system message', () => {
    const req = decodeOk({ ...base, system: 'be brief' });
    assert.deepEqual(req.messages[0], { role: 'system', content: [{ type: 'text', text: 'be brief' }] });
    assert.equal(req.messages[1]?.role, 'user');
  });

  test('system text blocks become one system message with one part per block', () => {
    const req = decodeOk({
      ...base,
      system: [
        { type: 'text', text: 'a', cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'b' },
      ],
    });
    assert.deepEqual(req.messages[0], {
      role: 'system',
      content: [
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ],
    });
  });

  test('sampling, stop sequences, metadata and stream are mapped', () => {
    const req = decodeOk({
      ...base,
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      stop_sequences: ['END'],
      metadata: { user_id: 'u1' },
      stream: true,
    });
    assert.equal(req.temperature, 0.5);
    assert.equal(req.topP, 0.9);
    assert.equal(req.topK, 40);
    assert.deepEqual(req.stop, ['END']);
    assert.equal(req.user, 'u1');
    assert.equal(req.stream, true);
  });

  test('unknown and unmodelled top-level fields are kept in extra', () => {
    const thinking = { type: 'enabled', budget_tokens: 1024 };
    const req = decodeOk({ ...base, thinking, service_tier: 'auto', future_field: [1] });
    assert.deepEqual(req.extra, { thinking, service_tier: 'auto', future_field: [1] });
  });

  test('tools and every tool_choice form are mapped', () => {
    const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: {} } }];
    const auto = decodeOk({ ...base, tools, tool_choice: { type: 'auto' } });
    assert.deepEqual(auto.tools, [{ name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: {} } }]);
    assert.equal(auto.toolChoice, 'auto');
    assert.equal(decodeOk({ ...base, tools, tool_choice: { type: 'any' } }).toolChoice, 'required');
    assert.equal(decodeOk({ ...base, tools, tool_choice: { type: 'none' } }).toolChoice, 'none');
    const named = decodeOk({ ...base, tools, tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true } });
    assert.deepEqual(named.toolChoice, { name: 'get_weather' });
    assert.equal(named.parallelToolCalls, false);
  });

  test('assistant tool_use becomes a tool_call part with the input as JSON text', () => {
    const req = decodeOk({
      ...base,
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'checking' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          ],
        },
      ],
    });
    assert.deepEqual(req.messages[1], {
      role: 'assistant',
      content: [
        { type: 'text', text: 'checking' },
        { type: 'tool_call', id: 'toolu_1', name: 'get_weather', argumentsJson: '{"city":"Paris"}' },
      ],
    });
  });

  test('tool_result blocks become tool messages placed before the rest of the user turn', () => {
    const req = decodeOk({
      ...base,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '15C' },
            {
              type: 'tool_result',
              tool_use_id: 'toolu_2',
              content: [
                { type: 'text', text: 'a' },
                { type: 'text', text: 'b' },
              ],
              is_error: true,
            },
            { type: 'text', text: 'thanks' },
          ],
        },
      ],
    });
    assert.deepEqual(req.messages, [
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'toolu_1', content: '15C' }] },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'toolu_2', content: 'a\nb', isError: true }] },
      { role: 'user', content: [{ type: 'text', text: 'thanks' }] },
    ]);
  });

  test('a tool_result without content decodes to an empty result and no empty user turn', () => {
    const req = decodeOk({ ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't' }] }] });
    assert.deepEqual(req.messages, [{ role: 'tool', content: [{ type: 'tool_result', toolCallId: 't', content: '' }] }]);
  });

  test('images inside a tool_result move to the following user turn', () => {
    const req = decodeOk({
      ...base,
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 't',
              content: [
                { type: 'text', text: 'screenshot' },
                { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
              ],
            },
          ],
        },
      ],
    });
    assert.deepEqual(req.messages, [
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 't', content: 'screenshot' }] },
      { role: 'user', content: [{ type: 'image', url: 'data:image/png;base64,AAAA', mediaType: 'image/png' }] },
    ]);
  });

  test('base64 and url images become image parts', () => {
    const req = decodeOk({
      ...base,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
          ],
        },
      ],
    });
    assert.deepEqual(req.messages[0]?.content, [
      { type: 'image', url: 'data:image/jpeg;base64,/9j/', mediaType: 'image/jpeg' },
      { type: 'image', url: 'https://example.com/a.png' },
    ]);
  });

  test('thinking blocks in assistant history are dropped', () => {
    const req = decodeOk({
      ...base,
      messages: [
        { role: 'user', content: 'q' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'hmm', signature: 'sig' },
            { type: 'text', text: 'a' },
          ],
        },
      ],
    });
    assert.deepEqual(req.messages[1], { role: 'assistant', content: [{ type: 'text', text: 'a' }] });
  });

  test('count_tokens decodes without max_tokens and is never streamed', () => {
    const r = decodeCountTokensRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], system: 's' });
    assert.ok(r.ok);
    assert.equal(r.value.maxTokensOutput, undefined);
    assert.equal(r.value.stream, false);
    assert.equal(r.value.messages.length, 2);
  });
});

describe('decodeMessagesRequest: errors', () => {
  test('missing max_tokens is refused with the wording Anthropic uses', () => {
    const { max_tokens: _omit, ...body } = base;
    assert.deepEqual(decodeErr(body), { message: 'max_tokens: Field required', param: 'max_tokens' });
  });

  test('max_tokens must be a positive integer', () => {
    assert.equal(decodeErr({ ...base, max_tokens: 0 }).message, 'max_tokens: Input should be greater than or equal to 1');
    assert.equal(decodeErr({ ...base, max_tokens: 1.5 }).message, 'max_tokens: Input should be a valid integer');
    assert.equal(decodeErr({ ...base, max_tokens: '10' }).param, 'max_tokens');
  });

  test('a non-object body, missing model or missing messages is refused', () => {
    assert.equal(decodeErr([1]).param, 'body');
    assert.deepEqual(decodeErr({ max_tokens: 1, messages: [] }), { message: 'model: Field required', param: 'model' });
    assert.deepEqual(decodeErr({ model: 'm', max_tokens: 1 }), { message: 'messages: Field required', param: 'messages' });
    assert.equal(decodeErr({ ...base, messages: [] }).message, 'messages: at least one message is required');
  });

  test('errors inside messages carry the dotted path of the bad field', () => {
    assert.deepEqual(decodeErr({ ...base, messages: [{ role: 'tool', content: 'x' }] }), {
      message: "messages.0.role: Input should be 'user', 'assistant' or 'system'",
      param: 'messages.0.role',
    });
    assert.equal(decodeErr({ ...base, messages: [{ role: 'user' }] }).param, 'messages.0.content');
    assert.equal(decodeErr({ ...base, messages: [{ role: 'user', content: [{ type: 'text' }] }] }).param, 'messages.0.content.0.text');
    assert.equal(
      decodeErr({ ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png' } }] }] }).param,
      'messages.0.content.0.source.data',
    );
    assert.equal(
      decodeErr({ ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }).param,
      'messages.0.content.0.source.type',
    );
  });

  test('tool_use in a user turn and tool_result in an assistant turn are refused', () => {
    assert.equal(
      decodeErr({ ...base, messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }] }).param,
      'messages.0.content.0.type',
    );
    assert.equal(
      decodeErr({ ...base, messages: [{ role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 'a' }] }] }).param,
      'messages.0.content.0.type',
    );
  });

  test('tool_use input must be an object', () => {
    assert.equal(
      decodeErr({ ...base, messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'b', input: '{}' }] }] }).message,
      'messages.0.content.0.input: Input should be a valid dictionary',
    );
  });

  test('document blocks and server tools are kept for an Anthropic upstream and listed as what only Anthropic can serve', () => {
    const doc = decodeMessagesRequest({
      ...base,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'document', source: {} },
            { type: 'text', text: 'sum up' },
          ],
        },
      ],
    });
    assert.ok(doc.ok);
    assert.deepEqual(doc.value.anthropicNative?.requires, ["messages.0.content.0: a 'document' block"]);
    assert.deepEqual(doc.value.messages, [{ role: 'user', content: [{ type: 'text', text: 'sum up' }] }]);
    const web = decodeMessagesRequest({
      ...base,
      tools: [
        { type: 'web_search_20250305', name: 'web_search' },
        { name: 'f', input_schema: { type: 'object' } },
      ],
    });
    assert.ok(web.ok);
    assert.deepEqual(
      web.value.tools?.map((t) => t.name),
      ['f'],
    );
    assert.deepEqual(web.value.anthropicNative?.requires, ["tools.0: the server tool 'web_search_20250305'"]);
    assert.equal(decodeErr({ ...base, tools: [{ type: 7, name: 'x' }] }).param, 'tools.0.type');
  });

  test('a system message inside messages becomes a canonical system message in place', () => {
    const r = decodeMessagesRequest({
      ...base,
      system: 'top',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'system', content: [{ type: 'text', text: 'mid', cache_control: { type: 'ephemeral' } }] },
      ],
    });
    assert.ok(r.ok);
    assert.deepEqual(
      r.value.messages.map((m) => [m.role, m.content]),
      [
        ['system', [{ type: 'text', text: 'top' }]],
        ['user', [{ type: 'text', text: 'hi' }]],
        ['system', [{ type: 'text', text: 'mid' }]],
      ],
    );
  });

  test('output_config.format json_schema becomes the canonical response format', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    const r = decodeMessagesRequest({ ...base, output_config: { format: { type: 'json_schema', schema } } });
    assert.ok(r.ok);
    assert.deepEqual(r.value.responseFormat, { type: 'json_schema', name: 'output', schema });
    assert.deepEqual(r.value.extra['output_config'], { format: { type: 'json_schema', schema } });
  });

  test('tools need a name and an input_schema object', () => {
    assert.equal(decodeErr({ ...base, tools: [{ input_schema: {} }] }).param, 'tools.0.name');
    assert.equal(decodeErr({ ...base, tools: [{ name: 'x' }] }).message, 'tools.0.input_schema: Field required');
  });

  test('tool_choice must have a known type, and a name for type tool', () => {
    assert.equal(decodeErr({ ...base, tool_choice: { type: 'required' } }).param, 'tool_choice.type');
    assert.equal(decodeErr({ ...base, tool_choice: {} }).param, 'tool_choice.type');
    assert.equal(decodeErr({ ...base, tool_choice: { type: 'tool' } }).param, 'tool_choice.name');
  });

  test('sampling parameters out of range or of the wrong type are refused', () => {
    assert.equal(decodeErr({ ...base, temperature: 1.5 }).message, 'temperature: Input should be less than or equal to 1');
    assert.equal(decodeErr({ ...base, top_p: 'x' }).param, 'top_p');
    assert.equal(decodeErr({ ...base, top_k: -1 }).param, 'top_k');
    assert.equal(decodeErr({ ...base, stop_sequences: ['a', 3] }).param, 'stop_sequences.1');
    assert.equal(decodeErr({ ...base, stream: 'yes' }).param, 'stream');
    assert.equal(decodeErr({ ...base, metadata: { user_id: 5 } }).param, 'metadata.user_id');
    assert.equal(decodeErr({ ...base, system: [{ type: 'image' }] }).param, 'system.0.type');
  });
});
