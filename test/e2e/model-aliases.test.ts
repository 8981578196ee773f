/**
 * The model ids agents send, over HTTP with the official openai and @anthropic-ai/sdk clients: vendors'
 * current ids resolve through aliases, a package's modelMap sends any claude-* id to the package's own model,
 * and the response and the usage record name the model actually used. Also: the emulator as an agent's
 * counterpart in the OpenAI dialect (tool round trip, JSON-schema output), the legacy billing routes without
 * /v1, and unknown routes counted in /metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { pino } from 'pino';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
let openai: OpenAI;
/** Warn-level log lines of the server (parsed). */
const warnings: Record<string, unknown>[] = [];
const logger = pino(
  { level: 'warn' },
  {
    write: (line: string) => {
      warnings.push(JSON.parse(line) as Record<string, unknown>);
    },
  },
);

/** The shipped offers with their groups mapped to the test config's, plus a coding plan without Claude that maps claude-* ids. */
function offersFile(): string {
  const text = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8').replace(/package-basic|package-developer/g, 'basic');
  const plan = [
    '  test-coding-plan:',
    '    name: "Coding plan without Claude"',
    '    type: plan',
    '    price: "1.00"',
    '    cycle: month',
    '    allowance: { tokens: 1M }',
    '    models: [basic]',
    '    modelMap: { "claude-*": deepseek-v3.2, "gpt-5-codex": deepseek-chat }',
    '    channel: wallet',
    '',
  ].join('\n');
  const file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, `${text.trimEnd()}\n${plan}`);
  return file;
}

before(async () => {
  srv = await startTestServer({ env: { TOKENGRID_OFFERS_FILE: offersFile() }, logger });
  openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: srv.demoKey, maxRetries: 0 });
});
after(() => srv.close());

async function subscriber(): Promise<{ id: string; key: string }> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `coder-${Math.random()}` });
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  const call = async (path: string, body: unknown, idem: string): Promise<{ status: number; body: any }> => {
    const r = await fetch(srv.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': idem },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  assert.equal((await call('/admin/orders/topup', { accountId: a.body.id, amount: '10.00' }, `t-${a.body.id}`)).status, 201);
  const sub = await call('/admin/subscriptions', { accountId: a.body.id, offerId: 'test-coding-plan', channel: 'wallet' }, `s-${a.body.id}`);
  assert.equal(sub.status, 201, JSON.stringify(sub.body));
  await srv.app.refreshPlanLimits();
  return { id: a.body.id, key: k.body.key };
}

describe('vendor model ids', () => {
  test("vendors' current ids resolve through aliases to the closest catalog model, named in the response", async () => {
    for (const [asked, used] of [
      ['claude-sonnet-4-6', 'claude-4.7'],
      ['claude-opus-4-8[1m]', 'claude-4.7'],
      ['gemini-2.5-pro', 'gemini-3-pro'],
      ['deepseek-chat', 'deepseek-v3.2'],
    ]) {
      const res = await openai.chat.completions.create({ model: asked!, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(res.model, used, asked);
      const stream = await openai.chat.completions.create({ model: asked!, stream: true, messages: [{ role: 'user', content: 'hi' }] });
      for await (const chunk of stream) assert.equal(chunk.model, used);
    }
  });

  test('an unknown id is still a 404 model_not_found', async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'claude-nonexistent-9', messages: [{ role: 'user', content: 'hi' }] }),
      (e: any) => e.status === 404 && e.code === 'model_not_found',
    );
  });

  test("a package's modelMap sends Claude Code's default id to the package's model; the response and the usage record say which", async () => {
    const s = await subscriber();
    const anthropic = new Anthropic({ baseURL: srv.url, apiKey: s.key, maxRetries: 0 });
    const msg = await anthropic.messages.create({ model: 'claude-opus-4-8[1m]', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.model, 'deepseek-v3.2');
    const streamed = await anthropic.messages.stream({ model: 'claude-opus-4-8', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
    assert.equal(streamed.model, 'deepseek-v3.2');
    assert.equal(srv.app.emulator!.lastRequest('/v1/chat/completions')?.body['model'], 'deepseek-v3.2', 'served by the package model');

    const res = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-5-codex', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).model, 'deepseek-v3.2', 'an exact key maps to an alias of the package model');
    const record = await srv.admin('GET', `/admin/usage/${res.headers.get('x-request-id')}`);
    assert.equal(record.status, 200);
    assert.equal(record.body.model, 'deepseek-v3.2');
  });
});

describe("the emulator as an agent's counterpart (OpenAI dialect)", () => {
  const tools: OpenAI.ChatCompletionTool[] = [
    { type: 'function', function: { name: 'read_file', parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } } },
    {
      type: 'function',
      function: {
        name: 'shell',
        parameters: {
          type: 'object',
          properties: { command: { type: 'string' }, env: { type: 'object', properties: { CI: { type: 'boolean' } } } },
          required: ['command'],
        },
      },
    },
  ];

  for (const model of ['deepseek-v3.2', 'claude-4.7', 'gemini-3-pro']) {
    test(`a tool round trip on ${model}: the prompt picks the tool and its arguments, the tool result is answered`, async () => {
      const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Please run `npm test` and tell me' }];
      const first = await openai.chat.completions.create({ model, messages, tools });
      assert.equal(first.choices[0]!.finish_reason, 'tool_calls');
      const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      assert.equal(call.function.name, 'shell');
      assert.deepEqual(JSON.parse(call.function.arguments), { command: 'npm test' }, 'the required arguments only');
      messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: 'all 12 tests passed' });
      const second = await openai.chat.completions.create({ model, messages, tools, stream: true });
      let text = '';
      for await (const chunk of second) text += chunk.choices[0]?.delta.content ?? '';
      assert.match(text, /^The tool returned: .*all 12 tests passed/);
    });

    test(`response_format json_schema and json_object on ${model} give JSON (valid for the schema)`, async () => {
      const schema = {
        type: 'object',
        additionalProperties: false,
        required: ['items', 'total', 'status'],
        properties: {
          items: {
            type: 'array',
            minItems: 3,
            items: { type: 'object', required: ['sku'], properties: { sku: { type: 'string', minLength: 6 }, qty: { type: 'integer', maximum: 5 } } },
          },
          total: { type: 'number' },
          status: { type: 'string', enum: ['open', 'closed'] },
          note: { anyOf: [{ type: 'null' }, { type: 'string' }] },
        },
      };
      const res = await openai.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'order' }],
        response_format: { type: 'json_schema', json_schema: { name: 'order', schema, strict: true } },
      });
      const value = JSON.parse(res.choices[0]!.message.content!);
      assert.equal(value.items.length, 3);
      assert.ok(value.items.every((i: any) => i.sku.length >= 6 && i.qty <= 5));
      assert.equal(value.status, 'open');
      assert.equal(typeof value.total, 'number');
      assert.equal(value.note, 'demo');
      const obj = await openai.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'json please' }],
        response_format: { type: 'json_object' },
      });
      assert.equal(typeof JSON.parse(obj.choices[0]!.message.content!), 'object');
    });
  }
});

describe('routes chat front-ends and stray clients use', () => {
  test('/dashboard/billing/subscription and /usage answer without /v1, like with it', async () => {
    for (const path of ['/dashboard/billing/subscription', '/dashboard/billing/usage?start_date=2026-01-01&end_date=2026-01-31']) {
      const without = await fetch(srv.url + path, { headers: { authorization: `Bearer ${srv.demoKey}` } });
      const withV1 = await fetch(`${srv.url}/v1${path}`, { headers: { authorization: `Bearer ${srv.demoKey}` } });
      assert.equal(without.status, 200, path);
      assert.deepEqual(await without.json(), await withV1.json());
    }
  });

  test('an unknown route is a 404, logged once per method and path, and counted in /metrics by method', async () => {
    const metric = async (): Promise<number> => {
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('tokengrid_unknown_routes_total{method="POST"}'));
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    const before = await metric();
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${srv.url}/v1/no-such-thing`, { method: 'POST', body: '{}' });
      assert.equal(r.status, 404);
    }
    assert.equal(await metric(), before + 3);
    await fetch(`${srv.url}/v1/no-such-thing`);
    const logged = warnings.filter((w) => w['msg'] === 'unknown route (logged once per method and path)' && w['path'] === '/v1/no-such-thing');
    assert.deepEqual(
      logged.map((w) => w['method']),
      ['POST', 'GET'],
    );
  });
});
