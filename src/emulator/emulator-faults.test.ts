import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startEmulator, type Emulator } from './index.ts';
import { ANTHROPIC_HEADERS, GEMINI_HEADERS, OPENAI_HEADERS, dataJson, post, postJson, readAll, splitSse, until } from './emulator-test-kit.ts';

let emu: Emulator;
before(async () => {
  emu = await startEmulator();
});
beforeEach(() => emu.resetStats());
after(() => emu.close());

const hello = [{ role: 'user', content: 'Hello there' }];
const chatUrl = (): string => `${emu.url}/v1/chat/completions`;

function streamChat(model: string, extra: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(chatUrl(), {
    method: 'POST',
    headers: { ...OPENAI_HEADERS, ...extra },
    body: JSON.stringify({ model, messages: hello, stream: true, stream_options: { include_usage: true } }),
    ...(signal ? { signal } : {}),
  });
}

describe('failure directives', () => {
  test('fail=<status> answers that status in each vendor error shape; 429 adds retry-after', async () => {
    const o = await postJson(chatUrl(), OPENAI_HEADERS, { model: 'glm-5@fail=500', messages: hello });
    assert.equal(o.status, 500);
    assert.equal(o.json.error.type, 'server_error');
    const rl = await postJson(chatUrl(), { ...OPENAI_HEADERS, 'x-emulator': 'fail=429' }, { model: 'm', messages: hello, stream: true });
    assert.equal(rl.status, 429);
    assert.equal(rl.headers.get('retry-after'), '1');
    const a = await postJson(`${emu.url}/v1/messages`, ANTHROPIC_HEADERS, { model: 'c@fail=529', max_tokens: 5, messages: hello });
    assert.equal(a.status, 529);
    assert.equal(a.json.error.type, 'overloaded_error');
    const g = await postJson(`${emu.url}/v1beta/models/g@fail=503:streamGenerateContent?alt=sse`, GEMINI_HEADERS, { contents: [{ parts: [{ text: 'x' }] }] });
    assert.equal(g.status, 503);
    assert.equal(g.json.error.status, 'UNAVAILABLE');
  });

  test('failRate fails a deterministic, evenly spread share of requests', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await post(chatUrl(), OPENAI_HEADERS, { model: 'm@failRate=0.25@fail=503', messages: hello });
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 503, 200, 200, 200, 503]);
  });

  test('disconnectAfter=n cuts the stream after n chunks with no terminal event', async () => {
    const res = await streamChat('m@disconnectAfter=2');
    const { text, broken } = await readAll(res);
    assert.ok(broken, 'the client sees a broken connection');
    assert.ok(!text.includes('[DONE]'));
    const contents = dataJson(splitSse(text)).filter((c: any) => c.choices?.[0]?.delta?.content);
    assert.equal(contents.length, 2);
    assert.equal(emu.stats().aborted, 0, 'our own disconnect is not a client abort');
  });

  test('malformedAfter=n inserts one invalid data line and the stream then completes', async () => {
    const res = await streamChat('m@malformedAfter=1@tokens=3');
    const { text, broken } = await readAll(res);
    assert.ok(!broken);
    const events = splitSse(text);
    const bad = events.findIndex((e) => e.data === '{not json');
    assert.ok(bad > 0);
    assert.equal(events.at(-1)?.data, '[DONE]');
    const before = events
      .slice(0, bad)
      .map((e) => JSON.parse(e.data))
      .filter((c) => c.choices[0]?.delta?.content);
    assert.equal(before.length, 1);
  });

  test('errorAfter=n sends the vendor in-stream error (Anthropic event: error) and ends', async () => {
    const r = await post(`${emu.url}/v1/messages`, ANTHROPIC_HEADERS, { model: 'c@errorAfter=2', max_tokens: 50, messages: hello, stream: true });
    const events = splitSse(r.text);
    assert.equal(events.at(-1)?.event, 'error');
    assert.equal(JSON.parse(events.at(-1)!.data).error.type, 'overloaded_error');
    assert.equal(events.filter((e) => e.event === 'content_block_delta').length, 2);
    assert.ok(!events.some((e) => e.event === 'message_stop'));
  });

  test('noUsage omits usage in every dialect, even with include_usage', async () => {
    const o = await readAll(await streamChat('m@noUsage'));
    assert.ok(!o.text.includes('"usage"'));
    const on = await postJson(chatUrl(), OPENAI_HEADERS, { model: 'm@noUsage', messages: hello });
    assert.equal(on.json.usage, undefined);
    const a = await post(
      `${emu.url}/v1/messages`,
      { ...ANTHROPIC_HEADERS, 'x-emulator': 'noUsage' },
      { model: 'c', max_tokens: 5, messages: hello, stream: true },
    );
    assert.ok(!a.text.includes('"usage"'));
    const g = await post(`${emu.url}/v1beta/models/g@noUsage:streamGenerateContent?alt=sse`, GEMINI_HEADERS, { contents: [{ parts: [{ text: 'x' }] }] });
    assert.ok(!g.text.includes('usageMetadata'));
  });

  test('tokens, ignoreMaxTokens and promptTokens override lengths and counts', async () => {
    const r = await postJson(chatUrl(), OPENAI_HEADERS, { model: 'm@tokens=10@ignoreMaxTokens@promptTokens=1000', messages: hello, max_tokens: 3 });
    assert.equal(r.json.usage.completion_tokens, 10);
    assert.equal(r.json.usage.prompt_tokens, 1000);
    assert.equal(r.json.model, 'm');
  });

  test('pacing directives still deliver the whole stream (timing itself is not asserted)', async () => {
    const { text } = await readAll(await streamChat('m@ttft=15@interval=2@chunk=3@tokens=7'));
    const chunks = dataJson(splitSse(text)) as any[];
    const contents = chunks.filter((c) => c.choices[0]?.delta?.content).map((c) => c.choices[0].delta.content as string);
    assert.equal(contents.length, 3, '7 tokens in chunks of 3');
    assert.equal(chunks.at(-1).usage.completion_tokens, 7);
  });
});

describe('aborts, hangs, stats and shutdown', () => {
  test('hang never answers; the client abort is counted and leaves no pending exchange', async () => {
    const ac = new AbortController();
    const pending = streamChat('m@hang', {}, ac.signal).catch((e: unknown) => e);
    await until(() => emu.stats().byModel['m'] === 1);
    ac.abort();
    assert.ok((await pending) instanceof Error);
    await until(() => emu.stats().aborted === 1);
  });

  test('a client abort mid-stream is counted once', async () => {
    const ac = new AbortController();
    const res = await streamChat('m@interval=20@tokens=200', {}, ac.signal);
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await until(() => emu.stats().aborted === 1);
  });

  test('stats count per path and per stripped model, over HTTP too, and reset', async () => {
    await post(chatUrl(), OPENAI_HEADERS, { model: 'glm-5@fail=500', messages: hello });
    await post(chatUrl(), OPENAI_HEADERS, { model: 'glm-5', messages: hello });
    await post(`${emu.url}/v1beta/models/g@tokens=1:generateContent`, GEMINI_HEADERS, { contents: [{ parts: [{ text: 'x' }] }] });
    const s = emu.stats();
    assert.equal(s.requests, 3);
    assert.deepEqual(s.byPath, { '/v1/chat/completions': 2, '/v1beta/models/g:generateContent': 1 });
    assert.deepEqual(s.byModel, { 'glm-5': 2, g: 1 });
    const viaHttp = (await (await fetch(`${emu.url}/__emulator/stats`)).json()) as any;
    assert.deepEqual(viaHttp, s);
    await fetch(`${emu.url}/__emulator/reset`, { method: 'POST' });
    assert.deepEqual(emu.stats(), { requests: 0, byPath: {}, byModel: {}, aborted: 0 });
  });

  test('setDefaults changes the default answer length', async () => {
    emu.setDefaults({ outputTokens: 5 });
    const r = await postJson(chatUrl(), OPENAI_HEADERS, { model: 'm', messages: hello });
    emu.setDefaults({ outputTokens: 24 });
    assert.equal(r.json.usage.completion_tokens, 5);
  });

  test('close() resolves promptly with hanging and slow-streaming clients connected', async () => {
    const other = await startEmulator({ chunkIntervalMs: 50 });
    const hang = fetch(`${other.url}/v1/chat/completions`, {
      method: 'POST',
      headers: OPENAI_HEADERS,
      body: JSON.stringify({ model: 'm@hang', messages: hello }),
    }).catch((e: unknown) => e);
    const slow = await fetch(`${other.url}/v1/chat/completions`, {
      method: 'POST',
      headers: OPENAI_HEADERS,
      body: JSON.stringify({ model: 'm@tokens=1000', messages: hello, stream: true }),
    });
    await until(() => other.stats().requests === 2);
    await other.close();
    assert.ok((await hang) instanceof Error);
    assert.ok((await readAll(slow)).broken);
    assert.equal(other.stats().aborted, 0, 'connections closed by close() are not client aborts');
  });
});
