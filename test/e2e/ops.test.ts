import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(() => srv.close());

test('healthz and readyz answer, and metrics expose requests, latency, tokens, ttft and open streams', async () => {
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
  assert.deepEqual(await (await fetch(`${srv.url}/readyz`)).json(), { status: 'ready' });
  const headers = { authorization: `Bearer ${srv.demoKey}`, 'content-type': 'application/json' };
  await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'hi' }] }),
  }).then((r) => r.text());
  await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'deepseek-v3.2', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  }).then((r) => r.text());
  await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'always-500', messages: [{ role: 'user', content: 'hi' }] }),
  }).then((r) => r.text());
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(text, /tokengrid_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} 2/);
  assert.match(text, /tokengrid_http_request_duration_seconds_bucket/);
  assert.match(text, /tokengrid_tokens_total\{model="deepseek-v3.2",provider="mock",direction="output"\} \d+/);
  assert.match(text, /tokengrid_time_to_first_token_seconds_count\{model="deepseek-v3.2",provider="mock"\} 1/);
  assert.match(text, /tokengrid_upstream_errors_total\{provider="mock",kind="status"\} 1/);
  assert.match(text, /tokengrid_open_streams 0/);
});

test('the admin API refuses requests without the admin key', async () => {
  const r = await fetch(`${srv.url}/admin/accounts`, { headers: { authorization: `Bearer ${srv.demoKey}` } });
  assert.equal(r.status, 401);
});
