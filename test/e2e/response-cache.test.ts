/**
 * The exact response cache and prompt-prefix stickiness on the real server (issue 17 items 4 and 5): identical
 * deterministic requests reach the upstream once and the hits are charged at the cache rate with vendor cost 0;
 * streamed hits replay in each dialect (the official openai SDK reads them); non-deterministic requests are
 * never cached; one account never sees another's answers; entries expire on the server's clock; the Redis
 * backend is shared by two gateway apps. Long shared prompt prefixes stick to one deployment, whose (emulated)
 * vendor prompt cache then reports cached tokens, rated cheaper and recorded as a saving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Redis } from 'ioredis';
import { ManualClock, SeededRandom } from '../../src/core/index.ts';
import { startTestServer, TEST_CONFIG, type TestServer } from '../support/server.ts';

/** The test config plus a model with two deployments (distinct upstream models: two emulated deployments). */
function configFile(): string {
  const text = readFileSync(TEST_CONFIG, 'utf8').trimEnd();
  const sticky = [
    '  sticky-model:',
    '    vendor: deepseek',
    '    contextWindow: 131072',
    '    maxOutputTokens: 8192',
    '    deployments:',
    '      - { provider: mock, upstreamModel: sticky-a, region: local, weight: 1 }',
    '      - { provider: mock, upstreamModel: sticky-b, region: local, weight: 1 }',
    '    cost: { input: 2000000, output: 3000000, cachedInput: 200000 }',
    '    coins: { input: 1, output: 1, cachedInput: "1/4" }',
    '',
  ].join('\n');
  const file = join(mkdtempSync(join(tmpdir(), 'tg-cache-cfg-')), 'config.yaml');
  writeFileSync(file, `${text}\n${sticky}`);
  return file;
}

const clock = new ManualClock('2026-12-01T00:00:00Z');
let srv: TestServer;
before(async () => {
  srv = await startTestServer({ configPath: configFile(), clock });
});
after(() => srv.close());

interface Reply {
  status: number;
  cache: string | null;
  requestId: string;
  body: any;
  text: string;
}

async function post(path: string, key: string, body: unknown, headers: Record<string, string> = {}, base = srv.url): Promise<Reply> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, cache: res.headers.get('x-tokengrid-cache'), requestId: res.headers.get('x-request-id')!, body: parsed, text };
}

const upstreamCalls = (s: TestServer = srv): number => s.app.emulator!.stats().requests;
const record = async (requestId: string, s: TestServer = srv): Promise<any> => {
  const r = await s.admin('GET', `/admin/usage/${requestId}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};
const ask = (text: string, extra: Record<string, unknown> = {}) => ({
  model: 'deepseek-chat',
  temperature: 0,
  messages: [{ role: 'user', content: text }],
  ...extra,
});
const streamText = (sse: string): string =>
  sse
    .split('\n')
    .filter((l) => l.startsWith('data: {'))
    .map((l) => JSON.parse(l.slice(6)).choices?.[0]?.delta?.content ?? '')
    .join('');

async function newAccountKey(): Promise<string> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `cache-${randomUUID()}` });
  assert.equal(a.status, 201);
  assert.equal((await srv.admin('POST', `/admin/accounts/${a.body.id}/grants`, { amount: 1_000_000, kind: 'trial' })).status, 201);
  return (await srv.admin('POST', '/admin/keys', { accountId: a.body.id })).body.key;
}

describe('exact response cache', () => {
  test('three identical temperature-0 requests make one upstream call; the hits are charged at the cache rate, vendor cost 0', async () => {
    const before = upstreamCalls();
    const body = ask(`three of a kind ${randomUUID()}`);
    const replies = [await post('/v1/chat/completions', srv.demoKey, body)];
    replies.push(await post('/v1/chat/completions', srv.demoKey, body), await post('/v1/chat/completions', srv.demoKey, body));
    for (const r of replies) assert.equal(r.status, 200, r.text);
    assert.equal(upstreamCalls() - before, 1);
    assert.deepEqual(
      replies.map((r) => r.cache),
      ['miss', 'hit', 'hit'],
    );
    assert.equal(replies[1]!.body.choices[0].message.content, replies[0]!.body.choices[0].message.content);
    const [miss, hit1, hit2] = await Promise.all(replies.map((r) => record(r.requestId)));
    assert.deepEqual(miss.serving, { cache: 'stored' });
    assert.ok(miss.vendorCostMicros > 0);
    for (const hit of [hit1, hit2]) {
      assert.equal(hit.vendorCostMicros, 0);
      assert.equal(hit.provider, 'cache');
      assert.deepEqual(hit.serving, { cache: 'hit', savings: { cache: miss.vendorCostMicros } });
      assert.deepEqual(hit.usage, miss.usage, 'the hit records the tokens it delivered');
      // deepseek-v3.2 rates input and output at 1 coin a token: the miss pays in + out, a hit 10 % of it, rounded up.
      assert.equal(miss.costCoins, miss.usage.tokensInput + miss.usage.tokensOutput);
      assert.equal(hit.costCoins, Math.ceil(miss.costCoins / 10));
    }
  });

  test('a streamed request is served from a stored answer, read by the official openai SDK', async () => {
    const body = ask(`stream me ${randomUUID()}`);
    const filled = await post('/v1/chat/completions', srv.demoKey, body);
    assert.equal(filled.cache, 'miss');
    const before = upstreamCalls();
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: srv.demoKey, maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'deepseek-chat', temperature: 0, messages: body.messages as any, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    assert.equal(response.headers.get('x-tokengrid-cache'), 'hit');
    let text = '';
    let finish: string | null | undefined;
    let usage: any;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, filled.body.choices[0].message.content);
    assert.equal(finish, 'stop');
    assert.equal(usage.prompt_tokens, filled.body.usage.prompt_tokens);
    assert.equal(upstreamCalls(), before, 'no upstream call');
    const rec = await record(response.headers.get('x-request-id')!);
    assert.equal(rec.serving.cache, 'hit');
  });

  test('a streamed answer fills the cache for a non-streamed request, and Anthropic streams replay too', async () => {
    const body = ask(`stream first ${randomUUID()}`);
    const streamed = await post('/v1/chat/completions', srv.demoKey, { ...body, stream: true });
    assert.equal(streamed.cache, 'miss');
    const whole = await post('/v1/chat/completions', srv.demoKey, body);
    assert.equal(whole.cache, 'hit');
    assert.equal(whole.body.choices[0].message.content, streamText(streamed.text));

    const msg = { model: 'claude-4.7', max_tokens: 60, temperature: 0, stream: true, messages: [{ role: 'user', content: `anthropic ${randomUUID()}` }] };
    const a = await post('/v1/messages', srv.demoKey, msg);
    const b = await post('/v1/messages', srv.demoKey, msg);
    assert.deepEqual([a.status, a.cache, b.status, b.cache], [200, 'miss', 200, 'hit']);
    const deltas = (sse: string): string =>
      sse
        .split('\n')
        .filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6)))
        .filter((e) => e.type === 'content_block_delta')
        .map((e) => e.delta.text ?? '')
        .join('');
    assert.ok(deltas(a.text).length > 0);
    assert.equal(deltas(b.text), deltas(a.text));
    assert.match(b.text, /event: message_stop/);

    const resp = { model: 'deepseek-v3.2', temperature: 0, input: `responses ${randomUUID()}` };
    const c = await post('/v1/responses', srv.demoKey, resp);
    const d = await post('/v1/responses', srv.demoKey, { ...resp, stream: true });
    assert.deepEqual([c.status, c.cache, d.status, d.cache], [200, 'miss', 200, 'hit']);
    const doneText = d.text
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)))
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta)
      .join('');
    assert.equal(doneText, c.body.output_text ?? c.body.output.find((o: any) => o.type === 'message').content[0].text);
  });

  test('a non-deterministic request is never cached unless the header opts in; the off header bypasses; a bad header is a 400', async () => {
    const before = upstreamCalls();
    const warm = ask(`warm ${randomUUID()}`, { temperature: 0.7 });
    const r1 = await post('/v1/chat/completions', srv.demoKey, warm);
    const r2 = await post('/v1/chat/completions', srv.demoKey, warm);
    assert.deepEqual([r1.cache, r2.cache], [null, null]);
    assert.equal(upstreamCalls() - before, 2);
    assert.equal((await record(r2.requestId)).serving, undefined);

    const optIn = ask(`opt in ${randomUUID()}`, { temperature: 0.7 });
    assert.equal((await post('/v1/chat/completions', srv.demoKey, optIn, { 'x-tokengrid-cache': 'on' })).cache, 'miss');
    assert.equal((await post('/v1/chat/completions', srv.demoKey, optIn, { 'x-tokengrid-cache': 'on' })).cache, 'hit');

    const cold = ask(`bypass ${randomUUID()}`);
    await post('/v1/chat/completions', srv.demoKey, cold);
    const off = await post('/v1/chat/completions', srv.demoKey, cold, { 'x-tokengrid-cache': 'off' });
    assert.equal(off.cache, null);
    assert.equal((await record(off.requestId)).serving, undefined);

    const bad = await post('/v1/chat/completions', srv.demoKey, cold, { 'x-tokengrid-cache': 'maybe' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /x-tokengrid-cache/);
  });

  test("another account's identical request is a miss (tenant-scoped)", async () => {
    const body = ask(`tenant ${randomUUID()}`);
    assert.equal((await post('/v1/chat/completions', srv.demoKey, body)).cache, 'miss');
    const other = await newAccountKey();
    const before = upstreamCalls();
    const r = await post('/v1/chat/completions', other, body);
    assert.equal(r.cache, 'miss');
    assert.equal(upstreamCalls() - before, 1);
    assert.equal((await post('/v1/chat/completions', other, body)).cache, 'hit');
  });

  test('an entry expires after its time limit on the server clock', async () => {
    const body = ask(`ttl ${randomUUID()}`);
    await post('/v1/chat/completions', srv.demoKey, body);
    clock.advance(599_000);
    assert.equal((await post('/v1/chat/completions', srv.demoKey, body)).cache, 'hit');
    clock.advance(2_000);
    const before = upstreamCalls();
    assert.equal((await post('/v1/chat/completions', srv.demoKey, body)).cache, 'miss');
    assert.equal(upstreamCalls() - before, 1);
  });
});

describe('prompt-prefix stickiness', () => {
  test('requests sharing a long prefix land on one deployment; its prompt cache reports cached tokens from the second on, rated and saved', async () => {
    const system = `House rules ${randomUUID()}. `.repeat(120) + 'Answer briefly and cite the rule you used. '.repeat(60);
    const records: any[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await post('/v1/chat/completions', srv.demoKey, {
        model: 'sticky-model',
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: `question ${i}` },
        ],
      });
      assert.equal(r.status, 200, r.text);
      records.push(await record(r.requestId));
    }
    assert.equal(new Set(records.map((r) => r.deploymentId)).size, 1, 'one deployment');
    for (const r of records) assert.equal(r.serving.stickyPrefix, true);
    assert.equal(records[0].usage.tokensCachedInput, 0);
    assert.equal(records[0].serving.savings, undefined);
    for (const r of records.slice(1)) {
      assert.ok(r.usage.tokensCachedInput >= 1024, JSON.stringify(r.usage));
      // vendor: 2 micros per uncached input token, 0.2 per cached one: the saving is 1.8 per cached token.
      assert.equal(r.serving.savings.prompt_cache, Math.floor(r.usage.tokensCachedInput * 1.8));
      // charged: cached input at 1/4 coin, so less than the first request with the same prompt size
      assert.ok(r.costCoins < records[0].costCoins);
    }
  });

  test('a short prompt is routed by weight as before (no stickiness note)', async () => {
    const r = await post('/v1/chat/completions', srv.demoKey, { model: 'sticky-model', messages: [{ role: 'user', content: 'short' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal((await record(r.requestId)).serving, undefined);
  });
});

describe('the Redis backend', () => {
  const prefix = `tgtest-${randomUUID()}:`;
  const url = 'redis://127.0.0.1:6379/0';
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    // The same seeded ids and clock give both apps the same demo account and key: two nodes of one deployment.
    const opts = () => ({
      clock: new ManualClock('2026-12-01T00:00:00Z'),
      random: new SeededRandom(42),
      env: { TOKENGRID_REDIS_URL: url },
      redisKeyPrefix: prefix,
    });
    a = await startTestServer(opts());
    b = await startTestServer(opts());
    assert.equal(a.demoAccountId, b.demoAccountId);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    const r = new Redis(url);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length > 0) await r.del(...keys);
    await r.quit();
  });

  test("one node's answer is another node's hit, under tg:{account}:cache:<hash> with a time limit", async () => {
    const body = ask(`shared ${randomUUID()}`);
    const first = await post('/v1/chat/completions', a.demoKey, body, {}, a.url);
    assert.equal(first.cache, 'miss');
    const beforeB = upstreamCalls(b);
    let second: Reply | undefined;
    let misses = 0;
    // The write is asynchronous after the first answer: it lands within a few round trips.
    for (let i = 0; i < 50; i++) {
      second = await post('/v1/chat/completions', b.demoKey, body, {}, b.url);
      if (second.cache === 'hit') break;
      misses++;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(second!.cache, 'hit');
    assert.equal(second!.body.choices[0].message.content, first.body.choices[0].message.content);
    assert.equal(upstreamCalls(b) - beforeB, misses, 'the hit made no upstream call on the second node');
    const r = new Redis(url);
    const keys = await r.keys(`${prefix}tg:{${a.demoAccountId}}:cache:*`);
    assert.equal(keys.length, 1);
    const ttl = await r.pttl(keys[0]!);
    assert.ok(ttl > 0 && ttl <= 600_000, String(ttl));
    await r.quit();
    assert.deepEqual((await record(second!.requestId, b)).serving.cache, 'hit');
  });
});
