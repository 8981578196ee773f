import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEmulator, type Emulator } from './index.ts';
import { OPENAI_HEADERS, dataJson, expectedInputTokens, post, postJson, splitSse } from './emulator-test-kit.ts';

let emu: Emulator;
let chat: string;
before(async () => {
  emu = await startEmulator();
  chat = `${emu.url}/v1/chat/completions`;
});
after(() => emu.close());

const hello = [{ role: 'user', content: 'Hello there' }];
const weatherTools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string' },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
          days: { type: 'integer' },
          exact: { type: 'boolean' },
        },
        required: ['city'],
      },
    },
  },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } },
];

describe('openai chat completions (non-stream)', () => {
  test('answers deterministically from (model, prompt) with the recognisable prefix and usage', async () => {
    const a = await postJson(chat, OPENAI_HEADERS, { model: 'gpt-4o-mini', messages: hello });
    const b = await postJson(chat, OPENAI_HEADERS, { model: 'gpt-4o-mini', messages: hello });
    const c = await postJson(chat, OPENAI_HEADERS, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Something else' }] });
    assert.equal(a.status, 200);
    assert.equal(a.json.object, 'chat.completion');
    assert.match(a.json.id, /^chatcmpl-/);
    assert.equal(a.json.model, 'gpt-4o-mini');
    const content: string = a.json.choices[0].message.content;
    assert.ok(content.startsWith('This is the TokenGrid emulator answering as gpt-4o-mini.'));
    assert.equal(content, b.json.choices[0].message.content);
    assert.notEqual(content, c.json.choices[0].message.content);
    assert.equal(a.json.choices[0].finish_reason, 'stop');
    assert.equal(content.split(' ').length, 24, 'one token per word, 24 by default');
    assert.deepEqual(a.json.usage, {
      prompt_tokens: expectedInputTokens(['Hello there']),
      completion_tokens: 24,
      total_tokens: expectedInputTokens(['Hello there']) + 24,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
  });

  test('max_tokens and max_completion_tokens cap the answer with finish_reason length', async () => {
    const a = await postJson(chat, OPENAI_HEADERS, { model: 'm', messages: hello, max_tokens: 5 });
    assert.equal(a.json.usage.completion_tokens, 5);
    assert.equal(a.json.choices[0].finish_reason, 'length');
    assert.equal(a.json.choices[0].message.content, 'This is the TokenGrid emulator');
    const b = await postJson(chat, OPENAI_HEADERS, { model: 'm', messages: hello, max_completion_tokens: 3, max_tokens: 50 });
    assert.equal(b.json.usage.completion_tokens, 3);
    const c = await postJson(chat, OPENAI_HEADERS, { model: 'm', messages: hello, max_tokens: 24 });
    assert.equal(c.json.choices[0].finish_reason, 'stop', 'exactly at the cap is not truncation');
  });

  test('a request with tools answers one call to the first tool with its required arguments, schema-built', async () => {
    const r = await postJson(chat, OPENAI_HEADERS, { model: 'm', messages: hello, tools: weatherTools });
    const msg = r.json.choices[0].message;
    assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
    assert.equal(msg.content, null);
    assert.equal(msg.tool_calls.length, 1);
    assert.match(msg.tool_calls[0].id, /^call_/);
    assert.equal(msg.tool_calls[0].type, 'function');
    assert.equal(msg.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'demo' }, 'optional parameters are left out, as a model leaves them');
  });

  test('the toolArgs=all directive fills the optional parameters too', async () => {
    const r = await postJson(chat, { ...OPENAI_HEADERS, 'x-emulator': 'toolArgs=all' }, { model: 'm', messages: hello, tools: weatherTools });
    assert.deepEqual(JSON.parse(r.json.choices[0].message.tool_calls[0].function.arguments), { city: 'demo', unit: 'celsius', days: 42, exact: true });
  });

  test('tool_choice forces a named tool, none disables tools, a tool result gets a text answer', async () => {
    const forced = await postJson(chat, OPENAI_HEADERS, {
      model: 'm',
      messages: hello,
      tools: weatherTools,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    assert.equal(forced.json.choices[0].message.tool_calls[0].function.name, 'get_time');
    const none = await postJson(chat, OPENAI_HEADERS, { model: 'm', messages: hello, tools: weatherTools, tool_choice: 'none' });
    assert.equal(none.json.choices[0].finish_reason, 'stop');
    const messages = [
      ...hello,
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"demo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ];
    const after = await postJson(chat, OPENAI_HEADERS, { model: 'm', messages, tools: weatherTools });
    assert.equal(after.json.choices[0].finish_reason, 'stop');
    assert.equal(after.json.choices[0].message.content, 'The tool returned: sunny');
  });
});

describe('openai chat completions (stream)', () => {
  test('streams the same text as non-stream and sends no usage chunk without include_usage', async () => {
    const plain = await postJson(chat, OPENAI_HEADERS, { model: 'gpt-4o', messages: hello });
    const r = await post(chat, OPENAI_HEADERS, { model: 'gpt-4o', messages: hello, stream: true });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = splitSse(r.text);
    assert.equal(events.at(-1)?.data, '[DONE]');
    const chunks = dataJson(events);
    assert.ok(chunks.every((c) => c['object'] === 'chat.completion.chunk' && c['model'] === 'gpt-4o' && !('usage' in c)));
    const deltas = chunks.map((c: any) => c.choices[0].delta);
    assert.equal(deltas[0].role, 'assistant');
    const text = deltas.map((d: any) => d.content ?? '').join('');
    assert.equal(text, plain.json.choices[0].message.content);
    assert.equal((chunks.at(-1) as any).choices[0].finish_reason, 'stop');
  });

  test('include_usage adds usage:null to every chunk and one final choices:[] usage chunk', async () => {
    const r = await post(chat, OPENAI_HEADERS, { model: 'm', messages: hello, stream: true, stream_options: { include_usage: true }, max_tokens: 4 });
    const chunks = dataJson(splitSse(r.text)) as any[];
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 4);
    assert.equal(last.usage.prompt_tokens, expectedInputTokens(['Hello there']));
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
  });

  test('tool calls stream as index/id/name first, then arguments in two or more pieces', async () => {
    const r = await post(chat, OPENAI_HEADERS, { model: 'm', messages: hello, tools: weatherTools, stream: true });
    const chunks = dataJson(splitSse(r.text)) as any[];
    const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
    assert.equal(calls[0].index, 0);
    assert.match(calls[0].id, /^call_/);
    assert.equal(calls[0].function.name, 'get_weather');
    const pieces = calls.slice(1).map((c: any) => c.function.arguments);
    assert.ok(pieces.length >= 2);
    assert.ok(calls.slice(1).every((c: any) => c.index === 0 && c.id === undefined));
    assert.deepEqual(JSON.parse(pieces.join('')), { city: 'demo' });
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
  });

  test('reasoning=n streams reasoning_content first and reports reasoning tokens', async () => {
    const r = await post(
      chat,
      { ...OPENAI_HEADERS, 'x-emulator': 'reasoning=3;tokens=4' },
      { model: 'm', messages: hello, stream: true, stream_options: { include_usage: true } },
    );
    const chunks = dataJson(splitSse(r.text)) as any[];
    const deltas = chunks.filter((c) => c.choices.length > 0).map((c) => c.choices[0].delta);
    const firstContent = deltas.findIndex((d) => typeof d.content === 'string' && d.content !== '');
    const reasoning = deltas.filter((d) => d.reasoning_content !== undefined);
    assert.equal(reasoning.length, 3);
    assert.ok(deltas.findIndex((d) => d.reasoning_content !== undefined) < firstContent);
    const usage = chunks.at(-1).usage;
    assert.equal(usage.completion_tokens, 7);
    assert.equal(usage.completion_tokens_details.reasoning_tokens, 3);
  });
});

describe('openai legacy completions, embeddings, models', () => {
  test('legacy completions answer text_completion objects, streamed too', async () => {
    const url = `${emu.url}/v1/completions`;
    const a = await postJson(url, OPENAI_HEADERS, { model: 'davinci', prompt: 'Say hi', max_tokens: 6 });
    assert.equal(a.json.object, 'text_completion');
    assert.equal(a.json.choices[0].finish_reason, 'length');
    assert.deepEqual(a.json.usage, { prompt_tokens: Math.ceil(6 / 4), completion_tokens: 6, total_tokens: Math.ceil(6 / 4) + 6 });
    const s = await post(url, OPENAI_HEADERS, { model: 'davinci', prompt: 'Say hi', max_tokens: 6, stream: true, stream_options: { include_usage: true } });
    const chunks = dataJson(splitSse(s.text)) as any[];
    assert.equal(
      chunks
        .filter((c) => c.choices.length > 0)
        .map((c) => c.choices[0].text)
        .join(''),
      a.json.choices[0].text,
    );
    assert.equal(chunks.at(-1).usage.completion_tokens, 6);
  });

  test('embeddings are deterministic unit vectors, sized by dimensions, base64 when asked', async () => {
    const url = `${emu.url}/v1/embeddings`;
    const a = await postJson(url, OPENAI_HEADERS, { model: 'text-embedding-3-small', input: ['abc', 'def'] });
    const b = await postJson(url, OPENAI_HEADERS, { model: 'text-embedding-3-small', input: 'abc', dimensions: 16 });
    const c = await postJson(url, OPENAI_HEADERS, { model: 'text-embedding-3-small', input: ['abc'], encoding_format: 'base64' });
    assert.equal(a.json.object, 'list');
    assert.equal(a.json.data.length, 2);
    assert.equal(a.json.data[0].embedding.length, 8);
    assert.notDeepEqual(a.json.data[0].embedding, a.json.data[1].embedding);
    const norm = Math.hypot(...(a.json.data[0].embedding as number[]));
    assert.ok(Math.abs(norm - 1) < 1e-5);
    assert.equal(b.json.data[0].embedding.length, 16);
    const buf = Buffer.from(c.json.data[0].embedding as string, 'base64');
    const decoded = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
    assert.deepEqual(decoded, a.json.data[0].embedding);
    assert.deepEqual(a.json.usage, { prompt_tokens: 2, total_tokens: 2 });
  });

  test('GET /v1/models lists models in the OpenAI list shape', async () => {
    const res = await fetch(`${emu.url}/v1/models`, { headers: OPENAI_HEADERS });
    const body = (await res.json()) as any;
    assert.equal(body.object, 'list');
    assert.ok(body.data.some((m: any) => m.id === 'gpt-4o-mini' && m.object === 'model'));
  });
});

describe('openai errors', () => {
  test('a missing bearer token is 401 in the OpenAI error shape', async () => {
    const r = await postJson(chat, { 'content-type': 'application/json' }, { model: 'm', messages: hello });
    assert.equal(r.status, 401);
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.ok('param' in r.json.error && 'code' in r.json.error);
    const empty = await post(chat, { ...OPENAI_HEADERS, authorization: 'Bearer ' }, { model: 'm', messages: hello });
    assert.equal(empty.status, 401);
  });

  test('malformed JSON and missing fields are 400 in the OpenAI error shape', async () => {
    const bad = await postJson(chat, OPENAI_HEADERS, '{"model": ');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.type, 'invalid_request_error');
    const noMessages = await postJson(chat, OPENAI_HEADERS, { model: 'm' });
    assert.equal(noMessages.status, 400);
    const noModel = await postJson(chat, OPENAI_HEADERS, { messages: hello });
    assert.equal(noModel.status, 400);
    const badCap = await postJson(chat, OPENAI_HEADERS, { model: 'm', messages: hello, max_tokens: 'x' });
    assert.equal(badCap.status, 400);
    const notObject = await postJson(chat, OPENAI_HEADERS, '[1,2]');
    assert.equal(notObject.status, 400);
  });

  test('an unknown route is 404 in the OpenAI error shape', async () => {
    const r = await postJson(`${emu.url}/v1/nope`, OPENAI_HEADERS, {});
    assert.equal(r.status, 404);
    assert.equal(typeof r.json.error.message, 'string');
  });
});
