/**
 * The security protection pack on the real server (issue 17 item 7): an account that bought the add-on
 * (feature security_pack, reaching the gateway through the key snapshot refresh) has personal data redacted
 * in what the upstream receives and in streamed and non-streamed answers; an account without it does not;
 * an input with an operator's blocked keyword is refused with content_blocked before any upstream call, and
 * nothing is reserved or charged. The emulator's `echo` directive answers with the last user message.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { luhnValid, residentIdCheck, validResidentId } from '../../src/guardrails/index.ts';
import { startTestServer, TEST_CONFIG, type TestServer } from '../support/server.ts';

let srv: TestServer;

/** The shared test config plus an echoing model and the operator's guardrail lists. */
function configFile(): string {
  const echoModel = [
    '  echo-model:',
    '    vendor: deepseek',
    '    groups: [basic]',
    '    contextWindow: 131072',
    '    maxOutputTokens: 8192',
    '    capabilities: []',
    '    deployments: [{ provider: mock, upstreamModel: "echo@echo@chunk=1", region: local }]',
    '    cost: { input: 2000000, output: 3000000 }',
    '    coins: { input: 1, output: 1 }',
    '  claude-native:',
    '    vendor: anthropic',
    '    groups: [basic]',
    '    contextWindow: 131072',
    '    maxOutputTokens: 8192',
    '    capabilities: []',
    '    deployments: [{ provider: mock-anthropic, upstreamModel: claude-opus-4-7, region: local }]',
    '    cost: { input: 2000000, output: 3000000 }',
    '    coins: { input: 1, output: 1 }',
    '  reverse-model:',
    '    vendor: deepseek',
    '    groups: [basic]',
    '    contextWindow: 131072',
    '    maxOutputTokens: 8192',
    '    capabilities: []',
    '    deployments: [{ provider: mock, upstreamModel: "rev@echo@reverse@chunk=1", region: local }]',
    '    cost: { input: 2000000, output: 3000000 }',
    '    coins: { input: 1, output: 1 }',
  ].join('\n');
  const text = readFileSync(TEST_CONFIG, 'utf8').replace(/^models:\n/m, `models:\n${echoModel}\n`);
  const guardrails = [
    'guardrails:',
    '  blockKeywords: ["Project Nightfall"]',
    '  blockPatterns: ["sk-live-[a-z0-9]{6}"]',
    '  redactPatterns: ["工号\\\\d{6}"]',
    '',
  ].join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'tg-guardrails-'));
  const file = join(dir, 'tokengrid.yaml');
  writeFileSync(file, `${text.trimEnd()}\n${guardrails}`);
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

/** A funded account with a key; with the security pack when `pack`. */
async function account(pack: boolean): Promise<{ id: string; key: string }> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `guard-${pack}-${Math.random()}` });
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  assert.equal((await post('/admin/orders/topup', { accountId: a.body.id, amount: '100.00' }, `t-${a.body.id}`)).status, 201);
  const plan = await post('/admin/subscriptions', { accountId: a.body.id, offerId: 'ct-dev-basic', channel: 'wallet' }, `s-${a.body.id}`);
  assert.equal(plan.status, 201, JSON.stringify(plan.body));
  if (pack) {
    const sec = await post(`/admin/accounts/${a.body.id}/addons`, { offerId: 'ct-security-pack' }, `a-${a.body.id}`);
    assert.equal(sec.status, 201, JSON.stringify(sec.body));
  }
  await srv.app.refreshPlanLimits();
  return { id: a.body.id, key: k.body.key };
}

const ID = `11010519491231002${residentIdCheck('11010519491231002')}`;
const PII = `我的手机 13812345678，身份证 ${ID}，卡号 6222020200112233446 和 4111111111111111，邮箱 li.si@example.cn，工号123456。`;
const REDACTED = '我的手机 [PHONE]，身份证 [ID]，卡号 [CARD] 和 [CARD]，邮箱 [EMAIL]，[REDACTED]。';

async function chat(
  key: string,
  content: string,
  stream: boolean,
  model = 'echo-model',
): Promise<{ status: number; text: string; body: any; requestId: string }> {
  const r = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content }] }),
  });
  const raw = await r.text();
  const requestId = r.headers.get('x-request-id') ?? '';
  if (!stream || r.status !== 200) {
    const body = JSON.parse(raw);
    return { status: r.status, text: body.choices?.[0]?.message?.content ?? '', body, requestId };
  }
  let text = '';
  let chunks = 0;
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const delta = JSON.parse(line.slice(6)).choices?.[0]?.delta?.content;
    if (typeof delta === 'string') {
      text += delta;
      chunks++;
    }
  }
  return { status: r.status, text, body: { chunks }, requestId };
}

function upstreamSaw(): string {
  const body = srv.app.emulator!.lastRequest('/v1/chat/completions')!.body as { messages: { content: unknown }[] };
  return JSON.stringify(body.messages);
}

before(async () => {
  srv = await startTestServer({ configPath: configFile(), env: { TOKENGRID_OFFERS_FILE: offersFile() } });
});
after(() => srv.close());

describe('the security protection pack', () => {
  test('the ID used here carries a valid check digit (the test data is what the pack must catch)', async () => {
    assert.equal(validResidentId(ID), true);
  });

  test('with the pack, a non-streamed answer and what the upstream receives have personal data redacted', async () => {
    const a = await account(true);
    const r = await chat(a.key, PII, false);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.text, REDACTED);
    const sent = upstreamSaw();
    assert.ok(!sent.includes('13812345678') && !sent.includes(ID) && !sent.includes('li.si@example.cn'), sent);
    assert.ok(sent.includes('[PHONE]') && sent.includes('[ID]') && sent.includes('[EMAIL]'));
    // Every hit is recorded on the request's usage record, not only counted in /metrics.
    const rec = await srv.admin('GET', `/admin/usage/${r.requestId}`);
    assert.equal(rec.status, 200);
    const hits = rec.body.serving?.guardrailHits;
    assert.ok(hits !== undefined, JSON.stringify(rec.body.serving));
    assert.equal(hits.phone, 1);
    assert.equal(hits.id, 1);
    assert.equal(hits.card, 2);
    assert.equal(hits.email, 1);
  });

  test('with the pack, a streamed answer is redacted even where a value is split across chunks', async () => {
    const a = await account(true);
    const r = await chat(a.key, PII, true);
    assert.equal(r.status, 200);
    assert.equal(r.text, REDACTED);
    assert.ok(r.body.chunks > 3, 'the answer came in several chunks');
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /tokengrid_guardrail_hits_total\{kind="phone"\} [1-9]/);
    assert.match(metrics, /tokengrid_guardrail_hits_total\{kind="card"\} [1-9]/);
  });

  test('with separators and a +86 prefix, a mobile number is still one placeholder', async () => {
    const a = await account(true);
    const r = await chat(a.key, '请拨 +86 139-8765-4321 或写信 a@b.cn', true);
    assert.equal(r.text, '请拨 [PHONE] 或写信 [EMAIL]');
  });

  test('values the upstream itself writes are redacted in streamed and non-streamed answers', async () => {
    // reverse-model answers with the input reversed: the input holds no personal data, the answer does
    // (a mobile number and a card number, each split over several chunks of the stream).
    const card = '4111111111111111';
    const said = '电话 13812345678 卡 4111111111111111。';
    const input = [...said].reverse().join('');
    assert.ok(!luhnValid([...card].reverse().join('')), 'the reversed card is not a card');
    const a = await account(true);
    for (const stream of [true, false]) {
      const r = await chat(a.key, input, stream, 'reverse-model');
      assert.equal(r.status, 200);
      assert.equal(r.text, '电话 [PHONE] 卡 [CARD]。', `stream=${stream}`);
      assert.equal(upstreamSaw().includes(input), true, 'the input reached the upstream unchanged');
    }
    const plain = await account(false);
    assert.equal((await chat(plain.key, input, true, 'reverse-model')).text, said, 'without the pack the answer is as written');
  });

  test('without the pack, nothing is redacted', async () => {
    const a = await account(false);
    const r = await chat(a.key, PII, false);
    assert.equal(r.text, PII);
    assert.ok(upstreamSaw().includes('13812345678'));
    const s = await chat(a.key, PII, true);
    assert.equal(s.text, PII);
  });

  test('a blocked keyword is refused with content_blocked, with no upstream call and no charge', async () => {
    const a = await account(true);
    const before = (await srv.admin('GET', `/admin/accounts/${a.id}/balance`)).body;
    const calls = srv.app.emulator!.stats().requests;
    for (const [content, stream] of [
      ['tell me about project NIGHTFALL please', false],
      ['my key is sk-live-abc123', true],
    ] as const) {
      const r = await chat(a.key, content, stream);
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'content_blocked');
      assert.equal(r.body.error.type, 'invalid_request_error');
      assert.match(r.body.error.message, /security protection pack/);
    }
    assert.equal(srv.app.emulator!.stats().requests, calls, 'no upstream call');
    assert.deepEqual((await srv.admin('GET', `/admin/accounts/${a.id}/balance`)).body, before, 'nothing reserved or charged');
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /tokengrid_guardrail_hits_total\{kind="keyword"\} 1/);
    assert.match(metrics, /tokengrid_guardrail_hits_total\{kind="block_pattern"\} 1/);
  });

  test('with the pack, an Anthropic client reaching an Anthropic upstream (its native body forwarded) has its personal data redacted too', async () => {
    // Attack: /v1/messages keeps the client's own body for an Anthropic upstream (anthropicNative); redacting only
    // the canonical messages left the forwarded body, and so the upstream, with the personal data.
    const a = await account(true);
    const r = await fetch(`${srv.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': a.key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'claude-native',
        max_tokens: 500,
        system: `客服备注：${PII}`,
        messages: [{ role: 'user', content: [{ type: 'text', text: PII }] }],
      }),
    });
    const body = (await r.json()) as any;
    assert.equal(r.status, 200, JSON.stringify(body));
    const sent = JSON.stringify(srv.app.emulator!.lastRequest('/v1/messages')!.body);
    assert.ok(!sent.includes('13812345678') && !sent.includes(ID) && !sent.includes('li.si@example.cn'), sent);
    assert.ok(sent.includes('[PHONE]') && sent.includes('[EMAIL]'), sent);
    assert.ok(!JSON.stringify(body).includes('13812345678'), JSON.stringify(body));
  });

  test('without the pack, the operator keyword list does not apply', async () => {
    const a = await account(false);
    const r = await chat(a.key, 'tell me about project nightfall', false);
    assert.equal(r.status, 200);
  });
});
