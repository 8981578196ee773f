import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { ManualClock } from '../../src/core/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
const clock = new ManualClock(Date.parse('2026-11-25T00:00:00Z'));

before(async () => {
  srv = await startTestServer({ clock });
});
after(() => srv.close());

async function post(path: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.demoKey}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

const chat = (model: string, extra: object = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

function assertOpenAIError(r: { status: number; json: any }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0);
  assert.ok('type' in r.json.error && 'param' in r.json.error);
  assert.equal(r.json.error.code, code);
}

function assertAnthropicError(r: { status: number; json: any }, status: number, type: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, type);
  assert.ok(r.json.error.message.length > 0);
}

describe('bad input gets a clear error in the API family format', () => {
  test('malformed JSON is 400 in both formats', async () => {
    assertOpenAIError(await post('/v1/chat/completions', '{"model":'), 400, 'invalid_json');
    assertAnthropicError(await post('/v1/messages', '{nope', { 'anthropic-version': '2023-06-01' }), 400, 'invalid_request_error');
  });

  test('missing and mistyped fields are 400 naming the field', async () => {
    const r = await post('/v1/chat/completions', { model: 'deepseek-v3.2' });
    assertOpenAIError(r, 400, 'invalid_request');
    assert.match(r.json.error.param ?? r.json.error.message, /messages/);
    assertOpenAIError(await post('/v1/chat/completions', chat('deepseek-v3.2', { temperature: 'hot' })), 400, 'invalid_request');
    const a = await post('/v1/messages', { model: 'claude-4.7', messages: [{ role: 'user', content: 'x' }] });
    assertAnthropicError(a, 400, 'invalid_request_error');
    assert.match(a.json.error.message, /max_tokens/);
  });

  test('an unknown model is 404, a bad key 401, a forbidden model 403', async () => {
    assertOpenAIError(await post('/v1/chat/completions', chat('no-such-model')), 404, 'model_not_found');
    assertOpenAIError(
      await post('/v1/chat/completions', chat('deepseek-v3.2'), { authorization: 'Bearer tg-not-a-real-key-000000000000' }),
      401,
      'invalid_api_key',
    );
    assertOpenAIError(await post('/v1/chat/completions', chat('deepseek-v3.2'), { authorization: '' }), 401, 'invalid_api_key');
    assertAnthropicError(
      await post(
        '/v1/messages',
        { model: 'claude-4.7', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
        { authorization: '', 'x-api-key': 'wrong' },
      ),
      401,
      'authentication_error',
    );
    const k = await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId, allowedModels: ['claude-4.7'] });
    assertOpenAIError(await post('/v1/chat/completions', chat('deepseek-v3.2'), { authorization: `Bearer ${k.body.key}` }), 403, 'model_not_allowed');
  });

  test('a revoked key and an expired key are 401 with their own codes', async () => {
    const k = await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId, expiresAt: new Date(clock.nowMs() + 60_000).toISOString() });
    assert.equal((await post('/v1/chat/completions', chat('deepseek-v3.2'), { authorization: `Bearer ${k.body.key}` })).status, 200);
    clock.advance(61_000);
    assertOpenAIError(await post('/v1/chat/completions', chat('deepseek-v3.2'), { authorization: `Bearer ${k.body.key}` }), 401, 'api_key_expired');
    const k2 = await srv.admin('POST', '/admin/keys', { accountId: srv.demoAccountId });
    assert.equal((await srv.admin('POST', `/admin/keys/${k2.body.id}/revoke`)).status, 200);
    assertOpenAIError(await post('/v1/chat/completions', chat('deepseek-v3.2'), { authorization: `Bearer ${k2.body.key}` }), 401, 'api_key_revoked');
  });

  test('an oversized body is 413 and the server keeps serving', async () => {
    const big = JSON.stringify(chat('deepseek-v3.2', { padding: 'x'.repeat(70_000) }));
    assertOpenAIError(await post('/v1/chat/completions', big), 413, 'request_too_large');
    assert.equal((await post('/v1/chat/completions', chat('deepseek-v3.2'))).status, 200);
  });

  test('unknown routes are 404 and wrong methods 405', async () => {
    const r = await fetch(`${srv.url}/v1/nope`, { headers: { authorization: `Bearer ${srv.demoKey}` } });
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as any).error.code, 'not_found');
    const m = await fetch(`${srv.url}/v1/chat/completions`, { headers: { authorization: `Bearer ${srv.demoKey}` } });
    assert.equal(m.status, 405);
  });

  test("the request id is the server's; a client-supplied one is echoed as x-client-request-id (a label, never the charging key)", async () => {
    const r = await post('/v1/chat/completions', chat('deepseek-v3.2'), { 'x-request-id': 'my-trace-123' });
    assert.match(r.headers.get('x-request-id') ?? '', /^req_/);
    assert.equal(r.headers.get('x-client-request-id'), 'my-trace-123');
    const r2 = await post('/v1/chat/completions', chat('deepseek-v3.2'));
    assert.match(r2.headers.get('x-request-id') ?? '', /^req_/);
  });

  test('every kind of response carries the request id: JSON, stream, error, 404, text, admin', async () => {
    const auth = { authorization: `Bearer ${srv.demoKey}` };
    const json = { ...auth, 'content-type': 'application/json' };
    const responses = [
      await fetch(`${srv.url}/v1/chat/completions`, { method: 'POST', headers: json, body: JSON.stringify(chat('deepseek-v3.2', { stream: true })) }),
      await fetch(`${srv.url}/v1/chat/completions`, { method: 'POST', headers: json, body: JSON.stringify(chat('no-such-model')) }),
      await fetch(`${srv.url}/v1/nope`, { headers: auth }),
      await fetch(`${srv.url}/v1/chat/completions`, { headers: { authorization: 'Bearer wrong' }, method: 'POST', body: '{}' }),
      await fetch(`${srv.url}/v1/models`, { headers: auth }),
      await fetch(`${srv.url}/metrics`),
      await fetch(`${srv.url}/admin/accounts`, { headers: { authorization: `Bearer ${srv.adminKey}` } }),
    ];
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 404, 404, 401, 200, 200, 200],
    );
    for (const r of responses) {
      await r.text();
      assert.match(r.headers.get('x-request-id') ?? '', /^req_/, `${r.url} ${r.status}`);
    }
  });
});

describe('upstream failures are answered cleanly and the server keeps serving', () => {
  test('an upstream 500 is 502 upstream_error, in both formats', async () => {
    assertOpenAIError(await post('/v1/chat/completions', chat('always-500')), 502, 'upstream_error');
    assertAnthropicError(await post('/v1/messages', { model: 'always-500', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), 502, 'api_error');
  });

  test('an upstream that never answers is 504 after the first-byte timeout', async () => {
    assertOpenAIError(await post('/v1/chat/completions', chat('hangs')), 504, 'upstream_timeout');
  });

  test('a failing deployment falls back to the next model before the first byte', async () => {
    const r = await post('/v1/chat/completions', chat('failover'));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match(r.json.choices[0].message.content, /emulator/i);
  });

  test('a stream cut mid-way ends with an error frame, and the delivered part is kept', async () => {
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: srv.demoKey, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'disconnects', stream: true, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    await assert.rejects(async () => {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    }, /upstream/i);
    assert.ok(text.length > 0, 'the part before the cut was delivered');
  });

  test('a malformed upstream chunk ends the stream with an error frame in Anthropic format too', async () => {
    const client = new Anthropic({ baseURL: srv.url, apiKey: srv.demoKey, maxRetries: 0 });
    const stream = client.messages.stream({ model: 'malformed', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(stream.finalMessage());
  });

  test('after all of that the server still answers', async () => {
    assert.equal((await post('/v1/chat/completions', chat('deepseek-v3.2'))).status, 200);
    const health = await fetch(`${srv.url}/healthz`);
    assert.equal(health.status, 200);
  });
});
