import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
let client: OpenAI;

before(async () => {
  srv = await startTestServer();
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: srv.demoKey, maxRetries: 0 });
});
after(() => srv.close());

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
};

describe('OpenAI API through the official openai client', () => {
  test('a chat completion answers with content, usage and the model name the client asked for', async () => {
    const res = await client.chat.completions.create({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'Hello there' }] });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.model, 'deepseek-v3.2');
    assert.match(res.choices[0]!.message.content ?? '', /emulator/i);
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    assert.ok(res.usage!.prompt_tokens > 0 && res.usage!.completion_tokens > 0);
  });

  test('an alias resolves to its model', async () => {
    const res = await client.chat.completions.create({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(res.choices.length, 1);
  });

  test('a stream delivers deltas in order and one usage chunk when include_usage is set', async () => {
    const stream = await client.chat.completions.create({
      model: 'deepseek-v3.2',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Stream please' }],
    });
    let text = '';
    let usageChunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (chunk.usage) usageChunks++;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    const nonStream = await client.chat.completions.create({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'Stream please' }] });
    assert.equal(text, nonStream.choices[0]!.message.content, 'streamed text equals the non-streamed answer');
    assert.equal(usageChunks, 1);
    assert.equal(finish, 'stop');
  });

  test('max_tokens caps the answer with finish_reason length', async () => {
    const res = await client.chat.completions.create({ model: 'deepseek-v3.2', max_tokens: 5, messages: [{ role: 'user', content: 'Tell me a long story' }] });
    assert.equal(res.choices[0]!.finish_reason, 'length');
    assert.ok(res.usage!.completion_tokens <= 5);
  });

  test('tool calls come back whole, and streamed tool-call deltas reassemble into the same call', async () => {
    const res = await client.chat.completions.create({ model: 'deepseek-v3.2', tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }] });
    const call = res.choices[0]!.message.tool_calls![0]!;
    assert.equal(res.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(call.type === 'function' && call.function.name, 'get_weather');
    const args = JSON.parse(call.type === 'function' ? call.function.arguments : '{}');
    assert.equal(typeof args.city, 'string');

    const stream = client.chat.completions.stream({ model: 'deepseek-v3.2', tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }] });
    const final = await stream.finalChatCompletion();
    const sc = final.choices[0]!.message.tool_calls![0]!;
    assert.equal(sc.type === 'function' && sc.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(sc.type === 'function' ? sc.function.arguments : ''), args);
  });

  test('a tool result turn is answered with text', async () => {
    const res = await client.chat.completions.create({
      model: 'deepseek-v3.2',
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
      ],
    });
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    assert.ok((res.choices[0]!.message.content ?? '').length > 0);
  });

  test('an OpenAI-format request is served by an Anthropic upstream and by a Gemini upstream, streaming and tools included', async () => {
    for (const model of ['claude-4.7', 'gemini-3-pro']) {
      const messages = [
        { role: 'system' as const, content: 'Be brief' },
        { role: 'user' as const, content: 'Hello' },
      ];
      const res = await client.chat.completions.create({ model, messages });
      assert.ok((res.choices[0]!.message.content ?? '').length > 0, model);
      assert.ok(res.usage!.prompt_tokens > 0, `${model} usage mapped`);
      const stream = await client.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, messages });
      let text = '';
      let usage = 0;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) usage = chunk.usage.completion_tokens;
      }
      assert.equal(text, res.choices[0]!.message.content, `${model} stream equals non-stream`);
      assert.ok(usage > 0);
      const tool = await client.chat.completions.stream({ model, tools: [weather], messages: [{ role: 'user', content: 'Weather?' }] }).finalChatCompletion();
      const tc = tool.choices[0]!.message.tool_calls?.[0];
      assert.ok(tc && tc.type === 'function' && tc.function.name === 'get_weather', `${model} tool call`);
    }
  });

  test('legacy completions and embeddings answer in OpenAI shape', async () => {
    const c = await client.completions.create({ model: 'deepseek-v3.2', prompt: 'Say hi', max_tokens: 8 });
    assert.equal(c.object, 'text_completion');
    assert.ok(c.choices[0]!.text.length > 0);
    const e = await client.embeddings.create({ model: 'embed-small', input: ['one', 'two'] });
    assert.equal(e.data.length, 2);
    assert.ok(e.data[0]!.embedding.length > 0);
    assert.ok(e.usage.prompt_tokens > 0);
  });

  test('the model list shows only the models this key may use, and says which are emulated', async () => {
    const all = await client.models.list();
    const ids = all.data.map((m) => m.id);
    assert.ok(ids.includes('deepseek-v3.2') && ids.includes('claude-4.7'));
    assert.match(all.data.find((m) => m.id === 'deepseek-v3.2')!.owned_by, /mock/);
    const created = await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId, allowedModels: ['deepseek-v3.2'] });
    assert.equal(created.status, 201);
    const limited = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: created.body.key, maxRetries: 0 });
    assert.deepEqual(
      (await limited.models.list()).data.map((m) => m.id),
      ['deepseek-v3.2'],
    );
    assert.equal((await limited.models.retrieve('deepseek-v3.2')).id, 'deepseek-v3.2');
    await assert.rejects(
      limited.chat.completions.create({ model: 'claude-4.7', messages: [{ role: 'user', content: 'x' }] }),
      (e: any) => e.status === 403 && e.code === 'model_not_allowed',
    );
  });

  test('unknown fields are passed through and do not break the request', async () => {
    const res = await client.chat.completions.create({
      model: 'deepseek-v3.2',
      messages: [{ role: 'user', content: 'x' }],
      temperature: 0.2,
      top_p: 0.9,
      stop: ['zzz'],
      response_format: { type: 'json_object' }, // @ts-expect-error extra vendor field
      enable_thinking: false,
    });
    assert.equal(res.choices.length, 1);
  });
});
