/**
 * The attacker's report against issue 12 (findings F1, F7, F8), each driven over HTTP against the real server
 * and lying emulated upstreams (test/e2e/integrity-attacks-config.yaml). Figures are printed with
 * `INTEGRITY_FIGURES=1 node --import tsx --test test/e2e/integrity-attacks.test.ts`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from 'gpt-tokenizer';
import { auditAccount } from '../../src/charging/index.ts';
import { estimateTextTokens, meterTextTokens } from '../../src/wire/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let srv: TestServer;
const CONFIG = new URL('./integrity-attacks-config.yaml', import.meta.url).pathname;
before(async () => {
  srv = await startTestServer({ configPath: CONFIG, charging: { sliceTokens: 64 }, stream: { sliceTokens: 64, firstSliceTokens: 64 } });
});
after(() => srv.close());

const figure = (name: string, value: unknown): void => {
  if (process.env.INTEGRITY_FIGURES) console.log(`FIGURE ${name}: ${JSON.stringify(value)}`);
};

interface Acct {
  id: string;
  key: string;
}

let n = 0;
async function account(tokens: number): Promise<Acct> {
  const a = await srv.admin('POST', '/admin/accounts', { name: `attacks-${++n}` });
  assert.equal(a.status, 201);
  await srv.admin('PUT', `/admin/accounts/${a.body.id}/policy`, { overage: 'block' });
  if (tokens > 0) assert.equal((await srv.admin('POST', `/admin/accounts/${a.body.id}/grants`, { amount: tokens, kind: 'trial' })).status, 201);
  const k = await srv.admin('POST', '/admin/keys', { accountId: a.body.id });
  assert.equal(k.status, 201);
  return { id: a.body.id, key: k.body.key };
}

async function post(a: Acct, path: string, body: Record<string, unknown>): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(srv.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.key}`, 'x-api-key': a.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* a stream */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

async function record(res: { headers: Headers }): Promise<any> {
  const r = await srv.admin('GET', `/admin/usage/${res.headers.get('x-request-id')}`);
  assert.equal(r.status, 200);
  return r.body;
}

async function balance(id: string): Promise<{ used: number; reserved: number }> {
  const b = await srv.admin('GET', `/admin/accounts/${id}/balance`);
  return b.body.buckets.reduce((s: any, x: any) => ({ used: s.used + x.used, reserved: s.reserved + x.reserved }), { used: 0, reserved: 0 });
}

async function leakCoins(id: string): Promise<number> {
  const u = await srv.admin('GET', `/admin/accounts/${id}/usage`);
  return u.body.data.reduce((s: number, r: any) => s + (r.leakCoins ?? 0), 0);
}

async function audit(id: string): Promise<void> {
  assert.deepEqual((await auditAccount(srv.app.chargingStore, id)).problems, []);
}

/** Tokens of every block an Anthropic client was sent (text, thinking, anything else as its JSON). */
function sentTokens(content: any[]): number {
  let t = 0;
  for (const b of content) {
    if (b.type === 'text') t += meterTextTokens(b.text);
    else if (b.type === 'thinking') t += meterTextTokens(b.thinking);
    else t += meterTextTokens(JSON.stringify(b));
  }
  return t;
}

/** Deterministic pseudo-random text from `alphabet` (a fixed LCG: same prompt every run). */
function randomText(alphabet: string, length: number, seed = 7): string {
  let x = seed;
  let s = '';
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += alphabet[(x >>> 8) % alphabet.length];
  }
  return s;
}

describe('F1: a non-streamed /v1/messages answer from an Anthropic upstream is cut at the grant', () => {
  test('an upstream ignoring max_tokens delivers at most the grant, with stop_reason max_tokens, and the usage told is the usage charged', async () => {
    const a = await account(2_000);
    const r = await post(a, '/v1/messages', { model: 'liar-claude', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const sent = sentTokens(r.body.content);
    const rec = await record(r);
    figure('F1.maxTokens100', {
      sentTokens: sent,
      sentWords: r.body.content
        .map((b: any) => b.text ?? '')
        .join('')
        .split(/\s+/).length,
      told: r.body.usage,
      charged: rec.usage,
    });
    assert.ok(sent <= 100, `sent ${sent} tokens on a 100-token grant`);
    assert.equal(r.body.stop_reason, 'max_tokens');
    assert.equal(r.body.usage.output_tokens, rec.usage.tokensOutput, 'told = charged (output)');
    assert.equal(r.body.usage.input_tokens, rec.usage.tokensInput, 'told = charged (input)');
    assert.ok(rec.usage.tokensOutput >= Math.ceil(sent / 2), 'what was delivered is charged');
    assert.equal(rec.status, 'truncated');
    assert.equal(await leakCoins(a.id), 0);
    await audit(a.id);
  });

  test('twenty concurrent requests on a 3,000-token grant are delivered no more than the buckets paid', async () => {
    const a = await account(3_000);
    const rs = await Promise.all(
      Array.from({ length: 20 }, () => post(a, '/v1/messages', { model: 'liar-claude', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })),
    );
    const ok = rs.filter((r) => r.status === 200);
    const delivered = ok.reduce((s, r) => s + sentTokens(r.body.content), 0);
    const told = ok.reduce((s, r) => s + r.body.usage.output_tokens + r.body.usage.input_tokens, 0);
    const b = await balance(a.id);
    figure('F1.parallel20', { served: ok.length, deliveredTokens: delivered, told, charged: b.used, leakCoins: await leakCoins(a.id) });
    assert.ok(delivered <= 3_000, `delivered ${delivered} tokens on a 3,000-token grant`);
    assert.equal(b.used, told, 'charged = told');
    assert.equal(b.reserved, 0);
    assert.equal(await leakCoins(a.id), 0);
    await audit(a.id);
  });

  test('thinking blocks count against the grant and are cut with it', async () => {
    const a = await account(2_000);
    const r = await post(a, '/v1/messages', { model: 'liar-think', max_tokens: 200, messages: [{ role: 'user', content: 'think' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const sent = sentTokens(r.body.content);
    const rec = await record(r);
    figure('F1.thinking', { sentTokens: sent, told: r.body.usage, charged: rec.usage });
    assert.ok(sent <= 200, `sent ${sent} tokens (thinking included) on a 200-token grant`);
    assert.equal(r.body.stop_reason, 'max_tokens');
    assert.equal(r.body.usage.output_tokens, rec.usage.tokensOutput);
    const thinking = r.body.content.find((b: any) => b.type === 'thinking');
    assert.ok(thinking, 'the thinking block is kept, cut');
    assert.equal(thinking.signature, '', 'a cut thinking block carries no signature it no longer matches');
    await audit(a.id);
  });
});

describe('F8: upstream-reported usage far below what the gateway saw is raised to the floor', () => {
  const prompt = 'The quick brown fox jumps over the lazy dog while the committee reviews its quarterly findings. '.repeat(900); // ~88 KB
  for (const [label, model, path, stream] of [
    ['openai, non-streamed', 'liar-underreport', '/v1/chat/completions', false],
    ['openai, streamed', 'liar-underreport', '/v1/chat/completions', true],
    ['anthropic, non-streamed', 'liar-underreport-claude', '/v1/messages', false],
  ] as const) {
    test(`an 88 KB prompt reported as 1 input token is charged at least 0.7x the gateway's estimate (${label})`, async () => {
      const a = await account(100_000);
      const body: Record<string, unknown> = { model, max_tokens: 50, messages: [{ role: 'user', content: prompt }] };
      if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
      const r = await post(a, path, body);
      assert.equal(r.status, 200, typeof r.body === 'string' ? r.body.slice(0, 300) : JSON.stringify(r.body));
      const rec = await record(r);
      const estimate = estimateTextTokens(prompt);
      const real = encode(prompt).length;
      figure(`F8.${label}`, { promptBytes: prompt.length, o200k: real, estimate, chargedInput: rec.usage.tokensInput, usageEstimated: rec.usageEstimated });
      assert.ok(rec.usage.tokensInput >= Math.ceil(estimate * 0.7), `charged ${rec.usage.tokensInput} input tokens for ~${real}`);
      assert.equal(rec.usageEstimated, true, 'a floored record is flagged');
      if (!stream) {
        const told = path === '/v1/messages' ? r.body.usage.input_tokens : r.body.usage.prompt_tokens;
        assert.equal(told, rec.usage.tokensInput, 'the client is told what is charged');
      }
      await audit(a.id);
    });
  }

  test('a 60,000-character punctuation prompt reported as 1 input token is charged >= 0.8x its o200k count, streamed or not, the same (attack round 2 N2)', async () => {
    // Before: 6,724 non-streamed (half the estimate) and 13,448 streamed, for 39,310 o200k tokens.
    const prompt = Array.from({ length: 60_000 }, (_, i) => '!@#$%^&*()_+{}|:<>?~`-=[];,./'[(i * 7) % 29]).join('');
    const real = encode(prompt).length;
    const charged: number[] = [];
    for (const [stream, includeUsage] of [
      [false, false],
      [true, true],
      [true, false], // no usage event at all: the estimate, then the same floor
    ] as const) {
      const a = await account(200_000);
      const body: Record<string, unknown> = { model: 'liar-underreport', max_tokens: 5, messages: [{ role: 'user', content: prompt }] };
      if (stream) Object.assign(body, { stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) });
      const r = await post(a, '/v1/chat/completions', body);
      assert.equal(r.status, 200, typeof r.body === 'string' ? r.body.slice(0, 300) : JSON.stringify(r.body));
      const rec = await record(r);
      figure(`N2.${stream ? `streamed${includeUsage ? '' : ' without include_usage'}` : 'non-streamed'}`, { o200k: real, chargedInput: rec.usage.tokensInput });
      assert.ok(rec.usage.tokensInput >= 0.8 * real, `charged ${rec.usage.tokensInput} input tokens for ${real}`);
      assert.equal(rec.usageEstimated, true, 'a floored record is flagged');
      charged.push(rec.usage.tokensInput);
      await audit(a.id);
    }
    assert.deepEqual(charged, [charged[0], charged[0], charged[0]], 'streamed and non-streamed requests are floored by one rule');
  });

  test('the floor is counted in /metrics', async () => {
    const m = await fetch(`${srv.url}/metrics`);
    const text = await m.text();
    const line = text.split('\n').find((l) => l.startsWith('tokengrid_usage_floored_total{') && l.includes('liar-underreport'));
    assert.ok(line, 'tokengrid_usage_floored_total has a series for the lying model');
    assert.ok(Number(line!.split(' ').pop()) >= 1);
  });

  test('an honest report stands (no floor on an ordinary request)', async () => {
    const a = await account(100_000);
    const r = await post(a, '/v1/messages', { model: 'liar-claude', max_tokens: 8000, messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(r.status, 200);
    const rec = await record(r);
    // No usage from this upstream: the estimate is charged (flagged estimated), never less than the floor.
    assert.ok(rec.usage.tokensOutput >= Math.ceil(sentTokens(r.body.content) * 0.5));
  });
});

describe('F7: punctuation-heavy ASCII prompts are held at an upper bound of their tokens', () => {
  test('a 20,000-character punctuation prompt against a byte-counting upstream on an 8,000-token grant leaks nothing', async () => {
    const a = await account(8_000);
    const prompt = randomText('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', 20_000);
    const r = await post(a, '/v1/chat/completions', { model: 'bytes-counter', max_tokens: 20, messages: [{ role: 'user', content: prompt }] });
    const leak = await leakCoins(a.id);
    figure('F7.punctuation', {
      status: r.status,
      o200k: encode(prompt).length,
      estimate: estimateTextTokens(prompt),
      leakCoins: leak,
      used: (await balance(a.id)).used,
    });
    assert.equal(leak, 0, 'nothing delivered beyond what the buckets paid');
    assert.equal(r.status, 429, 'refused: the hold of its real size does not fit the grant');
    await audit(a.id);
  });

  test('the same prompt fits a grant of its size and is charged what the upstream counted', async () => {
    const a = await account(30_000);
    const prompt = randomText('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', 20_000);
    const r = await post(a, '/v1/chat/completions', { model: 'bytes-counter', max_tokens: 20, messages: [{ role: 'user', content: prompt }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(await leakCoins(a.id), 0);
    await audit(a.id);
  });
});
