import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenGridError } from '../core/index.ts';
import type { FlightView } from '../gateway/index.ts';
import { compileRules, type HitKind } from '../guardrails/index.ts';
import { zeroUsage, type ChatRequest, type ChatResponse, type StreamEvent } from '../wire/index.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGuardrailStage, httpModerationPort } from './guardrail-stage.ts';

function flight(text: string, pack: boolean): FlightView {
  const req: ChatRequest = { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text }] }], stream: true, includeUsage: true, extra: {} };
  return {
    ctx: { requestId: 'req_1', family: 'openai', key: { accountId: 'acct_1' }, ...(pack ? { guardrails: true } : {}) },
    op: 'chat',
    stream: true,
    req,
    model: undefined,
    reservationId: '',
    usage: undefined,
    status: 'ok',
  } as unknown as FlightView;
}

function stage(flagged: boolean) {
  const hits: [HitKind, number][] = [];
  const moderated: string[] = [];
  const s = createGuardrailStage({
    rules: () => compileRules({ blockKeywords: ['forbidden'] }),
    moderation: {
      async moderate(text) {
        moderated.push(text);
        return flagged ? { flagged: true, categories: ['violence'] } : { flagged: false };
      },
    },
    onHit: (kind, n) => hits.push([kind, n]),
  });
  return { s, hits, moderated };
}

test('the moderation port refuses a flagged input with content_blocked and its categories; a clean input passes', async () => {
  const bad = stage(true);
  await assert.rejects(
    async () => bad.s.beforeAdmit!(flight('some text', true)),
    (e: unknown) => e instanceof TokenGridError && e.code === 'content_blocked' && /violence/.test(e.message),
  );
  assert.deepEqual(bad.hits, [['moderation', 1]]);
  const good = stage(false);
  const f = flight('call 13800138000', true);
  await good.s.beforeAdmit!(f);
  assert.deepEqual(good.moderated, ['call 13800138000']);
  assert.deepEqual((f.req as ChatRequest).messages[0]!.content, [{ type: 'text', text: 'call [PHONE]' }]);
  assert.deepEqual(good.hits, [['phone', 1]]);
});

test('an account without the pack is not checked, moderated or rewritten', async () => {
  const { s, moderated, hits } = stage(true);
  const f = flight('forbidden 13800138000', false);
  await s.beforeAdmit!(f);
  const ev: StreamEvent = { type: 'text', text: '13800138000' };
  assert.equal(s.onEvent!(f, ev), ev);
  assert.deepEqual(moderated, []);
  assert.deepEqual(hits, []);
  assert.deepEqual((f.req as ChatRequest).messages[0]!.content, [{ type: 'text', text: 'forbidden 13800138000' }]);
});

test('a stream: a number split over chunks is held back, redacted, and emitted before the finish event', () => {
  const { s, hits } = stage(false);
  const f = flight('', true);
  const out: StreamEvent[] = [];
  for (const ev of [
    { type: 'text', text: '电话 1380' },
    { type: 'text', text: '0138' },
    { type: 'text', text: '000' },
    { type: 'finish', finishReason: 'stop' },
  ] as StreamEvent[]) {
    const r = s.onEvent!(f, ev);
    if (r === null) continue;
    out.push(...(Array.isArray(r) ? r : [r]));
  }
  assert.deepEqual(out, [
    { type: 'text', text: '电话 ' },
    { type: 'text', text: '[PHONE]' },
    { type: 'finish', finishReason: 'stop' },
  ]);
  assert.deepEqual(hits, [['phone', 1]]);
});

test('a moderation service that fails lets the input pass, counted as moderation_error', async () => {
  const hits: [HitKind, number][] = [];
  const s = createGuardrailStage({
    rules: () => compileRules({}),
    moderation: {
      async moderate() {
        throw new Error('connection refused');
      },
    },
    onHit: (kind, n) => hits.push([kind, n]),
  });
  await s.beforeAdmit!(flight('hello', true));
  assert.deepEqual(hits, [['moderation_error', 1]]);
});

test('the HTTP moderation port reads both answer shapes and throws on a failed answer', async () => {
  const answers = [
    { status: 200, body: { results: [{ flagged: true, categories: { hate: false, violence: true } }] } },
    { status: 200, body: { flagged: false } },
    { status: 503, body: {} },
  ];
  const seen: unknown[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      seen.push(JSON.parse(raw));
      const a = answers.shift()!;
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = httpModerationPort({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/moderations` });
    assert.deepEqual(await port.moderate('a'), { flagged: true, categories: ['violence'] });
    assert.deepEqual(await port.moderate('b'), { flagged: false, categories: [] });
    await assert.rejects(port.moderate('c'), /503/);
    assert.deepEqual(seen, [{ input: 'a' }, { input: 'b' }, { input: 'c' }]);
  } finally {
    server.close();
  }
});

test("an Anthropic upstream's verbatim answer blocks (what an Anthropic client receives) are redacted, counted once", () => {
  const hits: [HitKind, number][] = [];
  const s = createGuardrailStage({ rules: () => compileRules({}), onHit: (kind, n) => hits.push([kind, n]) });
  const f = flight('q', true);
  const res: ChatResponse = {
    id: 'msg_1',
    model: 'claude',
    createdS: 1,
    content: [{ type: 'text', text: 'call 13800138000' }],
    finishReason: 'stop',
    usage: zeroUsage(),
    anthropicContent: [
      { type: 'thinking', thinking: 'x', signature: 'sig' },
      { type: 'text', text: 'call 13800138000' },
    ],
  };
  const out = s.onAnswer!(f, res) as ChatResponse;
  assert.deepEqual(out.content, [{ type: 'text', text: 'call [PHONE]' }]);
  assert.deepEqual(out.anthropicContent, [
    { type: 'thinking', thinking: 'x', signature: 'sig' },
    { type: 'text', text: 'call [PHONE]' },
  ]);
  assert.deepEqual(hits, [['phone', 1]]);
});

test("an Anthropic client's native body (forwarded to an Anthropic upstream) is redacted: system, text, tool results, text documents", async () => {
  const { s } = stage(false);
  const f = flight('call 13800138000', true) as FlightView & { req: ChatRequest };
  f.req = {
    ...f.req,
    anthropicNative: {
      headers: {},
      requires: [],
      body: {
        system: [{ type: 'text', text: 'agent 13900139000' }],
        messages: [
          { role: 'user', content: 'call 13800138000' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: {} }] },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'mail li@example.cn' }] },
              { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'phone 13700137000' } },
            ],
          },
        ],
      },
    },
  };
  await s.beforeAdmit!(f);
  const sent = JSON.stringify((f.req as ChatRequest).anthropicNative!.body);
  for (const pii of ['13900139000', '13800138000', 'li@example.cn', '13700137000']) assert.ok(!sent.includes(pii), sent);
  assert.ok(sent.includes('"tool_use_id":"t1"'));
});

test('personal data the model writes in its reasoning or in tool-call arguments is redacted as its text is', () => {
  const s = createGuardrailStage({ rules: () => compileRules({}), onHit: () => {} });
  const f = flight('q', true);
  const res: ChatResponse = {
    id: 'a',
    model: 'm',
    createdS: 1,
    content: [{ type: 'tool_call', id: 't', name: 'send', argumentsJson: '{"to":"13800138000"}' }],
    reasoning: 'the user phone is 13800138000',
    finishReason: 'tool_calls',
    usage: zeroUsage(),
  };
  const out = s.onAnswer!(f, res) as ChatResponse;
  assert.ok(!JSON.stringify(out).includes('13800138000'), JSON.stringify(out));
  assert.deepEqual(out.content, [{ type: 'tool_call', id: 't', name: 'send', argumentsJson: '{"to":"[PHONE]"}' }]);
});

test('streamed: reasoning and tool-call arguments split across chunks are redacted; arguments arrive whole before the next event', () => {
  const hits: [HitKind, number][] = [];
  const s = createGuardrailStage({ rules: () => compileRules({}), onHit: (k, n) => hits.push([k, n]) });
  const f = flight('q', true);
  const out: StreamEvent[] = [];
  const push = (ev: StreamEvent): void => {
    const r = s.onEvent!(f, ev);
    if (r === null) return;
    if (Array.isArray(r)) out.push(...r);
    else out.push(r);
  };
  for (const ev of [
    { type: 'start', id: 'x', model: 'm', createdS: 1 },
    { type: 'reasoning', text: 'call 1380013' },
    { type: 'reasoning', text: '8000 now' },
    { type: 'text', text: 'ok' },
    { type: 'tool_call_start', index: 0, id: 't', name: 'sms' },
    { type: 'tool_call_delta', index: 0, argumentsDelta: '{"to":"138001' },
    { type: 'tool_call_delta', index: 0, argumentsDelta: '38000"}' },
    { type: 'finish', finishReason: 'tool_calls' },
  ] as StreamEvent[])
    push(ev);
  const reasoning = out
    .filter((e) => e.type === 'reasoning')
    .map((e) => (e as { text: string }).text)
    .join('');
  assert.equal(reasoning, 'call [PHONE] now');
  const args = out.filter((e) => e.type === 'tool_call_delta').map((e) => (e as { argumentsDelta: string }).argumentsDelta);
  assert.deepEqual(args, ['{"to":"[PHONE]"}']);
  assert.equal(out[0]!.type, 'start');
  assert.deepEqual(
    out.slice(-3).map((e) => e.type),
    ['tool_call_start', 'tool_call_delta', 'finish'],
  );
  assert.deepEqual(hits, [['phone', 2]]);
});

test('a blocked keyword inside an Anthropic document or search result (content only an Anthropic upstream receives) is refused', async () => {
  const { s } = stage(false);
  for (const block of [
    { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'this is FORBIDDEN text' } },
    { type: 'search_result', source: 'https://x', title: 't', content: [{ type: 'text', text: 'forbidden' }] },
  ]) {
    const f = flight('summarize the attachment', true) as FlightView & { req: ChatRequest };
    f.req = { ...f.req, anthropicNative: { headers: {}, requires: ['a block'], body: { messages: [{ role: 'user', content: [block] }] } } };
    await assert.rejects(
      async () => s.beforeAdmit!(f),
      (e: unknown) => e instanceof TokenGridError && e.code === 'content_blocked',
      String(block.type),
    );
  }
});

test('the end-user id sent upstream (OpenAI user, Anthropic metadata.user_id) has its personal data redacted', async () => {
  const { s } = stage(false);
  const f = flight('hello', true) as FlightView & { req: ChatRequest };
  f.req = {
    ...f.req,
    user: 'li.si@example.cn',
    anthropicNative: { headers: {}, requires: [], body: { metadata: { user_id: 'li.si@example.cn' }, messages: [{ role: 'user', content: 'hello' }] } },
  };
  await s.beforeAdmit!(f);
  const req = f.req as ChatRequest;
  assert.equal(req.user, '[EMAIL]');
  assert.deepEqual(req.anthropicNative!.body['metadata'], { user_id: '[EMAIL]' });
});

test("earlier tool calls' arguments (input history the upstream receives) are redacted, canonical and native, and stay valid JSON", async () => {
  const { s } = stage(false);
  const f = flight('what next?', true) as FlightView & { req: ChatRequest };
  f.req = {
    ...f.req,
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'text my friend' }] },
      { role: 'assistant', content: [{ type: 'tool_call', id: 't1', name: 'sms', argumentsJson: '{"to":"13800138000","n":2}' }] },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 't1', content: 'sent' }] },
      { role: 'user', content: [{ type: 'text', text: 'what next?' }] },
    ],
    anthropicNative: {
      headers: {},
      requires: [],
      body: { messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'sms', input: { to: '13800138000', n: 2 } }] }] },
    },
  };
  await s.beforeAdmit!(f);
  const req = f.req as ChatRequest;
  const call = req.messages[1]!.content[0]!;
  assert.ok(call.type === 'tool_call');
  assert.deepEqual(JSON.parse(call.argumentsJson), { to: '[PHONE]', n: 2 });
  assert.deepEqual((req.anthropicNative!.body['messages'] as any)[0].content[0].input, { to: '[PHONE]', n: 2 });
});
