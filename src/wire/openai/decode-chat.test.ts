import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeChatRequest } from './index.ts';

function decodeOk(body: unknown) {
  const r = decodeChatRequest(body);
  if (!r.ok) assert.fail(`expected ok, got ${r.message}`);
  return r.value;
}

function decodeErr(body: unknown): { message: string; param: unknown } {
  const r = decodeChatRequest(body);
  if (r.ok) assert.fail('expected invalid_request');
  assert.equal(r.code, 'invalid_request');
  return { message: r.message, param: r.details?.['param'] };
}

const base = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };

describe('decodeChatRequest happy', () => {
  test('a minimal request decodes with non-streaming defaults and empty extra', () => {
    assert.deepEqual(decodeOk(base), {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      stream: false,
      includeUsage: false,
      extra: {},
    });
  });

  test('every modelled field maps to its canonical name', () => {
    const req = decodeOk({
      ...base,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 100,
      max_completion_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      stop: 'END',
      seed: -7,
      user: 'u1',
      n: 1,
      parallel_tool_calls: false,
      tools: [
        {
          type: 'function',
          function: { name: 'get_weather', description: 'd', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      response_format: { type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' }, strict: true } },
    });
    assert.equal(req.stream, true);
    assert.equal(req.includeUsage, true);
    assert.equal(req.maxTokensOutput, 50, 'max_completion_tokens wins over max_tokens');
    assert.equal(req.temperature, 0.2);
    assert.equal(req.topP, 0.9);
    assert.deepEqual(req.stop, ['END']);
    assert.equal(req.seed, -7);
    assert.equal(req.user, 'u1');
    assert.equal(req.parallelToolCalls, false);
    assert.deepEqual(req.tools, [{ name: 'get_weather', description: 'd', parameters: { type: 'object', properties: { city: { type: 'string' } } } }]);
    assert.deepEqual(req.toolChoice, { name: 'get_weather' });
    assert.deepEqual(req.responseFormat, { type: 'json_schema', name: 'out', schema: { type: 'object' }, strict: true });
    assert.deepEqual(req.extra, {});
  });

  test('a tool-use conversation keeps roles, names, tool calls and tool results', () => {
    const req = decodeOk({
      model: 'm',
      messages: [
        { role: 'developer', content: 'be brief' },
        {
          role: 'system',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
        {
          role: 'user',
          name: 'alice',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
            { type: 'image_url', image_url: { url: 'https://x/y.jpg' } },
          ],
        },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
        {
          role: 'tool',
          tool_call_id: 'call_1',
          content: [
            { type: 'text', text: 'res' },
            { type: 'text', text: 'ult' },
          ],
        },
        { role: 'assistant', content: 'done', refusal: null },
      ],
    });
    assert.deepEqual(req.messages, [
      { role: 'system', content: [{ type: 'text', text: 'be brief' }] },
      {
        role: 'system',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
      {
        role: 'user',
        name: 'alice',
        content: [
          { type: 'text', text: 'look' },
          { type: 'image', url: 'data:image/png;base64,AAAA', mediaType: 'image/png' },
          { type: 'image', url: 'https://x/y.jpg' },
        ],
      },
      { role: 'assistant', content: [{ type: 'tool_call', id: 'call_1', name: 'f', argumentsJson: '{"a":1}' }] },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1', content: 'result' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'done' }] },
    ]);
  });

  test('unknown and unmodelled fields pass through in extra untouched', () => {
    const logitBias = { '50256': -100 };
    const req = decodeOk({ ...base, frequency_penalty: 0.5, logit_bias: logitBias, reasoning_effort: 'low', enable_thinking: false });
    assert.deepEqual(req.extra, { frequency_penalty: 0.5, logit_bias: logitBias, reasoning_effort: 'low', enable_thinking: false });
    assert.equal(req.extra['logit_bias'], logitBias, 'same object, not a copy');
  });

  test('explicit nulls mean "not set", as the SDKs send them', () => {
    const req = decodeOk({
      ...base,
      temperature: null,
      stop: null,
      tools: null,
      tool_choice: null,
      stream_options: null,
      max_tokens: null,
      n: null,
      response_format: null,
    });
    assert.equal(req.temperature, undefined);
    assert.equal(req.stop, undefined);
    assert.equal(req.tools, undefined);
    assert.equal(req.maxTokensOutput, undefined);
    assert.equal(req.includeUsage, false);
  });

  test('tool_choice strings, json_object format, stop arrays and tools without parameters are accepted', () => {
    const req = decodeOk({
      ...base,
      tool_choice: 'required',
      response_format: { type: 'json_object' },
      stop: ['a', 'b'],
      tools: [{ type: 'function', function: { name: 'noargs' } }],
    });
    assert.equal(req.toolChoice, 'required');
    assert.deepEqual(req.responseFormat, { type: 'json_object' });
    assert.deepEqual(req.stop, ['a', 'b']);
    assert.deepEqual(req.tools, [{ name: 'noargs', parameters: { type: 'object', properties: {} } }]);
  });

  test('assistant tool-call arguments sent as an object are serialised to JSON text', () => {
    const req = decodeOk({
      model: 'm',
      messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: { x: 1 } } }] }],
    });
    assert.deepEqual(req.messages[0]?.content, [{ type: 'tool_call', id: 'c', name: 'f', argumentsJson: '{"x":1}' }]);
  });
});

describe('decodeChatRequest errors', () => {
  const cases: [string, unknown, unknown][] = [
    ['body is not an object', [1, 2], null],
    ['model missing', { messages: base.messages }, 'model'],
    ['model empty', { ...base, model: '' }, 'model'],
    ['messages missing', { model: 'm' }, 'messages'],
    ['messages empty', { model: 'm', messages: [] }, 'messages'],
    ['messages not an array', { model: 'm', messages: 'hi' }, 'messages'],
    ['unknown role', { model: 'm', messages: [{ role: 'bot', content: 'x' }] }, 'messages[0].role'],
    ['missing role', { model: 'm', messages: [{ content: 'x' }] }, 'messages[0].role'],
    ['deprecated function role', { model: 'm', messages: [{ role: 'function', name: 'f', content: 'x' }] }, 'messages[0].role'],
    ['user content missing', { model: 'm', messages: [{ role: 'user' }] }, 'messages[0].content'],
    [
      'unsupported part type',
      {
        model: 'm',
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: [{ type: 'input_audio', input_audio: {} }] },
        ],
      },
      'messages[1].content[0].type',
    ],
    ['text part without text', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text' }] }] }, 'messages[0].content[0].text'],
    [
      'image without url',
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] },
      'messages[0].content[0].image_url.url',
    ],
    ['tool message without tool_call_id', { model: 'm', messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id'],
    [
      'tool call without function name',
      { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: {} }] }] },
      'messages[0].tool_calls[0].function.name',
    ],
    ['temperature above 2', { ...base, temperature: 2.5 }, 'temperature'],
    ['temperature as a string', { ...base, temperature: '0.5' }, 'temperature'],
    ['top_p above 1', { ...base, top_p: 1.5 }, 'top_p'],
    ['max_tokens zero', { ...base, max_tokens: 0 }, 'max_tokens'],
    ['max_tokens fractional', { ...base, max_tokens: 1.5 }, 'max_tokens'],
    ['max_completion_tokens negative', { ...base, max_completion_tokens: -1 }, 'max_completion_tokens'],
    ['n greater than 1', { ...base, n: 2 }, 'n'],
    ['stream not a boolean', { ...base, stream: 'yes' }, 'stream'],
    ['include_usage not a boolean', { ...base, stream: true, stream_options: { include_usage: 1 } }, 'stream_options.include_usage'],
    ['stop with a number', { ...base, stop: ['a', 3] }, 'stop[1]'],
    ['non-function tool', { ...base, tools: [{ type: 'custom', custom: { name: 'x' } }] }, 'tools[0].type'],
    ['tool without a name', { ...base, tools: [{ type: 'function', function: {} }] }, 'tools[0].function.name'],
    ['unknown tool_choice string', { ...base, tool_choice: 'always' }, 'tool_choice'],
    ['tool_choice object without name', { ...base, tool_choice: { type: 'function', function: {} } }, 'tool_choice.function.name'],
    ['unknown response_format type', { ...base, response_format: { type: 'yaml' } }, 'response_format.type'],
    ['json_schema without name', { ...base, response_format: { type: 'json_schema', json_schema: { schema: {} } } }, 'response_format.json_schema.name'],
    ['seed fractional', { ...base, seed: 1.2 }, 'seed'],
    ['user not a string', { ...base, user: 42 }, 'user'],
  ];
  for (const [name, body, param] of cases) {
    test(`${name} is invalid_request with param ${String(param)}`, () => {
      const e = decodeErr(body);
      assert.equal(e.param, param);
      assert.ok(e.message.length > 10);
    });
  }

  test('the message names the offending field and value', () => {
    const e = decodeErr({ ...base, temperature: 3 });
    assert.match(e.message, /'temperature'/);
    assert.match(e.message, /3/);
  });
});
