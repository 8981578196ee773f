import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { createAnthropicAdapter } from './index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import type { ChatRequest, StreamEvent } from '../../wire/index.ts';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let handler: Handler = (_req, _body, res) => res.end();
const agent = new Agent();
const adapter = createAnthropicAdapter();

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await agent.close();
});

const request: ChatRequest = {
  model: 'client-model',
  messages: [
    { role: 'system', content: [{ type: 'text', text: 'sys' }] },
    { role: 'user', content: [{ type: 'text', text: 'hi' }] },
  ],
  stream: false,
  includeUsage: true,
  extra: {},
};

function call(over: Partial<UpstreamCall> = {}): UpstreamCall {
  return {
    provider: { name: 'anth', adapter: 'anthropic', baseUrl, apiKey: 'sk-test', headers: { 'anthropic-beta': 'b1' } },
    upstreamModel: 'claude-up',
    dispatcher: agent,
    signal: new AbortController().signal,
    requestId: 'req_1',
    timeoutMsHeaders: 5000,
    timeoutMsBody: 5000,
    ...over,
  };
}

const sse = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

const messageStart = sse('message_start', {
  type: 'message_start',
  message: {
    id: 'msg_01',
    type: 'message',
    role: 'assistant',
    content: [],
    model: 'claude-up',
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 472, cache_creation_input_tokens: 10, cache_read_input_tokens: 100, output_tokens: 2 },
  },
});

/** A tool-use stream as api.anthropic.com sends it, pings included. */
const toolStream = [
  messageStart,
  sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  sse('ping', { type: 'ping' }),
  sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Okay' } }),
  sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ', checking.' } }),
  sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
  sse('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: {} } }),
  sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } }),
  sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"location":' } }),
  sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: ' "Paris"}' } }),
  sse('content_block_stop', { type: 'content_block_stop', index: 1 }),
  sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 89 } }),
  sse('message_stop', { type: 'message_stop' }),
];

function serveStream(frames: string[], opts: { end?: boolean; status?: number } = {}): void {
  handler = (_req, _body, res) => {
    res.writeHead(opts.status ?? 200, { 'content-type': 'text/event-stream' });
    for (const f of frames) res.write(f);
    if (opts.end !== false) res.end();
  };
}

function serveJson(status: number, body: unknown): void {
  handler = (_req, _body, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

async function collect(c: UpstreamCall = call()): Promise<StreamEvent[]> {
  const stream = await adapter.chatStream(c, { ...request, stream: true });
  const out: StreamEvent[] = [];
  for await (const ev of stream.events) out.push(ev);
  return out;
}

async function rejectsWith(p: Promise<unknown>, kind: UpstreamError['kind'], status?: number): Promise<UpstreamError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof UpstreamError, `expected UpstreamError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (status !== undefined) assert.equal(e.status, status);
    return e;
  }
  return assert.fail(`expected UpstreamError ${kind}`);
}

describe('anthropic adapter: chat', () => {
  test('sends the Anthropic request with key, version and provider headers, and maps the message', async () => {
    let seen: { headers: IncomingMessage['headers']; url: string | undefined; body: Record<string, unknown> } | undefined;
    handler = (req, body, res) => {
      seen = { headers: req.headers, url: req.url, body: JSON.parse(body) as Record<string, unknown> };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'msg_01',
          type: 'message',
          role: 'assistant',
          model: 'claude-up-2025',
          content: [
            { type: 'thinking', thinking: 'let me see', signature: 'sig' },
            { type: 'text', text: 'Hello' },
            { type: 'tool_use', id: 'toolu_1', name: 'f', input: { a: 1 } },
          ],
          stop_reason: 'tool_use',
          stop_sequence: null,
          usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 3, cache_creation_input_tokens: 2 },
        }),
      );
    };
    const res = await adapter.chat(call(), request);
    assert.equal(seen?.url, '/v1/messages');
    assert.equal(seen?.headers['x-api-key'], 'sk-test');
    assert.equal(seen?.headers['anthropic-version'], '2023-06-01');
    assert.equal(seen?.headers['anthropic-beta'], 'b1');
    assert.match(String(seen?.headers['content-type']), /application\/json/);
    assert.deepEqual(seen?.body, {
      model: 'claude-up',
      max_tokens: 4096,
      system: 'sys',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    });
    assert.equal(res.id, 'msg_01');
    assert.equal(res.model, 'claude-up-2025');
    assert.equal(res.reasoning, 'let me see');
    assert.deepEqual(res.content, [
      { type: 'text', text: 'Hello' },
      { type: 'tool_call', id: 'toolu_1', name: 'f', argumentsJson: '{"a":1}' },
    ]);
    assert.equal(res.finishReason, 'tool_calls');
    assert.deepEqual(res.usage, { tokensInput: 15, tokensOutput: 5, tokensCachedInput: 3, tokensCacheWrite: 2, tokensReasoning: 0 });
    assert.deepEqual(
      res.anthropicContent?.[0],
      { type: 'thinking', thinking: 'let me see', signature: 'sig' },
      'the blocks as answered, for an Anthropic client',
    );
  });

  test("an Anthropic client's betas and version reach the upstream with its own body", async () => {
    let seen: { headers: IncomingMessage['headers']; body: Record<string, unknown> } | undefined;
    handler = (req, body, res) => {
      seen = { headers: req.headers, body: JSON.parse(body) as Record<string, unknown> };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'm',
          type: 'message',
          role: 'assistant',
          model: 'x',
          content: [{ type: 'text', text: 'ok' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 1, output_tokens: 1 },
        }),
      );
    };
    const c = call();
    const clientBody = {
      model: 'claude-opus-4-8',
      max_tokens: 100,
      system: [{ type: 'text', text: 's', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: 'hi' }],
    };
    await adapter.chat(
      { ...c, provider: { ...c.provider, headers: {} } },
      {
        ...request,
        maxTokensOutput: 100,
        anthropicNative: {
          body: clientBody,
          headers: { 'anthropic-beta': 'prompt-caching-scope-2026-01-05', 'anthropic-version': '2023-06-01' },
          requires: [],
        },
      },
    );
    assert.equal(seen?.headers['anthropic-beta'], 'prompt-caching-scope-2026-01-05');
    assert.deepEqual(seen?.body, { ...clientBody, model: 'claude-up' });
  });

  test('stop reasons map to canonical finish reasons', async () => {
    for (const [stop, finish] of [
      ['end_turn', 'stop'],
      ['stop_sequence', 'stop'],
      ['max_tokens', 'length'],
      ['refusal', 'content_filter'],
    ] as const) {
      serveJson(200, { id: 'm', type: 'message', content: [], model: 'x', stop_reason: stop, usage: { input_tokens: 1, output_tokens: 1 } });
      assert.equal((await adapter.chat(call(), request)).finishReason, finish);
    }
  });

  test('5xx, 529 and 429 answers are retryable status errors carrying the upstream message', async () => {
    for (const [status, type] of [
      [529, 'overloaded_error'],
      [500, 'api_error'],
      [429, 'rate_limit_error'],
    ] as const) {
      serveJson(status, { type: 'error', error: { type, message: 'Overloaded' } });
      const e = await rejectsWith(adapter.chat(call(), request), 'status', status);
      assert.equal(e.retryable, true);
      assert.match(e.message, new RegExp(`${type}: Overloaded`));
      assert.match(e.body ?? '', /Overloaded/);
    }
  });

  test('a 400 is a status error that is not retryable', async () => {
    serveJson(400, { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
    const e = await rejectsWith(adapter.chat(call(), request), 'status', 400);
    assert.equal(e.retryable, false);
  });

  test('a 2xx body that is not JSON, or not a message, is malformed', async () => {
    serveJson(200, '<html>oops');
    await rejectsWith(adapter.chat(call(), request), 'malformed');
    serveJson(200, { hello: 'world' });
    await rejectsWith(adapter.chat(call(), request), 'malformed');
  });

  test('no response headers within the time allowed is a timeout', async () => {
    handler = () => {
      /* never answers */
    };
    await rejectsWith(adapter.chat(call({ timeoutMsHeaders: 50 }), request), 'timeout');
  });

  test('a refused connection is a connect error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const c = call();
    await rejectsWith(adapter.chat({ ...c, provider: { ...c.provider, baseUrl: `http://127.0.0.1:${port}` } }, request), 'connect');
  });

  test('our own abort signal gives aborted, not a retryable error', async () => {
    handler = () => {
      /* never answers */
    };
    const ac = new AbortController();
    const p = adapter.chat(call({ signal: ac.signal }), request);
    ac.abort();
    const e = await rejectsWith(p, 'aborted');
    assert.equal(e.retryable, false);
  });
});

describe('anthropic adapter: chatStream', () => {
  test('a tool-use stream with pings becomes canonical events with one combined usage', async () => {
    serveStream(toolStream);
    assert.deepEqual(await collect(), [
      {
        type: 'start',
        id: 'msg_01',
        model: 'claude-up',
        createdS: 0,
        usage: { tokensInput: 582, tokensOutput: 2, tokensCachedInput: 100, tokensCacheWrite: 10, tokensReasoning: 0 },
      },
      { type: 'text', text: 'Okay' },
      { type: 'text', text: ', checking.' },
      { type: 'tool_call_start', index: 0, id: 'toolu_01', name: 'get_weather' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '{"location":' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: ' "Paris"}' },
      { type: 'finish', finishReason: 'tool_calls' },
      { type: 'usage', usage: { tokensInput: 582, tokensOutput: 89, tokensCachedInput: 100, tokensCacheWrite: 10, tokensReasoning: 0 } },
    ]);
  });

  test('the streamed request asks for stream: true', async () => {
    let body: Record<string, unknown> = {};
    handler = (_req, raw, res) => {
      body = JSON.parse(raw) as Record<string, unknown>;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(toolStream.join(''));
    };
    await collect();
    assert.equal(body['stream'], true);
  });

  test('bytes split at arbitrary points parse the same', async () => {
    const all = toolStream.join('').replaceAll('\n', '\r\n');
    const pieces: string[] = [];
    for (let i = 0; i < all.length; i += 7) pieces.push(all.slice(i, i + 7));
    serveStream(pieces);
    const events = await collect();
    assert.equal(
      events
        .filter((e) => e.type === 'tool_call_delta')
        .map((e) => (e.type === 'tool_call_delta' ? e.argumentsDelta : ''))
        .join(''),
      '{"location": "Paris"}',
    );
    assert.equal(events.at(-1)?.type, 'usage');
  });

  test('redacted thinking and server tool blocks come through whole, server tool input assembled from its deltas', async () => {
    const redacted = { type: 'redacted_thinking', data: 'opaque' };
    const results = { type: 'web_search_tool_result', tool_use_id: 'srvtoolu_1', content: [{ type: 'web_search_result', url: 'https://x', title: 'X' }] };
    serveStream([
      messageStart,
      sse('content_block_start', { type: 'content_block_start', index: 0, content_block: redacted }),
      sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
      sse('content_block_start', {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: {} },
      }),
      sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"query":' } }),
      sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"tokens"}' } }),
      sse('content_block_stop', { type: 'content_block_stop', index: 1 }),
      sse('content_block_start', { type: 'content_block_start', index: 2, content_block: results }),
      sse('content_block_stop', { type: 'content_block_stop', index: 2 }),
      sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }),
      sse('message_stop', { type: 'message_stop' }),
    ]);
    const events = await collect();
    assert.deepEqual(events.slice(1, 4), [
      { type: 'reasoning', text: '', block: redacted },
      { type: 'reasoning', text: '', block: { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'tokens' } } },
      { type: 'reasoning', text: '', block: results },
    ]);
  });

  test('thinking deltas become reasoning events, and the signature a reasoning event of its own', async () => {
    serveStream([
      messageStart,
      sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }),
      sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'hmm' } }),
      sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'abc' } }),
      sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
      sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }),
      sse('message_stop', { type: 'message_stop' }),
    ]);
    const events = await collect();
    assert.deepEqual(events.slice(1, 4), [
      { type: 'reasoning', text: 'hmm' },
      { type: 'reasoning', text: '', signature: 'abc' },
      { type: 'finish', finishReason: 'stop' },
    ]);
  });

  test('an in-stream overloaded_error is a retryable 529 status error', async () => {
    serveStream([messageStart, sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })]);
    const e = await rejectsWith(collect(), 'status', 529);
    assert.equal(e.retryable, true);
  });

  test('other in-stream errors are 500 status errors', async () => {
    serveStream([sse('error', { type: 'error', error: { type: 'api_error', message: 'Internal' } })]);
    await rejectsWith(collect(), 'status', 500);
  });

  test('a non-2xx answer rejects chatStream itself', async () => {
    serveJson(529, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    await rejectsWith(adapter.chatStream(call(), { ...request, stream: true }), 'status', 529);
  });

  test('a data line that is not JSON is malformed', async () => {
    serveStream([messageStart, 'event: content_block_delta\ndata: {not json\n\n']);
    await rejectsWith(collect(), 'malformed');
  });

  test('a stream that ends before message_stop is a disconnect', async () => {
    serveStream(toolStream.slice(0, 5));
    await rejectsWith(collect(), 'disconnect');
  });

  test('a connection dropped mid-stream is a disconnect', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(toolStream.slice(0, 3).join(''), () => res.destroy());
    };
    await rejectsWith(collect(), 'disconnect');
  });

  test('a consumer that stops early closes the upstream request', async () => {
    const closed = new Promise<void>((resolve) => {
      handler = (_req, _body, res) => {
        res.on('close', () => resolve());
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(toolStream.slice(0, 4).join(''));
      };
    });
    const stream = await adapter.chatStream(call(), { ...request, stream: true });
    for await (const ev of stream.events) {
      if (ev.type === 'text') break;
    }
    await closed;
  });

  test('aborting mid-stream ends iteration with aborted', async () => {
    serveStream(toolStream.slice(0, 4), { end: false });
    const ac = new AbortController();
    const stream = await adapter.chatStream(call({ signal: ac.signal }), { ...request, stream: true });
    const iterate = (async () => {
      for await (const ev of stream.events) if (ev.type === 'text') ac.abort();
    })();
    await rejectsWith(iterate, 'aborted');
  });
});
