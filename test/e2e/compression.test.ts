/**
 * Context compression on the real server (issue 17 item 6): a long agent loop sent with
 * `x-tokengrid-compress: on` is charged for fewer input tokens than the same request without it, its usage
 * record carries `serving.compressedTokens` and the saving in vendor cost; the guard lets content the latest turn
 * asks about reach the upstream (the emulator's `recall` directive answers from what it received); the add-on
 * feature `context_compression` switches it on for an account (a request may still say `off`); an Anthropic
 * client's native body is compressed for an Anthropic upstream too; a bad header value is a 400.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TEST_CONFIG, type TestServer } from '../support/server.ts';

let srv: TestServer;

function configFile(): string {
  const models = [
    '  recall-model:',
    '    vendor: deepseek',
    '    groups: [basic]',
    '    contextWindow: 131072',
    '    maxOutputTokens: 8192',
    '    capabilities: [tools]',
    '    deployments: [{ provider: mock, upstreamModel: "recall@recall", region: local }]',
    '    cost: { input: 2000000, output: 3000000 }',
    '    coins: { input: 1, output: 1 }',
    '  recall-claude:',
    '    vendor: anthropic',
    '    groups: [basic]',
    '    contextWindow: 131072',
    '    maxOutputTokens: 8192',
    '    capabilities: [tools]',
    '    deployments: [{ provider: mock-anthropic, upstreamModel: "claude@recall", region: local }]',
    '    cost: { input: 21600000, output: 108000000 }',
    '    coins: { input: 1, output: 1 }',
  ].join('\n');
  const text = readFileSync(TEST_CONFIG, 'utf8').replace(/^models:\n/m, `models:\n${models}\n`);
  const file = join(mkdtempSync(join(tmpdir(), 'tg-compress-')), 'tokengrid.yaml');
  writeFileSync(file, text);
  return file;
}

function offersFile(): string {
  const text = readFileSync(new URL('../../config/offers.yaml', import.meta.url), 'utf8').replace(/package-basic|package-developer/g, 'basic');
  const file = join(mkdtempSync(join(tmpdir(), 'tg-offers-')), 'offers.yaml');
  writeFileSync(file, text);
  return file;
}

async function post(path: string, body: unknown, idem: string): Promise<{ status: number; body: any }> {
  const r = await fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json', 'idempotency-key': idem },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

async function account(addon: boolean): Promise<{ id: string; key: string }> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `compress-${addon}-${Math.random()}` });
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  assert.equal((await post('/admin/orders/topup', { accountId: a.body.id, amount: '100.00' }, `t-${a.body.id}`)).status, 201);
  const plan = await post('/admin/subscriptions', { accountId: a.body.id, offerId: 'ct-dev-basic', channel: 'wallet' }, `s-${a.body.id}`);
  assert.equal(plan.status, 201, JSON.stringify(plan.body));
  if (addon) {
    const r = await post(`/admin/accounts/${a.body.id}/addons`, { offerId: 'ct-context-compression' }, `a-${a.body.id}`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  await srv.app.refreshPlanLimits();
  return { id: a.body.id, key: k.body.key };
}

const words = ['compiled', 'module', 'ok', 'test', 'passed', 'warning', 'line', 'step'];
const filler = (seed: number, n: number): string => {
  let s = '';
  let x = seed;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += `${words[x % words.length]} `;
  }
  return s.slice(0, n);
};

/** An OpenAI agent loop: 6 tool rounds with 5,000-character outputs; the first holds build_id=48213 mid-output. */
function agentLoop(question: string): unknown[] {
  const msgs: unknown[] = [
    { role: 'system', content: 'You are a build agent.' },
    { role: 'user', content: 'Fix the failing build.' },
  ];
  for (let i = 0; i < 6; i++) {
    const out = i === 0 ? `${filler(i, 2500)} build_id=48213 ${filler(i + 50, 2500)}` : filler(i, 5000);
    msgs.push({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: `call_${i}`, type: 'function', function: { name: 'bash', arguments: '{"command":"make"}' } }],
    });
    msgs.push({ role: 'tool', tool_call_id: `call_${i}`, content: out });
  }
  msgs.push({ role: 'user', content: question });
  return msgs;
}

async function chat(key: string, messages: unknown[], header?: string): Promise<{ status: number; body: any; requestId: string }> {
  const r = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(header === undefined ? {} : { 'x-tokengrid-compress': header }) },
    body: JSON.stringify({ model: 'recall-model', messages }),
  });
  return { status: r.status, body: await r.json(), requestId: r.headers.get('x-request-id') ?? '' };
}

async function record(accountId: string, requestId: string): Promise<any> {
  const all = await srv.app.charging.listUsage(accountId, { fromMs: 0, toMs: Date.now() + 60_000 });
  const r = all.find((x) => x.requestId === requestId);
  assert.ok(r, `usage record of ${requestId}`);
  return r;
}

function upstreamSaw(path = '/v1/chat/completions'): string {
  return JSON.stringify(srv.app.emulator!.lastRequest(path)!.body);
}

before(async () => {
  srv = await startTestServer({ configPath: configFile(), env: { TOKENGRID_OFFERS_FILE: offersFile() } });
});
after(() => srv.close());

describe('context compression', () => {
  test('with the header on, a long agent loop is charged fewer input tokens and its usage record carries the saving', async () => {
    const a = await account(false);
    const q = 'Summarise the build.';
    const off = await chat(a.key, agentLoop(q));
    assert.equal(off.status, 200, JSON.stringify(off.body));
    const on = await chat(a.key, agentLoop(q), 'on');
    assert.equal(on.status, 200, JSON.stringify(on.body));
    const inOff = off.body.usage.prompt_tokens as number;
    const inOn = on.body.usage.prompt_tokens as number;
    assert.ok(inOn < inOff * 0.7, `input ${inOn} vs ${inOff}`);
    assert.match(upstreamSaw(), /characters of this earlier tool output dropped/);
    const rOn = await record(a.id, on.requestId);
    const rOff = await record(a.id, off.requestId);
    assert.equal(rOff.serving, undefined);
    assert.equal(rOn.usage.tokensInput, inOn);
    // The estimate (o200k-like, ~1 token a word) counts this filler lower than the emulator (4 bytes a token).
    assert.ok(rOn.serving.compressedTokens > 0.3 * (inOff - inOn), JSON.stringify(rOn.serving));
    // The saving is the removed tokens at the model's input price (2,000,000 micros per 1M tokens).
    assert.equal(rOn.serving.savings.compression, Math.round((rOn.serving.compressedTokens * 2_000_000) / 1_000_000));
    assert.ok(rOn.vendorCostMicros < rOff.vendorCostMicros);
    // Streamed: the same request, the same compression, on the record too.
    const r = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json', 'x-tokengrid-compress': 'on' },
      body: JSON.stringify({ model: 'recall-model', stream: true, stream_options: { include_usage: true }, messages: agentLoop(q) }),
    });
    const sse = await r.text();
    assert.equal(r.status, 200);
    const usage = sse
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)))
      .find((c) => c.usage)?.usage;
    assert.equal(usage.prompt_tokens, inOn);
    assert.equal((await record(a.id, r.headers.get('x-request-id') ?? '')).serving.compressedTokens, rOn.serving.compressedTokens);
  });

  test('the guard: content the latest turn asks about reaches the upstream, and the answer is right', async () => {
    const a = await account(false);
    const on = await chat(a.key, agentLoop('What was the build_id of the first run? [recall build_id]'), 'on');
    assert.equal(on.status, 200);
    assert.equal(on.body.choices[0].message.content, 'Recalled: build_id=48213');
    assert.ok(upstreamSaw().includes('build_id=48213'), 'the output holding it was kept whole');
    assert.match(upstreamSaw(), /earlier tool output dropped/, 'the other stale outputs were still cut');
    assert.ok((await record(a.id, on.requestId)).serving.compressedTokens > 0);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /tokengrid_compression_guarded_total [1-9]/);
    assert.match(metrics, /tokengrid_compression_tokens_total [1-9]\d{3,}/);
  });

  test('the add-on switches it on for the account; a request can say off', async () => {
    const a = await account(true);
    const byFeature = await chat(a.key, agentLoop('Summarise.'));
    assert.ok((await record(a.id, byFeature.requestId)).serving?.compressedTokens > 0);
    const optedOut = await chat(a.key, agentLoop('Summarise.'), 'off');
    assert.equal((await record(a.id, optedOut.requestId)).serving, undefined);
    assert.ok(optedOut.body.usage.prompt_tokens > byFeature.body.usage.prompt_tokens);
  });

  test('an Anthropic client to an Anthropic upstream: the native body is compressed, every tool_use keeps its tool_result', async () => {
    const a = await account(false);
    const messages: unknown[] = [{ role: 'user', content: 'Fix the failing build.' }];
    for (let i = 0; i < 6; i++) {
      messages.push({ role: 'assistant', content: [{ type: 'tool_use', id: `tu_${i}`, name: 'bash', input: { command: 'make' } }] });
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `tu_${i}`, content: filler(i, 5000) }] });
    }
    messages.push({ role: 'user', content: 'Summarise.' });
    const r = await fetch(`${srv.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': a.key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-tokengrid-compress': 'on' },
      body: JSON.stringify({ model: 'recall-claude', max_tokens: 64, messages, tools: [{ name: 'bash', input_schema: { type: 'object' } }] }),
    });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    const sent = JSON.parse(upstreamSaw('/v1/messages')) as { messages: { role: string; content: any }[] };
    assert.equal(sent.messages.length, messages.length);
    assert.match(sent.messages[2]!.content[0].content, /earlier tool output dropped/);
    for (let i = 0; i < 6; i++) assert.equal(sent.messages[2 + 2 * i]!.content[0].tool_use_id, `tu_${i}`);
    const rec = await record(a.id, r.headers.get('x-request-id') ?? '');
    assert.ok(rec.serving.compressedTokens > 0);
    assert.equal(rec.serving.savings.compression, Math.round((rec.serving.compressedTokens * 21_600_000) / 1_000_000));
  });

  test('a header value other than on or off is refused with a 400 in the API format', async () => {
    const a = await account(false);
    const r = await chat(a.key, agentLoop('x'), 'yes');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_request');
    assert.match(r.body.error.message, /x-tokengrid-compress/);
  });
});
