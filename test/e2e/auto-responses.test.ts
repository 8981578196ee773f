/**
 * `model: "auto"` through /v1/responses (issue 17 item 1): the Responses shell resolves the model first (to name
 * it in the envelope), before the input size is known to the router. The choice must still be made with the
 * real input, as /v1/chat/completions makes it: a long input is not routed to a model too small for it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TEST_CONFIG, type TestServer } from '../support/server.ts';

/** The shared test config plus a very cheap tiered model with a tiny context window. */
function configFile(): string {
  const tiny = [
    '  tiny-cheap:',
    '    vendor: deepseek',
    '    contextWindow: 600',
    '    maxOutputTokens: 100',
    '    capabilities: []',
    '    deployments: [{ provider: mock, upstreamModel: deepseek-v3.2, region: local }]',
    '    cost: { input: 1000, output: 1000 }',
    '    coins: { input: "1/100", output: "1/100" }',
    '    tier: 1',
  ].join('\n');
  const text = readFileSync(TEST_CONFIG, 'utf8').replace(/^models:\n/m, `models:\n${tiny}\n`);
  const file = join(mkdtempSync(join(tmpdir(), 'tg-auto-responses-')), 'tokengrid.yaml');
  writeFileSync(file, text);
  return file;
}

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ configPath: configFile() });
});
after(() => srv.close());

async function post(path: string, body: unknown): Promise<{ status: number; route: string | null; text: string }> {
  const res = await fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.demoKey}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(body),
  });
  return { status: res.status, route: res.headers.get('x-tokengrid-route'), text: await res.text() };
}

const modelOf = (route: string | null): string | undefined => /model=([^;]+)/.exec(route ?? '')?.[1];

test('a short input goes to the cheapest tiered model through both endpoints', async () => {
  const chat = await post('/v1/chat/completions', { model: 'auto:cheap', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(chat.status, 200, chat.text);
  assert.equal(modelOf(chat.route), 'tiny-cheap');
  const resp = await post('/v1/responses', { model: 'auto:cheap', max_output_tokens: 5, input: 'hi' });
  assert.equal(resp.status, 200, resp.text);
  assert.equal(modelOf(resp.route), 'tiny-cheap');
});

test('a long input is routed by its real size through /v1/responses, streamed chat and /v1/messages too, not to a model too small for it', async () => {
  const long = 'lorem ipsum dolor sit amet '.repeat(200); // ~1,200 tokens: more than tiny-cheap's 600
  const chat = await post('/v1/chat/completions', { model: 'auto:cheap', max_tokens: 5, messages: [{ role: 'user', content: long }] });
  assert.equal(chat.status, 200, chat.text);
  assert.notEqual(modelOf(chat.route), 'tiny-cheap');
  const resp = await post('/v1/responses', { model: 'auto:cheap', max_output_tokens: 5, input: long });
  assert.equal(resp.status, 200, resp.text);
  assert.equal(modelOf(resp.route), modelOf(chat.route));
  // The other shells that resolve the model before admission: a streamed chat, and /v1/messages.
  const stream = await post('/v1/chat/completions', { model: 'auto:cheap', max_tokens: 5, stream: true, messages: [{ role: 'user', content: long }] });
  assert.equal(stream.status, 200, stream.text);
  assert.ok(!stream.text.includes('"error"'), stream.text.slice(0, 300));
  assert.equal(modelOf(stream.route), modelOf(chat.route));
  const msg = await post('/v1/messages', { model: 'auto:cheap', max_tokens: 5, messages: [{ role: 'user', content: long }] });
  assert.equal(msg.status, 200, msg.text);
  assert.equal(modelOf(msg.route), modelOf(chat.route));
});
