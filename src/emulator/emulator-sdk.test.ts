import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startEmulator, type Emulator } from './index.ts';

/** The official SDKs are the referees: if they parse our bytes, the wire shapes are right. */

let emu: Emulator;
let openai: OpenAI;
let anthropic: Anthropic;
before(async () => {
  emu = await startEmulator();
  openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${emu.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: emu.url, maxRetries: 0 });
});
after(() => emu.close());

const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe('official openai client', () => {
  test('chat non-stream and stream with include_usage agree on text and usage', async () => {
    const messages = [{ role: 'user' as const, content: 'Hi SDK' }];
    const plain = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 10 });
    assert.equal(plain.choices[0]?.finish_reason, 'length');
    assert.equal(plain.usage?.completion_tokens, 10);
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, plain.choices[0]?.message.content);
    assert.deepEqual(usage, plain.usage);
  });

  test('streamed tool calls assemble into the same call as non-stream', async () => {
    const messages = [{ role: 'user' as const, content: 'Weather?' }];
    const runner = openai.chat.completions.stream({ model: 'm', messages, tools: [weather] });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'demo' });
  });

  test('embeddings decode (the SDK asks for base64 by default) and models list', async () => {
    const e = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'abc', dimensions: 4 });
    assert.equal(e.data[0]?.embedding.length, 4);
    const models = await openai.models.list();
    assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
  });

  test('vendor errors surface as typed SDK errors with the status', async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'm@fail=429', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.status === 429,
    );
  });
});

describe('official anthropic client', () => {
  test('messages non-stream and streamed finalMessage agree', async () => {
    const params = { model: 'claude-emulator', max_tokens: 12, messages: [{ role: 'user' as const, content: 'Hi SDK' }] };
    const plain = await anthropic.messages.create(params);
    assert.equal(plain.stop_reason, 'max_tokens');
    const block = plain.content[0];
    assert.ok(block && block.type === 'text');
    const stream = anthropic.messages.stream(params);
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    assert.equal(text, block.text);
    assert.equal(final.usage.output_tokens, plain.usage.output_tokens);
    assert.equal(final.usage.input_tokens, plain.usage.input_tokens);
    assert.equal(final.stop_reason, plain.stop_reason);
  });

  test('streamed tool_use input assembles from input_json_delta', async () => {
    const stream = anthropic.messages.stream({
      model: 'c',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [
        {
          name: 'get_weather',
          input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] },
        },
      ],
    });
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const block = final.content[0];
    assert.ok(block && block.type === 'tool_use');
    assert.deepEqual(block.input, { city: 'demo', days: 42 });
  });

  test('count_tokens and in-stream errors are understood by the SDK', async () => {
    const count = await anthropic.messages.countTokens({ model: 'c', messages: [{ role: 'user', content: 'Hi SDK' }] });
    assert.equal(count.input_tokens, Math.ceil(6 / 4) + 4);
    const stream = anthropic.messages.stream({ model: 'c@errorAfter=1', max_tokens: 20, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(stream.finalMessage(), (e: unknown) => e instanceof Anthropic.APIError);
  });
});
