import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startEmulator, type Emulator } from './index.ts';
import { OPENAI_HEADERS, dataJson, expectedInputTokens, post, postJson, splitSse } from './emulator-test-kit.ts';

/** The emulator's POST /v1/responses, refereed by the official openai client's Responses types and stream helper. */

let emu: Emulator;
let openai: OpenAI;
before(async () => {
  emu = await startEmulator();
  openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${emu.url}/v1`, maxRetries: 0 });
});
after(() => emu.close());

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  strict: true,
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
};

describe('emulator POST /v1/responses', () => {
  test('a text answer: one completed message item, usage by the emulator rule, echoed request fields', async () => {
    const res = await openai.responses.create({ model: 'gpt-5-mini', input: 'Hello', instructions: 'Be brief', metadata: { k: 'v' } });
    assert.equal(res.object, 'response');
    assert.equal(res.status, 'completed');
    assert.equal(res.output.length, 1);
    assert.equal(res.output[0]!.type, 'message');
    assert.match(res.output_text, /^This is the TokenGrid emulator answering as gpt-5-mini\./);
    assert.equal(res.usage!.input_tokens, expectedInputTokens(['Be brief', 'Hello']));
    assert.equal(res.usage!.output_tokens, 24);
    assert.equal(res.usage!.total_tokens, res.usage!.input_tokens + 24);
    assert.equal(res.instructions, 'Be brief');
    assert.deepEqual(res.metadata, { k: 'v' });
  });

  test('the stream carries the same text and usage as the plain answer, with the full event sequence in order', async () => {
    const plain = await openai.responses.create({ model: 'gpt-5-mini', input: 'Stream it', max_output_tokens: 12 });
    assert.equal(plain.status, 'incomplete');
    assert.deepEqual(plain.incomplete_details, { reason: 'max_output_tokens' });
    const stream = openai.responses.stream({ model: 'gpt-5-mini', input: 'Stream it', max_output_tokens: 12 });
    const types: string[] = [];
    const seq: number[] = [];
    for await (const ev of stream) {
      types.push(ev.type);
      seq.push(ev.sequence_number);
    }
    const final = await stream.finalResponse();
    assert.equal(final.output_text, plain.output_text);
    assert.deepEqual(final.usage, plain.usage);
    assert.deepEqual(
      seq,
      seq.map((_, i) => i),
    );
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.equal(types.filter((t) => t === 'response.output_text.delta').length, 12);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
  });

  test('with tools and a user turn last it calls the tool; after the function_call_output it answers', async () => {
    const call = await openai.responses.create({ model: 'gpt-5-mini', tools: [weather], input: 'Weather?' });
    const fc = call.output[0]!;
    assert.ok(fc.type === 'function_call');
    assert.equal(fc.name, 'get_weather');
    assert.equal(typeof JSON.parse(fc.arguments).city, 'string', 'arguments built from the schema');

    const stream = openai.responses.stream({ model: 'gpt-5-mini', tools: [weather], input: 'Weather?' });
    let deltas = 0;
    stream.on('response.function_call_arguments.delta', () => deltas++);
    const streamed = await stream.finalResponse();
    assert.ok(deltas >= 2);
    const sfc = streamed.output[0]!;
    assert.ok(sfc.type === 'function_call' && sfc.arguments === fc.arguments);

    const answer = await openai.responses.create({
      model: 'gpt-5-mini',
      tools: [weather],
      input: [
        { role: 'user', content: 'Weather?' },
        { type: 'function_call', call_id: fc.call_id, name: fc.name, arguments: fc.arguments },
        { type: 'function_call_output', call_id: fc.call_id, output: 'sunny' },
      ],
    });
    assert.equal(answer.output[0]!.type, 'message');
    assert.equal(answer.output_text, 'The tool returned: sunny', 'answered from the tool output, like the chat and Messages sides');
  });

  test('tools are picked like the other dialects: a shell tool with the backticked command and only its required arguments', async () => {
    const shell = {
      type: 'function' as const,
      name: 'exec_command',
      strict: false,
      parameters: { type: 'object', properties: { cmd: { type: 'string' }, workdir: { type: 'string' } }, required: ['cmd'] },
    };
    const res = await openai.responses.create({ model: 'gpt-5-mini', tools: [weather, shell], input: 'Run `ls -la` please' });
    const fc = res.output[0]!;
    assert.ok(fc.type === 'function_call');
    assert.equal(fc.name, 'exec_command');
    assert.deepEqual(JSON.parse(fc.arguments), { cmd: 'ls -la' });
  });

  test('text.format json_schema answers with a JSON value that follows the schema (plain and streamed)', async () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      required: ['city', 'temp', 'sunny', 'tags', 'unit', 'where'],
      properties: {
        city: { type: 'string' },
        temp: { type: 'number' },
        sunny: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string' } },
        unit: { type: 'string', enum: ['c', 'f'] },
        where: { type: 'object', properties: { lat: { type: 'number' } }, required: ['lat'] },
      },
    };
    const format = { type: 'json_schema' as const, name: 'weather', schema, strict: true };
    const res = await openai.responses.create({ model: 'gpt-5-mini', input: 'Weather?', text: { format } });
    const v = JSON.parse(res.output_text);
    assert.equal(typeof v.city, 'string');
    assert.equal(typeof v.temp, 'number');
    assert.equal(typeof v.sunny, 'boolean');
    assert.ok(Array.isArray(v.tags) && typeof v.tags[0] === 'string');
    assert.ok(['c', 'f'].includes(v.unit));
    assert.equal(typeof v.where.lat, 'number');
    assert.equal(res.usage!.output_tokens, Math.ceil(res.output_text.length / 4));
    const streamed = await openai.responses.stream({ model: 'gpt-5-mini', input: 'Weather?', text: { format } }).finalResponse();
    assert.deepEqual(JSON.parse(streamed.output_text), v);
    const obj = await openai.responses.create({ model: 'gpt-5-mini', input: 'JSON please', text: { format: { type: 'json_object' } } });
    assert.equal(typeof JSON.parse(obj.output_text), 'object');
  });

  test('reasoning comes first as a reasoning item; cached tokens are reported in input_tokens_details', async () => {
    const res = await openai.responses.create({ model: 'o4@reasoning=5@cached=3', input: 'Think' });
    assert.equal(res.output[0]!.type, 'reasoning');
    assert.equal(res.output[1]!.type, 'message');
    assert.equal(res.usage!.output_tokens_details.reasoning_tokens, 5);
    assert.equal(res.usage!.output_tokens, 29);
    assert.equal(res.usage!.input_tokens_details.cached_tokens, 3);
    const r = await post(`${emu.url}/v1/responses`, OPENAI_HEADERS, { model: 'o4@reasoning=5', input: 'Think', stream: true });
    const events = splitSse(r.text);
    assert.ok(
      events.every((e) => e.event === JSON.parse(e.data).type),
      'each event line names its data type',
    );
    const types = dataJson(events).map((e) => e['type']);
    assert.equal(types.filter((t) => t === 'response.reasoning_text.delta').length, 5);
    assert.ok(types.indexOf('response.reasoning_text.done') < types.indexOf('response.output_text.delta'));
  });

  test('bad input and missing auth get OpenAI error bodies', async () => {
    const r = await postJson(`${emu.url}/v1/responses`, OPENAI_HEADERS, { model: 'm', input: 42 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, 'invalid_request_error');
    const cap = await postJson(`${emu.url}/v1/responses`, OPENAI_HEADERS, { model: 'm', input: 'x', max_output_tokens: 0 });
    assert.equal(cap.status, 400);
    const noAuth = await postJson(`${emu.url}/v1/responses`, { 'content-type': 'application/json' }, { model: 'm', input: 'x' });
    assert.equal(noAuth.status, 401);
  });
});
