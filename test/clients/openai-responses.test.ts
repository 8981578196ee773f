/**
 * The official `openai` SDK's Responses API (responses.create, responses.stream, a function-tool round trip,
 * previous_response_id, text.format) against the real server through the recording proxy, on an
 * OpenAI-compatible upstream and across formats (Claude and Gemini models), each request charged once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodResponseFormat, zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { startHarness, type Harness } from './support/harness.ts';

let h: Harness;
let client: OpenAI;
before(async () => {
  h = await startHarness();
  client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: h.srv.demoKey, maxRetries: 0 });
});
after(() => h.close());

async function charged<T>(fn: () => Promise<T>) {
  const mark = h.mark();
  const before = (await h.usageRecords()).length;
  const value = await fn();
  const { completed, records } = await h.assertChargedOnce(mark, before);
  return { value, completed, records };
}

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Current weather in a city',
  strict: false,
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

for (const model of ['deepseek-v3.2', 'claude-4.7', 'gemini-3-pro']) {
  describe(`openai SDK Responses API on ${model}`, () => {
    test('responses.create answers with output_text and usage, charged once', async () => {
      const { value, completed, records } = await charged(() => client.responses.create({ model, instructions: 'Be brief', input: 'Hello there' }));
      assert.equal(value.object, 'response');
      assert.equal(value.status, 'completed');
      assert.match(value.output_text, /emulator/i);
      assert.ok(value.usage!.input_tokens > 0 && value.usage!.output_tokens > 0);
      assert.equal(completed.length, 1);
      assert.equal(records[0].usage.tokensOutput, value.usage!.output_tokens);
    });

    test('responses.stream emits created, output_text deltas and completed with usage; the text equals create', async () => {
      const whole = await client.responses.create({ model, input: 'Stream please' });
      const { value, completed } = await charged(async () => {
        const stream = client.responses.stream({ model, input: 'Stream please' });
        const types: string[] = [];
        let text = '';
        for await (const ev of stream) {
          types.push(ev.type);
          if (ev.type === 'response.output_text.delta') text += ev.delta;
        }
        return { types, text, final: await stream.finalResponse() };
      });
      assert.equal(value.types[0], 'response.created');
      assert.equal(value.types.at(-1), 'response.completed');
      assert.ok(value.types.filter((t) => t === 'response.output_text.delta').length > 1);
      assert.equal(value.text, whole.output_text);
      assert.equal(value.final.output_text, whole.output_text);
      assert.ok(value.final.usage!.output_tokens > 0);
      assert.equal(completed.length, 1);
    });

    test('a function tool round trip: function_call out, function_call_output in, text answer', async () => {
      const { value, completed } = await charged(async () => {
        const first = await client.responses.create({ model, tools: [weather], input: 'What is the weather in Paris?' });
        const call = first.output.find((o) => o.type === 'function_call');
        assert.ok(call && call.type === 'function_call', 'a function_call item');
        assert.equal(call.name, 'get_weather');
        assert.equal(typeof JSON.parse(call.arguments).city, 'string');
        const second = await client.responses.create({
          model,
          tools: [weather],
          input: [
            { role: 'user', content: 'What is the weather in Paris?' },
            ...first.output.filter((o) => o.type === 'function_call'),
            { type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ temperatureC: 21 }) },
          ],
        });
        return { first, second };
      });
      assert.equal(
        value.second.output.some((o) => o.type === 'function_call'),
        false,
      );
      assert.ok(value.second.output_text.length > 0);
      assert.equal(completed.length, 2);
    });

    test('streamed function-call arguments arrive as deltas and reassemble into the call', async () => {
      const { value } = await charged(async () => {
        const stream = client.responses.stream({ model, tools: [weather], input: 'Weather in Rome?' });
        let args = '';
        for await (const ev of stream) if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
        return { args, final: await stream.finalResponse() };
      });
      const call = value.final.output.find((o) => o.type === 'function_call');
      assert.ok(call && call.type === 'function_call');
      assert.deepEqual(JSON.parse(value.args), JSON.parse(call.arguments));
    });
  });
}

describe('openai SDK Responses API: stored responses and structured output', () => {
  test('previous_response_id continues a stored conversation and GET /v1/responses/{id} returns it', async () => {
    const { value, completed } = await charged(async () => {
      const first = await client.responses.create({ model: 'deepseek-v3.2', store: true, input: 'My name is Ada. Remember it.' });
      const second = await client.responses.create({ model: 'deepseek-v3.2', store: true, previous_response_id: first.id, input: 'What is my name?' });
      const alone = await client.responses.create({ model: 'deepseek-v3.2', store: false, input: 'What is my name?' });
      return { first, second, alone };
    });
    assert.ok(value.second.usage!.input_tokens > value.alone.usage!.input_tokens, 'the earlier turn is part of the prompt');
    assert.equal(value.second.previous_response_id, value.first.id);
    assert.equal(completed.length, 3);
    const got = await client.responses.retrieve(value.first.id);
    assert.equal(got.id, value.first.id);
    assert.equal(got.output_text, value.first.output_text);
  });

  test('text.format json_schema yields JSON that fits the schema', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer' }, capital: { type: 'boolean' } },
      required: ['city', 'population', 'capital'],
      additionalProperties: false,
    };
    const { value } = await charged(() =>
      client.responses.create({
        model: 'deepseek-v3.2',
        input: 'Largest city of France as JSON',
        text: { format: { type: 'json_schema', name: 'city', schema, strict: true } },
      }),
    );
    const obj = JSON.parse(value.output_text);
    assert.equal(typeof obj.city, 'string');
    assert.ok(Number.isInteger(obj.population));
    assert.equal(typeof obj.capital, 'boolean');
  });
});

describe('openai SDK structured-output helpers (zod)', () => {
  const Event = z.object({ name: z.string(), date: z.string(), attendees: z.array(z.string()) });

  test('chat.completions.parse with zodResponseFormat returns a parsed object', async () => {
    const { value, completed } = await charged(() =>
      client.chat.completions.parse({
        model: 'deepseek-v3.2',
        messages: [{ role: 'user', content: 'Alice and Bob go to a science fair on Friday.' }],
        response_format: zodResponseFormat(Event, 'event'),
      }),
    );
    const parsed = value.choices[0]!.message.parsed;
    assert.deepEqual(Event.parse(parsed), parsed);
    assert.equal(JSON.parse(completed[0]!.reqBody).response_format.type, 'json_schema');
  });

  // On Claude models the Anthropic adapter turns the schema into a system instruction, which the emulator
  // answers with JSON; on Gemini models it becomes responseJsonSchema.
  for (const model of ['deepseek-v3.2', 'gemini-3-pro', 'claude-4.7']) {
    test(`responses.parse with zodTextFormat returns a parsed object on ${model}`, async () => {
      const { value } = await charged(() =>
        client.responses.parse({
          model,
          input: 'Alice and Bob go to a science fair on Friday.',
          text: { format: zodTextFormat(Event, 'event') },
        }),
      );
      assert.deepEqual(Event.parse(value.output_parsed), value.output_parsed);
    });
  }
});

describe('openai SDK Responses API: the model actually used', () => {
  // Issue 13 item 3: like /v1/chat/completions and /v1/messages, the Response names the catalog model that
  // served it, not the alias the client sent.
  test('responses.create and responses.stream name the catalog model an alias resolves to', async () => {
    const created = await client.responses.create({ model: 'deepseek-chat', input: 'Hello' });
    assert.equal(created.model, 'deepseek-v3.2');
    const stream = client.responses.stream({ model: 'deepseek-chat', input: 'Hello' });
    const models: string[] = [];
    for await (const ev of stream) if ('response' in ev) models.push((ev as { response: { model: string } }).response.model);
    assert.ok(models.length >= 2);
    assert.ok(
      models.every((m) => m === 'deepseek-v3.2'),
      models.join(', '),
    );
    assert.equal((await stream.finalResponse()).model, 'deepseek-v3.2');
    const stored = await client.responses.retrieve(created.id);
    assert.equal(stored.model, 'deepseek-v3.2');
  });
});
