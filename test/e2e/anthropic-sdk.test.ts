import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
let client: Anthropic;

before(async () => {
  srv = await startTestServer();
  client = new Anthropic({ baseURL: srv.url, apiKey: srv.demoKey, maxRetries: 0 });
});
after(() => srv.close());

const tool = {
  name: 'get_weather',
  description: 'Weather in a city',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('Anthropic Messages API through the official @anthropic-ai/sdk client', () => {
  for (const model of ['claude-4.7', 'deepseek-v3.2', 'gemini-3-pro']) {
    test(`a message to ${model} answers with text, stop_reason and usage; the stream yields the same text`, async () => {
      const msg = await client.messages.create({ model, max_tokens: 200, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello' }] });
      assert.equal(msg.type, 'message');
      assert.equal(msg.role, 'assistant');
      assert.equal(msg.model, model);
      assert.equal(msg.stop_reason, 'end_turn');
      const text = msg.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      assert.ok(text.length > 0);
      assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);

      const events: string[] = [];
      const stream = client.messages.stream({ model, max_tokens: 200, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello' }] });
      stream.on('streamEvent', (e) => events.push(e.type));
      const final = await stream.finalMessage();
      assert.equal(final.content.map((b) => (b.type === 'text' ? b.text : '')).join(''), text);
      assert.equal(events[0], 'message_start');
      assert.equal(events.at(-1), 'message_stop');
      assert.ok(events.includes('content_block_delta') && events.includes('message_delta'));
      assert.ok(final.usage.output_tokens > 0);
    });

    test(`tool use from ${model} comes back as a tool_use block, streamed and not`, async () => {
      const msg = await client.messages.create({ model, max_tokens: 200, tools: [tool], messages: [{ role: 'user', content: 'Weather in Oslo?' }] });
      assert.equal(msg.stop_reason, 'tool_use');
      const use = msg.content.find((b) => b.type === 'tool_use');
      assert.ok(use && use.type === 'tool_use' && use.name === 'get_weather');
      assert.equal(typeof (use.input as { city: unknown }).city, 'string');
      const streamed = await client.messages
        .stream({ model, max_tokens: 200, tools: [tool], messages: [{ role: 'user', content: 'Weather in Oslo?' }] })
        .finalMessage();
      const su = streamed.content.find((b) => b.type === 'tool_use');
      assert.ok(su && su.type === 'tool_use');
      assert.deepEqual(su.input, use.input);

      const answer = await client.messages.create({
        model,
        max_tokens: 200,
        tools: [tool],
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: [{ type: 'tool_use', id: use.id, name: 'get_weather', input: use.input }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 12C' }] },
        ],
      });
      assert.equal(answer.stop_reason, 'end_turn');
    });
  }

  test('max_tokens stops the answer with stop_reason max_tokens', async () => {
    const msg = await client.messages.create({ model: 'claude-4.7', max_tokens: 3, messages: [{ role: 'user', content: 'Tell a long story' }] });
    assert.equal(msg.stop_reason, 'max_tokens');
    assert.ok(msg.usage.output_tokens <= 3);
  });

  test('count_tokens estimates input tokens without calling an upstream', async () => {
    const before = srv.app.emulator!.stats().requests;
    const r = await client.messages.countTokens({ model: 'claude-4.7', messages: [{ role: 'user', content: 'How many tokens is this sentence?' }] });
    assert.ok(r.input_tokens > 3 && r.input_tokens < 40, String(r.input_tokens));
    assert.equal(srv.app.emulator!.stats().requests, before);
  });

  test('errors come back as Anthropic error objects the SDK understands', async () => {
    await assert.rejects(
      client.messages.create({ model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof Anthropic.NotFoundError,
    );
    const bad = new Anthropic({ baseURL: srv.url, apiKey: 'tg-wrong-key-0000000000000000', maxRetries: 0 });
    await assert.rejects(
      bad.messages.create({ model: 'claude-4.7', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof Anthropic.AuthenticationError,
    );
  });
});
