import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEmulator, type Emulator } from './index.ts';
import { ANTHROPIC_HEADERS, expectedInputTokens, post, postJson, splitSse } from './emulator-test-kit.ts';

let emu: Emulator;
let messagesUrl: string;
before(async () => {
  emu = await startEmulator();
  messagesUrl = `${emu.url}/v1/messages`;
});
after(() => emu.close());

const hello = [{ role: 'user', content: 'Hello there' }];
const tools = [
  {
    name: 'get_weather',
    description: 'w',
    input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'number' } }, required: ['city', 'days'] },
  },
  { name: 'get_time', input_schema: { type: 'object', properties: { zone: { type: 'string', enum: ['utc', 'cet'] } }, required: ['zone'] } },
];

describe('anthropic messages (non-stream)', () => {
  test('answers a message object with text content, end_turn and usage', async () => {
    const r = await postJson(messagesUrl, ANTHROPIC_HEADERS, { model: 'claude-sonnet-4-5', max_tokens: 100, system: 'Be brief', messages: hello });
    assert.equal(r.status, 200);
    assert.match(r.json.id, /^msg_/);
    assert.equal(r.json.type, 'message');
    assert.equal(r.json.role, 'assistant');
    assert.equal(r.json.model, 'claude-sonnet-4-5');
    assert.equal(r.json.content[0].type, 'text');
    assert.ok(r.json.content[0].text.startsWith('This is the TokenGrid emulator answering as claude-sonnet-4-5.'));
    assert.equal(r.json.stop_reason, 'end_turn');
    assert.equal(r.json.stop_sequence, null);
    assert.deepEqual(r.json.usage, {
      input_tokens: expectedInputTokens(['Be brief', 'Hello there']),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: 24,
    });
  });

  test('max_tokens caps the answer with stop_reason max_tokens', async () => {
    const r = await postJson(messagesUrl, ANTHROPIC_HEADERS, { model: 'c', max_tokens: 4, messages: hello });
    assert.equal(r.json.stop_reason, 'max_tokens');
    assert.equal(r.json.usage.output_tokens, 4);
    assert.equal(r.json.content[0].text, 'This is the TokenGrid');
  });

  test('cached=n reports cache reads outside input_tokens, as Anthropic does', async () => {
    const r = await postJson(messagesUrl, { ...ANTHROPIC_HEADERS, 'x-emulator': 'cached=3' }, { model: 'c', max_tokens: 10, messages: hello });
    assert.equal(r.json.usage.cache_read_input_tokens, 3);
    assert.equal(r.json.usage.input_tokens, expectedInputTokens(['Hello there']) - 3);
  });

  test('tools: one tool_use block with schema-built input, then text after a tool_result', async () => {
    const r = await postJson(messagesUrl, ANTHROPIC_HEADERS, { model: 'c', max_tokens: 100, messages: hello, tools });
    assert.equal(r.json.stop_reason, 'tool_use');
    assert.equal(r.json.content.length, 1);
    assert.equal(r.json.content[0].type, 'tool_use');
    assert.match(r.json.content[0].id, /^toolu_/);
    assert.deepEqual(r.json.content[0].input, { city: 'demo', days: 42 });
    const forced = await postJson(messagesUrl, ANTHROPIC_HEADERS, {
      model: 'c',
      max_tokens: 100,
      messages: hello,
      tools,
      tool_choice: { type: 'tool', name: 'get_time' },
    });
    assert.deepEqual(forced.json.content[0].input, { zone: 'utc' });
    const followUp = [
      ...hello,
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'demo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }] },
    ];
    const after = await postJson(messagesUrl, ANTHROPIC_HEADERS, { model: 'c', max_tokens: 100, messages: followUp, tools });
    assert.equal(after.json.stop_reason, 'end_turn');
    assert.equal(after.json.content[0].type, 'text');
  });

  test('count_tokens returns the input_tokens a message would be charged', async () => {
    const body = { model: 'c', system: 'sys', messages: hello, tools };
    const count = await postJson(`${emu.url}/v1/messages/count_tokens`, ANTHROPIC_HEADERS, body);
    const msg = await postJson(messagesUrl, ANTHROPIC_HEADERS, { ...body, max_tokens: 5, tool_choice: { type: 'none' } });
    assert.equal(count.status, 200);
    assert.deepEqual(count.json, { input_tokens: msg.json.usage.input_tokens });
  });
});

describe('anthropic messages (stream)', () => {
  test('streams the documented event sequence with usage in message_start and message_delta', async () => {
    const plain = await postJson(messagesUrl, ANTHROPIC_HEADERS, { model: 'c', max_tokens: 6, messages: hello });
    const r = await post(messagesUrl, ANTHROPIC_HEADERS, { model: 'c', max_tokens: 6, messages: hello, stream: true });
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = splitSse(r.text);
    const names = events.map((e) => e.event);
    assert.deepEqual(names, [
      'message_start',
      'content_block_start',
      'ping',
      ...Array(6).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const data = events.map((e) => JSON.parse(e.data));
    data.forEach((d, i) => assert.equal(d.type, names[i], 'data.type matches the event name'));
    assert.equal(data[0].message.usage.input_tokens, expectedInputTokens(['Hello there']));
    assert.deepEqual(data[0].message.content, []);
    assert.deepEqual(data[1].content_block, { type: 'text', text: '' });
    const text = data
      .filter((d) => d.type === 'content_block_delta')
      .map((d) => d.delta.text)
      .join('');
    assert.equal(text, plain.json.content[0].text);
    const delta = data.find((d) => d.type === 'message_delta');
    assert.equal(delta.delta.stop_reason, 'max_tokens');
    assert.equal(delta.usage.output_tokens, 6);
    assert.equal(delta.usage.input_tokens, expectedInputTokens(['Hello there']));
  });

  test('tool_use streams as a content block plus input_json_delta pieces', async () => {
    const r = await post(messagesUrl, ANTHROPIC_HEADERS, { model: 'c', max_tokens: 100, messages: hello, tools, stream: true });
    const data = splitSse(r.text).map((e) => JSON.parse(e.data));
    const start = data.find((d) => d.type === 'content_block_start');
    assert.equal(start.content_block.type, 'tool_use');
    assert.equal(start.content_block.name, 'get_weather');
    assert.deepEqual(start.content_block.input, {});
    const pieces = data
      .filter((d) => d.type === 'content_block_delta')
      .map((d) => {
        assert.equal(d.delta.type, 'input_json_delta');
        return d.delta.partial_json as string;
      });
    assert.ok(pieces.length >= 2);
    assert.deepEqual(JSON.parse(pieces.join('')), { city: 'demo', days: 42 });
    assert.equal(data.find((d) => d.type === 'message_delta').delta.stop_reason, 'tool_use');
  });
});

describe('anthropic errors', () => {
  test('a missing x-api-key is 401 authentication_error, a missing anthropic-version is 400', async () => {
    const noKey = await postJson(
      messagesUrl,
      { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      { model: 'c', max_tokens: 5, messages: hello },
    );
    assert.equal(noKey.status, 401);
    assert.equal(noKey.json.type, 'error');
    assert.equal(noKey.json.error.type, 'authentication_error');
    const noVersion = await postJson(messagesUrl, { 'content-type': 'application/json', 'x-api-key': 'k' }, { model: 'c', max_tokens: 5, messages: hello });
    assert.equal(noVersion.status, 400);
    assert.equal(noVersion.json.error.type, 'invalid_request_error');
  });

  test('malformed JSON, a missing max_tokens and bad roles are 400 invalid_request_error', async () => {
    for (const body of [
      '{oops',
      { model: 'c', messages: hello },
      { model: 'c', max_tokens: 5, messages: [{ role: 'tool', content: 'x' }] },
      { max_tokens: 5, messages: hello },
    ]) {
      const r = await postJson(messagesUrl, ANTHROPIC_HEADERS, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.type, 'error');
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(typeof r.json.error.message, 'string');
    }
  });
});
