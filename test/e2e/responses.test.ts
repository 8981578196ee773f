import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { auditAccount } from '../../src/charging/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ charging: { sliceTokens: 256 } });
});
after(() => srv.close());

interface Acct {
  id: string;
  key: string;
  client: OpenAI;
}

/** A fresh account with `tokens` in one trial bucket (overage blocked) and a key. */
async function account(tokens = 1_000_000): Promise<Acct> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `responses-${tokens}-${Math.random()}` });
  assert.equal(a.status, 201);
  await srv.admin('PUT', `/admin/accounts/${a.body.id}/policy`, { overage: 'block' });
  assert.equal((await srv.admin('POST', `/admin/accounts/${a.body.id}/grants`, { amount: tokens, kind: 'trial' })).status, 201);
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  return { id: a.body.id, key: k.body.key, client: new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: k.body.key, maxRetries: 0 }) };
}

async function usageRecords(id: string): Promise<any[]> {
  const r = await srv.admin('GET', `/admin/accounts/${id}/usage?detail=records`);
  assert.equal(r.status, 200);
  return r.body.data;
}

async function used(id: string): Promise<{ used: number; reserved: number }> {
  const b = await srv.admin('GET', `/admin/accounts/${id}/balance`);
  return b.body.buckets.reduce((s: any, x: any) => ({ used: s.used + x.used, reserved: s.reserved + x.reserved }), { used: 0, reserved: 0 });
}

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather in a city',
  strict: false,
  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city', 'unit'] },
};

describe('POST /v1/responses through the official openai client', () => {
  test('responses.create answers with one completed message, output_text and usage, charged exactly once', async () => {
    const a = await account();
    const res = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'Hello there', instructions: 'Be brief.', metadata: { run: 'r1' } });
    assert.equal(res.object, 'response');
    assert.equal(res.status, 'completed');
    assert.equal(res.model, 'deepseek-v3.2');
    assert.equal(res.instructions, 'Be brief.');
    assert.deepEqual(res.metadata, { run: 'r1' });
    assert.match(res.id, /^resp_/);
    assert.equal(res.output.length, 1);
    const msg = res.output[0]!;
    assert.equal(msg.type, 'message');
    assert.match(res.output_text, /TokenGrid emulator answering as deepseek-v3\.2/);
    const u = res.usage!;
    assert.ok(u.input_tokens > 0 && u.output_tokens > 0);
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    assert.equal(u.input_tokens_details.cached_tokens, 0);
    assert.equal(u.output_tokens_details.reasoning_tokens, 0);
    const recs = await usageRecords(a.id);
    assert.equal(recs.length, 1, 'one usage record for one request');
    assert.equal(recs[0].usage.tokensInput, u.input_tokens);
    assert.equal(recs[0].usage.tokensOutput, u.output_tokens);
    const b = await used(a.id);
    assert.equal(b.used, u.total_tokens, 'charged exactly the reported usage (1 coin per token)');
    assert.equal(b.reserved, 0);
  });

  test('the same conversation costs the same through /v1/responses as through /v1/chat/completions', async () => {
    const viaChat = await account();
    const viaResponses = await account();
    const chat = await viaChat.client.chat.completions.create({
      model: 'deepseek-v3.2',
      max_tokens: 30,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Parity check' },
      ],
    });
    const res = await viaResponses.client.responses.create({ model: 'deepseek-v3.2', max_output_tokens: 30, instructions: 'Be brief.', input: 'Parity check' });
    assert.equal(res.usage!.input_tokens, chat.usage!.prompt_tokens);
    assert.equal(res.usage!.output_tokens, chat.usage!.completion_tokens);
    assert.equal(res.output_text, chat.choices[0]!.message.content);
    const [c, r] = [await usageRecords(viaChat.id), await usageRecords(viaResponses.id)];
    assert.equal(c.length, 1);
    assert.equal(r.length, 1);
    assert.deepEqual(r[0].usage, c[0].usage);
    assert.deepEqual(await used(viaResponses.id), await used(viaChat.id), 'the same coins were taken');
  });

  test('responses.stream sends the full event sequence in order with increasing sequence numbers and usage on response.completed', async () => {
    const a = await account();
    const stream = a.client.responses.stream({ model: 'deepseek-v3.2', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Stream please' }] }] });
    const types: string[] = [];
    const seqs: number[] = [];
    let deltas = '';
    for await (const ev of stream) {
      types.push(ev.type);
      seqs.push(ev.sequence_number);
      if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    }
    const final = await stream.finalResponse();
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    assert.ok(types.filter((t) => t === 'response.output_text.delta').length > 3);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i),
      'sequence_number counts every event from 0',
    );
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, deltas);
    const plain = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'Stream please' });
    assert.equal(deltas, plain.output_text, 'the streamed text equals the non-streamed answer');
    const u = final.usage!;
    assert.ok(u.input_tokens > 0 && u.output_tokens > 0);
    const stored = await a.client.responses.retrieve(final.id);
    assert.equal(stored.status, 'completed');
    assert.deepEqual(
      stored.output.map((o) => o.id),
      final.output.map((o) => o.id),
      'a streamed response is stored as it was sent',
    );
    assert.equal(stored.output_text, final.output_text);
    assert.deepEqual(stored.usage, final.usage);
    const recs = await usageRecords(a.id);
    assert.equal(recs.length, 2, 'each request charged once');
    assert.equal((await used(a.id)).used, u.total_tokens + plain.usage!.total_tokens);
  });

  test('a function tool round trip: the model calls the tool, the client sends function_call_output, the model answers', async () => {
    const a = await account();
    const first = await a.client.responses.create({ model: 'deepseek-v3.2', tools: [weather], input: 'Weather in Paris?', store: false });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call && call.type === 'function_call', 'a function_call item');
    assert.equal(call.name, 'get_weather');
    const args = JSON.parse(call.arguments);
    assert.equal(typeof args.city, 'string');
    assert.equal(args.unit, 'c');
    assert.match(call.call_id, /\S/);

    // The streamed call reassembles into the same arguments through function_call_arguments deltas.
    const stream = a.client.responses.stream({ model: 'deepseek-v3.2', tools: [weather], input: 'Weather in Paris?', store: false });
    let argDeltas = 0;
    stream.on('response.function_call_arguments.delta', () => argDeltas++);
    const streamed = await stream.finalResponse();
    const sc = streamed.output.find((o) => o.type === 'function_call');
    assert.ok(sc && sc.type === 'function_call');
    assert.deepEqual(JSON.parse(sc.arguments), args);
    assert.ok(argDeltas >= 2, `arguments streamed in pieces (${argDeltas})`);

    const second = await a.client.responses.create({
      model: 'deepseek-v3.2',
      tools: [weather],
      store: false,
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '{"temp": 18}' },
      ],
    });
    assert.equal(second.status, 'completed');
    assert.equal(second.output[0]!.type, 'message');
    // The emulator's agent counterpart answers from the tool result the client sent.
    assert.match(second.output_text, /The tool returned: \{"temp": 18\}/);
    assert.equal((await usageRecords(a.id)).length, 3);
  });

  test('previous_response_id continues a stored conversation (the history is sent upstream) and GET returns the stored response', async () => {
    const a = await account();
    const first = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'My name is Ada.' });
    const got = await a.client.responses.retrieve(first.id);
    assert.equal(got.id, first.id);
    assert.equal(got.status, 'completed');
    assert.deepEqual(got.output, first.output);

    const alone = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'What is my name?', store: false });
    const next = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'What is my name?', previous_response_id: first.id });
    assert.equal(next.previous_response_id, first.id);
    assert.ok(
      next.usage!.input_tokens > alone.usage!.input_tokens + first.usage!.output_tokens - 1,
      'the previous input and output were sent again as history',
    );
    // A chain of three: the third sees both earlier turns.
    const third = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'And again?', previous_response_id: next.id });
    assert.ok(third.usage!.input_tokens > next.usage!.input_tokens);

    // input_items: the conversation that was the third response's input, newest first by default.
    const listed = await a.client.responses.inputItems.list(third.id, { order: 'asc' });
    const texts = listed.data.map((it: any) => (it.type === 'message' ? (it.content[0]?.text ?? it.content) : it.type));
    assert.deepEqual(texts, ['My name is Ada.', first.output_text, 'What is my name?', next.output_text, 'And again?']);
    const page = await a.client.responses.inputItems.list(third.id, { limit: 2 });
    assert.equal(page.data.length, 2);
    assert.equal((page.data[0] as any).content[0].text, 'And again?');
    assert.equal(page.has_more, true);

    await assert.rejects(
      a.client.responses.create({ model: 'deepseek-v3.2', input: 'x', previous_response_id: 'resp_missing' }),
      (e: any) => e.status === 400 && e.param === 'previous_response_id',
    );
    // store: false is not retrievable.
    await assert.rejects(a.client.responses.retrieve(alone.id), (e: any) => e.status === 404);
    // DELETE removes it.
    await a.client.responses.delete(first.id);
    await assert.rejects(a.client.responses.retrieve(first.id), (e: any) => e.status === 404);
  });

  test('item_reference items (what the AI SDK sends with store on) resolve to stored output items of the same account only', async () => {
    const a = await account();
    const b = await account();
    const first = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'Remember this.' });
    const ref = first.output[0]!.id!;
    const alone = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'What did you say?', store: false });
    const withRef = await a.client.responses.create({
      model: 'deepseek-v3.2',
      store: false,
      input: [
        { role: 'user', content: 'Remember this.' },
        { type: 'item_reference', id: ref },
        { role: 'user', content: 'What did you say?' },
      ],
    });
    assert.ok(withRef.usage!.input_tokens >= alone.usage!.input_tokens + first.usage!.output_tokens, 'the referenced answer was sent upstream');
    await assert.rejects(
      b.client.responses.create({ model: 'deepseek-v3.2', input: [{ type: 'item_reference', id: ref }] }),
      (e: any) => e.status === 400 && e.param === 'input[0].id',
    );
  });

  test('responses.inputTokens.count estimates the input without an upstream call or a charge', async () => {
    const a = await account();
    const before = srv.app.emulator!.stats().requests;
    const small = await a.client.responses.inputTokens.count({ model: 'deepseek-v3.2', input: 'Hi' });
    const large = await a.client.responses.inputTokens.count({ model: 'deepseek-v3.2', input: 'Hi '.repeat(400), instructions: 'Be brief.' });
    assert.equal(small.object, 'response.input_tokens');
    assert.ok(small.input_tokens > 0 && large.input_tokens > small.input_tokens + 200);
    assert.equal(srv.app.emulator!.stats().requests, before);
    assert.equal((await usageRecords(a.id)).length, 0);
    await assert.rejects(a.client.responses.inputTokens.count({ input: 'Hi' }), (e: any) => e.status === 400 && e.param === 'model');
  });

  test('another account can neither GET nor continue a stored response', async () => {
    const a = await account();
    const b = await account();
    const res = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'secret' });
    await assert.rejects(b.client.responses.retrieve(res.id), (e: any) => e.status === 404 && e.type === 'invalid_request_error');
    await assert.rejects(b.client.responses.create({ model: 'deepseek-v3.2', input: 'x', previous_response_id: res.id }), (e: any) => e.status === 400);
    await assert.rejects(b.client.responses.delete(res.id), (e: any) => e.status === 404);
    assert.equal((await a.client.responses.retrieve(res.id)).id, res.id);
  });

  test('max_output_tokens ends the response incomplete with reason max_output_tokens', async () => {
    const a = await account();
    const res = await a.client.responses.create({ model: 'deepseek-v3.2', input: 'Tell me a long story', max_output_tokens: 5 });
    assert.equal(res.status, 'incomplete');
    assert.deepEqual(res.incomplete_details, { reason: 'max_output_tokens' });
    assert.ok(res.usage!.output_tokens <= 5);
  });

  test('a stream cut at the grant ends with response.incomplete, charged only what was delivered', async () => {
    const a = await account(1000);
    const stream = a.client.responses.stream({ model: 'long-stream', input: 'go' });
    const types: string[] = [];
    for await (const ev of stream) types.push(ev.type);
    const final = await stream.finalResponse();
    assert.equal(types.at(-1), 'response.incomplete');
    assert.equal(final.status, 'incomplete');
    assert.deepEqual(final.incomplete_details, { reason: 'max_output_tokens' });
    const b = await used(a.id);
    assert.equal(b.reserved, 0);
    assert.ok(b.used <= 1000 && b.used >= 900, `most of the balance, never more: ${b.used}`);
    assert.equal(b.used, final.usage!.total_tokens, 'the usage on response.incomplete is what was charged');
    assert.equal((await usageRecords(a.id)).length, 1);
    assert.deepEqual((await auditAccount(srv.app.chargingStore, a.id)).problems, []);
  });

  test('an upstream failure after the first byte ends the stream with response.failed', async () => {
    const a = await account();
    const res = await fetch(`${srv.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'disconnects', input: 'go', stream: true }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text
      .split('\n\n')
      .filter((f) => f.startsWith('event: '))
      .map((f) => JSON.parse(f.slice(f.indexOf('data: ') + 6)));
    assert.equal(events[0].type, 'response.created');
    const last = events.at(-1);
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response.status, 'failed');
    assert.equal(last.response.error.code, 'server_error');
    assert.ok(
      events.some((e: any) => e.type === 'response.output_text.delta'),
      'the part delivered before the failure',
    );
    assert.equal((await usageRecords(a.id)).length, 1);
  });

  // responses-translation.test.ts shows text.format reaching the upstream as response_format json_schema; the emulator's
  // chat answer honours it, so the JSON comes back valid for the schema end to end.
  test('text.format json_schema answers with JSON that follows the schema', async () => {
    const a = await account();
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, temp: { type: 'number' }, sunny: { type: 'boolean' } },
      required: ['city', 'temp', 'sunny'],
      additionalProperties: false,
    };
    const res = await a.client.responses.create({
      model: 'deepseek-v3.2',
      input: 'Weather?',
      text: { format: { type: 'json_schema', name: 'weather', schema, strict: true } },
    });
    const v = JSON.parse(res.output_text);
    assert.equal(typeof v.city, 'string');
    assert.equal(typeof v.temp, 'number');
    assert.equal(typeof v.sunny, 'boolean');
  });

  test('an account with nothing to pay is refused with 429 insufficient_quota before any upstream call, streamed or not', async () => {
    const a = await account();
    await srv.admin('PUT', `/admin/accounts/${a.id}/policy`, { overage: 'block' });
    const empty = await srv.admin('POST', '/admin/accounts', { name: `empty-${Math.random()}` });
    await srv.admin('PUT', `/admin/accounts/${empty.body.id}/policy`, { overage: 'block' });
    const k = await srv.admin('POST', '/admin/keys', { accountId: empty.body.id });
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: k.body.key, maxRetries: 0 });
    const before = srv.app.emulator!.stats().requests;
    await assert.rejects(client.responses.create({ model: 'deepseek-v3.2', input: 'hi' }), (e: any) => e.status === 429 && e.code === 'insufficient_quota');
    await assert.rejects(client.responses.stream({ model: 'deepseek-v3.2', input: 'hi' }).finalResponse(), (e: any) => e.status === 429);
    assert.equal(srv.app.emulator!.stats().requests, before, 'no upstream call was made');
  });

  test('bad input gets an OpenAI-format 400 naming the param', async () => {
    const a = await account();
    const cases: [unknown, string][] = [
      [{ input: 'hi' }, 'model'],
      [{ model: 'deepseek-v3.2' }, 'input'],
      [{ model: 'deepseek-v3.2', input: 42 }, 'input'],
      [{ model: 'deepseek-v3.2', input: [{ type: 'message', role: 'robot', content: 'x' }] }, 'input[0].role'],
      [{ model: 'deepseek-v3.2', input: [{ role: 'user', content: [{ type: 'input_audio' }] }] }, 'input[0].content[0].type'],
      [{ model: 'deepseek-v3.2', input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].id'],
      [{ model: 'deepseek-v3.2', input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
      [{ model: 'deepseek-v3.2', input: 'x', temperature: 3 }, 'temperature'],
      [{ model: 'deepseek-v3.2', input: 'x', text: { format: { type: 'xml' } } }, 'text.format.type'],
      [{ model: 'deepseek-v3.2', input: 'x', tools: [{ type: 'function' }] }, 'tools[0].name'],
      [{ model: 'deepseek-v3.2', input: 'x', tools: [{ type: 'teleport' }] }, 'tools[0].type'],
      [{ model: 'deepseek-v3.2', input: 'x', tool_choice: { type: 'web_search' } }, 'tool_choice.type'],
      [{ model: 'deepseek-v3.2', input: 'x', reasoning: { effort: 'extreme' } }, 'reasoning.effort'],
      [{ model: 'deepseek-v3.2', input: 'x', metadata: { k: 1 } }, 'metadata.k'],
    ];
    for (const [body, param] of cases) {
      const res = await fetch(`${srv.url}/v1/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400, JSON.stringify(body));
      const err = (await res.json()) as any;
      assert.equal(err.error.type, 'invalid_request_error');
      assert.equal(err.error.param, param, JSON.stringify(body));
      assert.ok(err.error.message.length > 0);
    }
    await assert.rejects(a.client.responses.create({ model: 'no-such-model', input: 'x' }), (e: any) => e.status === 404);
    assert.equal((await usageRecords(a.id)).length, 0, 'nothing charged for refused requests');
  });

  test('Codex-style requests work: developer messages, a custom tool comes back as custom_tool_call, hosted tools are ignored with a warning header', async () => {
    const a = await account();
    const body = {
      model: 'deepseek-v3.2',
      stream: true,
      store: false,
      parallel_tool_calls: false,
      include: ['reasoning.encrypted_content'],
      prompt_cache_key: 'session-1',
      reasoning: { effort: 'medium' },
      text: { verbosity: 'low' },
      client_metadata: { a: 'b' },
      tool_choice: { type: 'custom', name: 'apply_patch' },
      tools: [
        { type: 'custom', name: 'apply_patch', description: 'Apply a patch', format: { type: 'grammar', syntax: 'lark', definition: 'start: /.+/' } },
        { type: 'web_search' },
        { type: 'tool_search' },
      ],
      input: [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'You are a coding agent.' }] },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Fix the bug' }] },
      ],
    };
    const res = await fetch(`${srv.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('x-tokengrid-warning') ?? '', /web_search, tool_search/);
    const events = (await res.text())
      .split('\n\n')
      .filter((f) => f.startsWith('event: '))
      .map((f) => JSON.parse(f.slice(f.indexOf('data: ') + 6)));
    const done = events.find((e: any) => e.type === 'response.output_item.done');
    assert.equal(done.item.type, 'custom_tool_call');
    assert.equal(done.item.name, 'apply_patch');
    assert.equal(done.item.input, 'demo', 'the custom tool input is the string, not the JSON wrapper');
    assert.ok(events.some((e: any) => e.type === 'response.custom_tool_call_input.done'));
    assert.equal(events.at(-1).type, 'response.completed');

    // The round trip back: custom_tool_call + custom_tool_call_output are accepted as history.
    const back = await a.client.responses.create({
      model: 'deepseek-v3.2',
      store: false,
      tools: [{ type: 'custom', name: 'apply_patch', description: 'Apply a patch' }],
      input: [
        { type: 'message', role: 'user', content: 'Fix the bug' },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' },
        { type: 'custom_tool_call', call_id: done.item.call_id, name: 'apply_patch', input: '*** Begin Patch' },
        { type: 'custom_tool_call_output', call_id: done.item.call_id, output: 'Done!' },
      ] as any,
    });
    assert.equal(back.status, 'completed');
    assert.equal(back.output[0]!.type, 'message');
  });
});

describe('POST /v1/responses to other upstream dialects', () => {
  for (const model of ['claude-4.7', 'gemini-3-pro']) {
    test(`${model}: text, stream and a tool call work through translation, each charged once`, async () => {
      const a = await account();
      const res = await a.client.responses.create({ model, input: 'Hello', instructions: 'Be brief.' });
      assert.equal(res.status, 'completed');
      assert.match(res.output_text, /emulator/);
      assert.ok(res.usage!.input_tokens > 0 && res.usage!.output_tokens > 0);

      const stream = a.client.responses.stream({ model, input: 'Hello' });
      const types: string[] = [];
      for await (const ev of stream) types.push(ev.type);
      const final = await stream.finalResponse();
      assert.equal(types[0], 'response.created');
      assert.equal(types.at(-1), 'response.completed');
      assert.ok(final.output_text.length > 0);
      assert.ok(final.usage!.output_tokens > 0);

      const call = await a.client.responses.create({ model, tools: [weather], input: 'Weather in Paris?' });
      const fc = call.output.find((o) => o.type === 'function_call');
      assert.ok(fc && fc.type === 'function_call' && fc.name === 'get_weather');
      const answer = await a.client.responses.create({
        model,
        tools: [weather],
        previous_response_id: call.id,
        input: [{ type: 'function_call_output', call_id: fc.call_id, output: 'sunny' }],
      });
      assert.equal(answer.status, 'completed');
      assert.ok(answer.output_text.length > 0);

      const streamedCall = await a.client.responses.stream({ model, tools: [weather], input: 'Weather in Paris?', store: false }).finalResponse();
      const sfc = streamedCall.output.find((o) => o.type === 'function_call');
      assert.ok(sfc && sfc.type === 'function_call' && sfc.name === 'get_weather');
      assert.deepEqual(JSON.parse(sfc.arguments), JSON.parse(fc.arguments), 'the streamed call has the same arguments');

      const recs = await usageRecords(a.id);
      assert.equal(recs.length, 5);
      const charged = (await used(a.id)).used;
      assert.ok(charged > 0);
      assert.deepEqual((await auditAccount(srv.app.chargingStore, a.id)).problems, []);
    });
  }
});
