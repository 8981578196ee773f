import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { StreamEvent } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { createOpenAICompatibleAdapter } from './index.ts';
import { chatRequest, rejectsWith, scenarioCall, startScenarioUpstream, testFastPaths, type ScenarioUpstream } from './test-upstream.ts';

/** What the fake upstream saw, per scenario. */
const seen = new Map<string, { headers: IncomingMessage['headers']; body: any; url: string }>();
/** Resolved when the server sees the client close a response early. */
const closed = new Map<string, () => void>();

const sse = (o: unknown) => `data: ${typeof o === 'string' ? o : JSON.stringify(o)}\n\n`;
const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  sse({
    id: 'chatcmpl-up',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'up-model',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
}

const toolStream = [
  chunk({ role: 'assistant', content: null }),
  chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"Zürich"}' } }] }),
  chunk({}, 'tool_calls'),
  sse({
    id: 'chatcmpl-up',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'up-model',
    choices: [],
    usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29, prompt_tokens_details: { cached_tokens: 16 } },
  }),
  sse('[DONE]'),
].join('');

const scenarios: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  'chat-ok': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'chatcmpl-9',
        object: 'chat.completion',
        created: 1700000001,
        model: 'up-model',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hello!' }, logprobs: null, finish_reason: 'stop' }],
        usage: {
          prompt_tokens: 5,
          completion_tokens: 2,
          total_tokens: 7,
          prompt_tokens_details: { cached_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0 },
        },
      }),
    );
  },
  'stream-tools': (_req, res) => {
    sseHead(res);
    // Bytes cut at awkward places: inside a line, inside the two-byte 'ü', between \n and \n.
    const bytes = Buffer.from(toolStream);
    const cuts = [7, 100, toolStream.indexOf('ü') + 1, bytes.length - 3];
    let start = 0;
    for (const cut of cuts) {
      res.write(bytes.subarray(start, cut));
      start = cut;
    }
    res.end(bytes.subarray(start));
  },
  'stream-deepseek': (_req, res) => {
    sseHead(res);
    res.write(': keep-alive\n\n');
    res.write(chunk({ role: 'assistant', content: null, reasoning_content: 'Let me think' }));
    res.write(chunk({ content: 'Answer', reasoning_content: null }));
    res.end(
      sse({
        id: 'x',
        created: 1,
        model: 'deepseek-reasoner',
        choices: [{ index: 0, delta: { content: '' }, finish_reason: 'stop' }],
        usage: {
          prompt_tokens: 12,
          completion_tokens: 30,
          prompt_cache_hit_tokens: 8,
          prompt_cache_miss_tokens: 4,
          completion_tokens_details: { reasoning_tokens: 25 },
        },
      }) + sse('[DONE]'),
    );
  },
  'stream-finish-no-done': (_req, res) => {
    sseHead(res);
    res.end(chunk({ content: 'a' }) + chunk({}, 'stop'));
  },
  'stream-json': (_req, res) => scenarios['chat-ok']!(_req, res),
  'status-500': (_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'The server had an error', type: 'server_error', param: null, code: null } }));
  },
  'status-429': (_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }));
  },
  'status-400': (_req, res) => {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('bad request');
  },
  'bad-json': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"id": "x", "choices": [');
  },
  'malformed-chunk': (_req, res) => {
    sseHead(res);
    res.end(chunk({ content: 'a' }) + 'data: {not json}\n\n' + sse('[DONE]'));
  },
  'error-chunk': (_req, res) => {
    sseHead(res);
    res.end(chunk({ content: 'a' }) + sse({ error: { message: 'model overloaded', type: 'server_error' } }));
  },
  disconnect: (_req, res) => {
    sseHead(res);
    res.write(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'partial' }), () => res.socket?.destroy());
  },
  'clean-end-no-finish': (_req, res) => {
    sseHead(res);
    res.end(chunk({ content: 'partial' }));
  },
  'headers-timeout': () => {
    // Never answers.
  },
  'body-timeout': (_req, res) => {
    sseHead(res);
    res.write(chunk({ content: 'a' }));
  },
  endless: (req, res) => {
    sseHead(res);
    res.write(chunk({ content: 'first' }));
    res.on('close', () => closed.get(req.url ?? '')?.());
  },
  completion: (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'cmpl-1',
        object: 'text_completion',
        created: 3,
        model: 'up',
        choices: [{ text: 'Once upon', index: 0, logprobs: null, finish_reason: 'length' }],
        usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 },
      }),
    );
  },
  'completion-stream': (_req, res) => {
    sseHead(res);
    const c = (text: string, finish: string | null) =>
      sse({ id: 'cmpl-2', object: 'text_completion', created: 3, model: 'up', choices: [{ text, index: 0, logprobs: null, finish_reason: finish }] });
    res.end(
      c('Once', null) +
        c(' upon', null) +
        c('', 'stop') +
        sse({
          id: 'cmpl-2',
          object: 'text_completion',
          created: 3,
          model: 'up',
          choices: [],
          usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 },
        }) +
        sse('[DONE]'),
    );
  },
  embeddings: (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
        model: 'emb',
        usage: { prompt_tokens: 3, total_tokens: 3 },
      }),
    );
  },
};

let up: ScenarioUpstream;
let port = 0;
let agent: ScenarioUpstream['agent'];

before(async () => {
  up = await startScenarioUpstream(scenarios, (scenario, req, _res, raw) => {
    seen.set(scenario, { headers: req.headers, body: raw === '' ? undefined : JSON.parse(raw), url: req.url ?? '' });
  });
  ({ port, agent } = up);
});

after(() => up.close());

function call(scenario: string, over: Partial<UpstreamCall> = {}): UpstreamCall {
  return scenarioCall(
    up,
    scenario,
    { baseUrl: `http://127.0.0.1:${port}/${scenario}/v1/`, apiKey: 'sk-test', headers: { 'X-Extra': 'yes' } },
    { upstreamModel: 'up-model', ...over },
  );
}

const chatReq = chatRequest;

const adapter = createOpenAICompatibleAdapter({ fastPaths: testFastPaths() });

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const ev of events) out.push(ev);
  return out;
}

describe('openai-compatible adapter: non-streaming', () => {
  test('chat posts the upstream model with auth and provider headers, and maps the answer', async () => {
    const res = await adapter.chat(call('chat-ok'), chatReq());
    const got = seen.get('chat-ok')!;
    assert.equal(got.url, '/chat-ok/v1/chat/completions');
    assert.equal(got.headers['authorization'], 'Bearer sk-test');
    assert.equal(got.headers['x-extra'], 'yes');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.deepEqual(got.body, { model: 'up-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 64 });
    assert.deepEqual(res, {
      id: 'chatcmpl-9',
      model: 'up-model',
      createdS: 1700000001,
      content: [{ type: 'text', text: 'Hello!' }],
      finishReason: 'stop',
      usage: { tokensInput: 5, tokensOutput: 2, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 },
    });
  });

  test('a 500 is a retryable status error carrying the upstream body', async () => {
    const e = await rejectsWith(adapter.chat(call('status-500'), chatReq()), 'status', 500);
    assert.equal(e.retryable, true);
    assert.match(e.body ?? '', /The server had an error/);
    assert.match(e.message, /The server had an error/);
  });

  test('a 429 is a retryable status error; a 400 is not retryable', async () => {
    assert.equal((await rejectsWith(adapter.chat(call('status-429'), chatReq()), 'status', 429)).retryable, true);
    const bad = await rejectsWith(adapter.chat(call('status-400'), chatReq()), 'status', 400);
    assert.equal(bad.retryable, false);
    assert.equal(bad.body, 'bad request');
  });

  test('a 2xx body that is not JSON is malformed', async () => {
    await rejectsWith(adapter.chat(call('bad-json'), chatReq()), 'malformed');
  });

  test('legacy completions and embeddings map both ways', async () => {
    const c = await adapter.completion!(call('completion'), { model: 'x', prompt: 'p', stream: false, includeUsage: false, extra: {} });
    assert.deepEqual(c.choices, [{ text: 'Once upon', finishReason: 'length' }]);
    assert.equal(seen.get('completion')!.url, '/completion/v1/completions');
    const e = await adapter.embeddings!(call('embeddings'), { model: 'x', input: 'hello', extra: {} });
    assert.deepEqual(e.data, [[0.1, 0.2]]);
    assert.equal(e.usage.tokensInput, 3);
    assert.deepEqual(seen.get('embeddings')!.body, { model: 'up-model', input: 'hello' });
  });
});

describe('openai-compatible adapter: streaming', () => {
  test('a tool-call stream cut at arbitrary bytes gives canonical events and usage once', async () => {
    const stream = await adapter.chatStream(call('stream-tools'), chatReq({ stream: true }));
    const events = await collect(stream.events);
    assert.deepEqual(seen.get('stream-tools')!.body.stream_options, { include_usage: true });
    assert.equal(seen.get('stream-tools')!.headers['accept'], 'text/event-stream');
    assert.deepEqual(events, [
      { type: 'start', id: 'chatcmpl-up', model: 'up-model', createdS: 1700000000 },
      { type: 'tool_call_start', index: 0, id: 'call_1', name: 'get_weather' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city":' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '"Zürich"}' },
      { type: 'finish', finishReason: 'tool_calls' },
      { type: 'usage', usage: { tokensInput: 20, tokensOutput: 9, tokensCachedInput: 16, tokensCacheWrite: 0, tokensReasoning: 0 } },
    ]);
  });

  test('DeepSeek reasoning stream with usage on the finish chunk', async () => {
    const events = await collect((await adapter.chatStream(call('stream-deepseek'), chatReq())).events);
    assert.deepEqual(
      events.map((e) => e.type),
      ['start', 'reasoning', 'text', 'finish', 'usage'],
    );
    assert.deepEqual(events.at(-1), {
      type: 'usage',
      usage: { tokensInput: 12, tokensOutput: 30, tokensCachedInput: 8, tokensCacheWrite: 0, tokensReasoning: 25 },
    });
  });

  test('a stream that ends after finish_reason without [DONE] is complete', async () => {
    const events = await collect((await adapter.chatStream(call('stream-finish-no-done'), chatReq())).events);
    assert.deepEqual(
      events.map((e) => e.type),
      ['start', 'text', 'finish'],
    );
  });

  test('an upstream that answers JSON to a stream request is replayed as events', async () => {
    const events = await collect((await adapter.chatStream(call('stream-json'), chatReq())).events);
    assert.deepEqual(
      events.map((e) => e.type),
      ['start', 'text', 'finish', 'usage'],
    );
  });

  test('non-2xx before streaming rejects chatStream itself', async () => {
    await rejectsWith(adapter.chatStream(call('status-429'), chatReq()), 'status', 429);
  });

  test('a data line that is not JSON is malformed', async () => {
    const stream = await adapter.chatStream(call('malformed-chunk'), chatReq());
    await rejectsWith(collect(stream.events), 'malformed');
  });

  test('an error object mid-stream is a disconnect', async () => {
    const stream = await adapter.chatStream(call('error-chunk'), chatReq());
    const e = await rejectsWith(collect(stream.events), 'disconnect');
    assert.match(e.message, /model overloaded/);
  });

  test('a connection dropped mid-stream is a disconnect, after the events that did arrive', async () => {
    const stream = await adapter.chatStream(call('disconnect'), chatReq());
    const got: StreamEvent[] = [];
    let caught: unknown;
    try {
      for await (const ev of stream.events) got.push(ev);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof UpstreamError && caught.kind === 'disconnect', String(caught));
    assert.deepEqual(
      got.map((e) => e.type),
      ['start', 'text'],
    );
  });

  test('a response that ends cleanly without finish_reason or [DONE] is a disconnect', async () => {
    const stream = await adapter.chatStream(call('clean-end-no-finish'), chatReq());
    await rejectsWith(collect(stream.events), 'disconnect');
  });

  test('legacy completion stream gives text, finish and usage', async () => {
    const stream = await adapter.completionStream!(call('completion-stream'), { model: 'x', prompt: 'p', stream: true, includeUsage: false, extra: {} });
    const events = await collect(stream.events);
    assert.deepEqual(
      events.filter((e) => e.type === 'text').map((e) => (e as { text: string }).text),
      ['Once', ' upon'],
    );
    assert.deepEqual(
      events.slice(-2).map((e) => e.type),
      ['finish', 'usage'],
    );
  });
});

describe('openai-compatible adapter: failures of the connection', () => {
  test('nothing listening is a connect error', async () => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const c = call('chat-ok');
    c.provider = { ...c.provider, baseUrl: `http://127.0.0.1:${deadPort}/v1` };
    await rejectsWith(adapter.chat(c, chatReq()), 'connect');
  });

  // Real network timing is the subject here: short timeouts against a server that stays silent.
  test('no response headers in time is a timeout', async () => {
    await rejectsWith(adapter.chat(call('headers-timeout', { timeoutMsHeaders: 150 }), chatReq()), 'timeout');
  });

  test('no body bytes in time mid-stream is a timeout', async () => {
    const stream = await adapter.chatStream(call('body-timeout', { timeoutMsBody: 150 }), chatReq());
    await rejectsWith(collect(stream.events), 'timeout');
  });

  test('aborting the signal mid-stream is aborted, and an aborted signal never sends', async () => {
    const ac = new AbortController();
    const stream = await adapter.chatStream(call('endless', { signal: ac.signal }), chatReq());
    const it = stream.events[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.type, 'start');
    assert.equal((await it.next()).value?.type, 'text');
    const pending = it.next();
    ac.abort();
    await rejectsWith(pending, 'aborted');
    await rejectsWith(adapter.chat(call('chat-ok', { signal: ac.signal }), chatReq()), 'aborted');
  });

  test('a consumer that stops early closes the upstream response', async () => {
    const c = call('endless');
    const closedSeen = new Promise<void>((resolve) => closed.set('/endless/v1/chat/completions', resolve));
    const stream = await adapter.chatStream(c, chatReq());
    for await (const ev of stream.events) {
      if (ev.type === 'text') break;
    }
    await closedSeen; // resolves only if the adapter destroyed the body
  });
});
