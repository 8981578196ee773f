/**
 * What a /v1/responses request becomes upstream: the server's mock providers point at a recording proxy in
 * front of the emulator, so each test sees the exact body the gateway sent in each dialect.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let emu: Emulator;
let proxy: Server;
let srv: TestServer;
let client: OpenAI;
const seen: { path: string; body: any }[] = [];

before(async () => {
  emu = await startEmulator();
  const target = new URL(emu.url);
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      try {
        seen.push({ path: req.url ?? '', body: JSON.parse(raw.toString('utf8')) });
      } catch {
        seen.push({ path: req.url ?? '', body: null });
      }
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(raw);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  srv = await startTestServer({ emulatorUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: srv.demoKey, maxRetries: 0 });
});
after(async () => {
  await srv.close();
  proxy.closeAllConnections();
  await new Promise<void>((resolve) => proxy.close(() => resolve()));
  await emu.close();
});

/** The upstream body of the request made by `run`. */
async function upstreamBody(run: () => Promise<unknown>): Promise<{ path: string; body: any }> {
  const from = seen.length;
  await run();
  const mine = seen.slice(from);
  assert.equal(mine.length, 1, 'one upstream call');
  return mine[0]!;
}

describe('a Responses request as the upstream sees it', () => {
  test('OpenAI-compatible: instructions, developer and user messages, tool history, text.format, reasoning.effort and max_output_tokens map onto chat completions', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const { path, body } = await upstreamBody(() =>
      client.responses.create({
        model: 'deepseek-v3.2',
        instructions: 'Be brief.',
        max_output_tokens: 50,
        temperature: 0.2,
        reasoning: { effort: 'low' },
        text: { format: { type: 'json_schema', name: 'place', schema, strict: true } },
        tools: [
          { type: 'function', name: 'f', parameters: { type: 'object', properties: {} }, strict: false },
          { type: 'custom', name: 'apply_patch', description: 'patch' },
          { type: 'web_search' },
        ],
        input: [
          { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'Dev note.' }] },
          { role: 'user', content: 'Hi' },
          { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'c1', output: 'done' },
          { role: 'user', content: 'Now?' },
        ],
      }),
    );
    assert.equal(path, '/v1/chat/completions');
    assert.deepEqual(
      body.messages.map((m: any) => m.role),
      ['system', 'system', 'user', 'assistant', 'tool', 'user'],
    );
    assert.equal(body.messages[0].content, 'Be brief.');
    assert.deepEqual(body.messages[3].tool_calls, [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }]);
    assert.equal(body.messages[4].tool_call_id, 'c1');
    assert.deepEqual(body.response_format, { type: 'json_schema', json_schema: { name: 'place', schema, strict: true } });
    assert.equal(body.reasoning_effort, 'low');
    assert.equal(body.temperature, 0.2);
    assert.ok(body.max_tokens === 50 || body.max_completion_tokens === 50, 'max_output_tokens caps the upstream answer');
    assert.deepEqual(
      body.tools.map((t: any) => t.function.name),
      ['f', 'apply_patch'],
      'the custom tool as a function tool; web_search left out',
    );
    assert.deepEqual(body.tools[1].function.parameters.required, ['input']);
  });

  test('Anthropic: instructions become the system prompt, function_call/function_call_output become tool_use/tool_result', async () => {
    const { path, body } = await upstreamBody(() =>
      client.responses.create({
        model: 'claude-4.7',
        instructions: 'Be brief.',
        tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { q: { type: 'string' } } }, strict: false }],
        input: [
          { role: 'user', content: 'Hi' },
          { type: 'function_call', call_id: 'toolu_1', name: 'f', arguments: '{"q":"x"}' },
          { type: 'function_call_output', call_id: 'toolu_1', output: 'done' },
        ],
      }),
    );
    assert.equal(path, '/v1/messages');
    assert.match(JSON.stringify(body.system), /Be brief\./);
    assert.deepEqual(
      body.messages.map((m: any) => m.role),
      ['user', 'assistant', 'user'],
    );
    assert.deepEqual(
      body.messages[1].content.find((b: any) => b.type === 'tool_use'),
      { type: 'tool_use', id: 'toolu_1', name: 'f', input: { q: 'x' } },
    );
    assert.equal(body.messages[2].content[0].type, 'tool_result');
    assert.equal(body.messages[2].content[0].tool_use_id, 'toolu_1');
    assert.equal(body.reasoning_effort, undefined, 'OpenAI-only fields do not reach other dialects');
  });

  test('Gemini: the conversation arrives as contents with a systemInstruction', async () => {
    const { path, body } = await upstreamBody(() =>
      client.responses.create({ model: 'gemini-3-pro', instructions: 'Be brief.', input: 'Hi', reasoning: { effort: 'high' } }),
    );
    assert.match(path, /gemini-3-pro-preview:generateContent/);
    assert.match(JSON.stringify(body.systemInstruction), /Be brief\./);
    assert.deepEqual(
      body.contents.map((c: any) => c.role),
      ['user'],
    );
    assert.equal(body.reasoning_effort, undefined);
  });

  test('previous_response_id sends the stored input and output before the new input', async () => {
    const first = await client.responses.create({ model: 'deepseek-v3.2', input: 'First question' });
    const { body } = await upstreamBody(() => client.responses.create({ model: 'deepseek-v3.2', input: 'Second question', previous_response_id: first.id }));
    assert.deepEqual(
      body.messages.map((m: any) => [m.role, m.content]),
      [
        ['user', 'First question'],
        ['assistant', first.output_text],
        ['user', 'Second question'],
      ],
    );
  });
});
