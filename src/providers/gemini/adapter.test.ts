import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { ManualClock } from '../../core/index.ts';
import type { ChatRequest, StreamEvent } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { createGeminiAdapter } from './index.ts';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let baseUrl: string;
let handler: Handler = (_req, _body, res) => res.end();
const seen: Seen[] = [];
const agent = new Agent();
const adapter = createGeminiAdapter({ clock: new ManualClock('2026-03-01T00:00:00Z') });

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await agent.close();
});

function makeCall(over: Partial<UpstreamCall> = {}): UpstreamCall {
  return {
    provider: { name: 'google', adapter: 'gemini', baseUrl, apiKey: 'test-key' },
    upstreamModel: 'gemini-2.5-flash',
    dispatcher: agent,
    signal: new AbortController().signal,
    requestId: 'req_01',
    timeoutMsHeaders: 5000,
    timeoutMsBody: 5000,
    ...over,
  };
}

const chatReq: ChatRequest = {
  model: 'gemini-flash',
  stream: false,
  includeUsage: true,
  extra: {},
  messages: [
    { role: 'system', content: [{ type: 'text', text: 'You are terse.' }] },
    { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
  ],
  tools: [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
};

const json =
  (status: number, body: unknown): Handler =>
  (_req, _body, res) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };

/** Google frames each streamed GenerateContentResponse as `data: <json>\r\n\r\n`. */
const sse = (chunks: unknown[]): string => chunks.map((c) => `data: ${JSON.stringify(c)}\r\n\r\n`).join('');

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of events) out.push(e);
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
  assert.fail(`expected an UpstreamError(${kind})`);
}

describe('gemini adapter: non-streamed chat', () => {
  test('posts to models/{model}:generateContent with the API key and returns text, reasoning and usage', async () => {
    handler = json(200, {
      candidates: [
        {
          content: { parts: [{ text: 'Thinking about Paris.', thought: true }, { text: 'Sunny' }, { text: ', 21C.' }], role: 'model' },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 5, totalTokenCount: 40, thoughtsTokenCount: 23, cachedContentTokenCount: 8 },
      modelVersion: 'gemini-2.5-flash',
      responseId: 'resp_abc',
    });
    const out = await adapter.chat(makeCall(), chatReq);
    const req = seen.at(-1);
    assert.equal(req?.method, 'POST');
    assert.equal(req?.url, '/v1beta/models/gemini-2.5-flash:generateContent');
    assert.equal(req?.headers['x-goog-api-key'], 'test-key');
    const sent = JSON.parse(req?.body ?? '{}') as Record<string, unknown>;
    assert.deepEqual(sent.systemInstruction, { parts: [{ text: 'You are terse.' }] });
    assert.deepEqual(sent.contents, [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }]);
    assert.deepEqual(out, {
      id: 'resp_abc',
      model: 'gemini-2.5-flash',
      createdS: Date.parse('2026-03-01T00:00:00Z') / 1000,
      content: [{ type: 'text', text: 'Sunny, 21C.' }],
      reasoning: 'Thinking about Paris.',
      finishReason: 'stop',
      usage: { tokensInput: 12, tokensOutput: 28, tokensCachedInput: 8, tokensCacheWrite: 0, tokensReasoning: 23 },
    });
  });

  test('a function call comes back as a tool_call part and finishes with tool_calls', async () => {
    handler = json(200, {
      candidates: [
        {
          content: { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: 'c2ln' }], role: 'model' },
          finishReason: 'STOP',
        },
      ],
      usageMetadata: { promptTokenCount: 30, candidatesTokenCount: 7, totalTokenCount: 37 },
      modelVersion: 'gemini-2.5-flash',
    });
    const out = await adapter.chat(makeCall(), chatReq);
    assert.equal(out.id, 'gemini-req_01');
    assert.equal(out.finishReason, 'tool_calls');
    assert.equal(out.content.length, 1);
    const call = out.content[0];
    assert.ok(call?.type === 'tool_call');
    assert.equal(call.name, 'get_weather');
    assert.equal(call.argumentsJson, '{"city":"Paris"}');
    assert.match(call.id, /^call_/);
  });

  test('a 2xx body that is not JSON is malformed', async () => {
    handler = json(200, '<html>oops</html>');
    await rejectsWith(adapter.chat(makeCall(), chatReq), 'malformed');
  });

  test('a 2xx body with neither candidates nor a block reason is malformed', async () => {
    handler = json(200, { usageMetadata: { promptTokenCount: 3 } });
    await rejectsWith(adapter.chat(makeCall(), chatReq), 'malformed');
  });
});

describe('gemini adapter: error statuses', () => {
  const cases: [number, string, string, boolean][] = [
    [400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', false],
    [429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', true],
    [500, 'INTERNAL', 'An internal error has occurred.', true],
    [503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.', true],
  ];
  for (const [code, status, message, retryable] of cases) {
    test(`HTTP ${code} ${status} becomes UpstreamError(status) with the body kept and retryable=${retryable}`, async () => {
      const body = { error: { code, message, status } };
      handler = json(code, body);
      const e = await rejectsWith(adapter.chat(makeCall(), chatReq), 'status', code);
      assert.equal(e.retryable, retryable);
      assert.match(e.message, new RegExp(status));
      assert.deepEqual(JSON.parse(e.body ?? ''), body);
      const s = await rejectsWith(adapter.chatStream(makeCall(), { ...chatReq, stream: true }), 'status', code);
      assert.equal(s.retryable, retryable);
    });
  }
});

describe('gemini adapter: streamed chat', () => {
  test('posts to :streamGenerateContent?alt=sse and yields text, reasoning, tool calls, then finish and the last usage once', async () => {
    const usage1 = { promptTokenCount: 20, candidatesTokenCount: 1, totalTokenCount: 21 };
    const usage2 = { promptTokenCount: 20, candidatesTokenCount: 9, thoughtsTokenCount: 15, totalTokenCount: 44 };
    const meta = { modelVersion: 'gemini-2.5-pro', responseId: 'stream_1' };
    const body = sse([
      { candidates: [{ content: { parts: [{ text: 'Plan: call the tool.', thought: true }], role: 'model' }, index: 0 }], usageMetadata: usage1, ...meta },
      { candidates: [{ content: { parts: [{ text: 'Let me check. ' }], role: 'model' }, index: 0 }], usageMetadata: usage1, ...meta },
      {
        candidates: [
          {
            content: {
              parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }, { functionCall: { name: 'get_weather', args: { city: 'Oslo' } } }],
              role: 'model',
            },
            finishReason: 'STOP',
            index: 0,
          },
        ],
        usageMetadata: usage2,
        ...meta,
      },
    ]);
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Split mid-line so the parser has to join chunks.
      res.write(body.slice(0, 37));
      res.end(body.slice(37));
    };
    const stream = await adapter.chatStream(makeCall(), { ...chatReq, stream: true });
    assert.equal(seen.at(-1)?.url, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    const events = await collect(stream.events);
    const id0 = events.find((e) => e.type === 'tool_call_start' && e.index === 0);
    const id1 = events.find((e) => e.type === 'tool_call_start' && e.index === 1);
    assert.ok(id0?.type === 'tool_call_start' && id1?.type === 'tool_call_start');
    assert.notEqual(id0.id, id1.id);
    assert.deepEqual(events, [
      { type: 'start', id: 'stream_1', model: 'gemini-2.5-pro', createdS: Date.parse('2026-03-01T00:00:00Z') / 1000 },
      { type: 'reasoning', text: 'Plan: call the tool.' },
      { type: 'text', text: 'Let me check. ' },
      { type: 'tool_call_start', index: 0, id: id0.id, name: 'get_weather' },
      { type: 'tool_call_delta', index: 0, argumentsDelta: '{"city":"Paris"}' },
      { type: 'tool_call_start', index: 1, id: id1.id, name: 'get_weather' },
      { type: 'tool_call_delta', index: 1, argumentsDelta: '{"city":"Oslo"}' },
      { type: 'finish', finishReason: 'tool_calls' },
      { type: 'usage', usage: { tokensInput: 20, tokensOutput: 24, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 15 } },
    ]);
  });

  test('multi-byte text split across TCP writes arrives intact', async () => {
    const body = Buffer.from(
      sse([
        {
          candidates: [{ content: { parts: [{ text: '你好，世界 🌍' }], role: 'model' }, finishReason: 'STOP' }],
          usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 6 },
        },
      ]),
    );
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const cut = body.indexOf(Buffer.from('好')) + 1; // inside the 3-byte sequence
      res.write(body.subarray(0, cut));
      setImmediate(() => res.end(body.subarray(cut)));
    };
    const events = await collect((await adapter.chatStream(makeCall(), chatReq)).events);
    assert.deepEqual(
      events.filter((e) => e.type === 'text'),
      [{ type: 'text', text: '你好，世界 🌍' }],
    );
    assert.equal(events[0]?.type === 'start' && events[0].id, 'gemini-req_01');
  });

  test('a stream that ends before any finishReason fails with disconnect', async () => {
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse([{ candidates: [{ content: { parts: [{ text: 'Half an ans' }], role: 'model' } }] }]));
    };
    const stream = await adapter.chatStream(makeCall(), chatReq);
    const seenEvents: StreamEvent[] = [];
    await rejectsWith(
      (async () => {
        for await (const e of stream.events) seenEvents.push(e);
      })(),
      'disconnect',
    );
    assert.deepEqual(
      seenEvents.map((e) => e.type),
      ['start', 'text'],
    );
  });

  test('a socket destroyed mid-stream fails with disconnect', async () => {
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse([{ candidates: [{ content: { parts: [{ text: 'Hel' }], role: 'model' } }] }]));
      setImmediate(() => res.destroy());
    };
    const stream = await adapter.chatStream(makeCall(), chatReq);
    await rejectsWith(collect(stream.events), 'disconnect');
  });

  test('an event that is not JSON fails with malformed', async () => {
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"candidates": [\r\n\r\n');
    };
    await rejectsWith(collect((await adapter.chatStream(makeCall(), chatReq)).events), 'malformed');
  });

  test('an error object inside a 200 stream fails with its status', async () => {
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse([{ error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } }]));
    };
    await rejectsWith(collect((await adapter.chatStream(makeCall(), chatReq)).events), 'status', 503);
  });

  test('a consumer that stops early releases the upstream connection', async () => {
    let closed!: () => void;
    const upstreamClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse([{ candidates: [{ content: { parts: [{ text: 'one' }], role: 'model' } }] }]));
      res.on('close', () => closed()); // never ends on its own
    };
    const stream = await adapter.chatStream(makeCall(), chatReq);
    for await (const e of stream.events) if (e.type === 'text') break;
    await upstreamClosed;
  });
  test('our own abort mid-stream fails with aborted', async () => {
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse([{ candidates: [{ content: { parts: [{ text: 'one' }], role: 'model' } }] }]));
    };
    const ac = new AbortController();
    const stream = await adapter.chatStream(makeCall({ signal: ac.signal }), chatReq);
    const consumed = (async () => {
      for await (const e of stream.events) if (e.type === 'text') ac.abort();
    })();
    await rejectsWith(consumed, 'aborted');
  });

  test('a prompt blocked by safety filters streams a content_filter finish', async () => {
    handler = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        sse([
          {
            promptFeedback: { blockReason: 'PROHIBITED_CONTENT' },
            usageMetadata: { promptTokenCount: 11, totalTokenCount: 11 },
            modelVersion: 'gemini-2.5-flash',
          },
        ]),
      );
    };
    const events = await collect((await adapter.chatStream(makeCall(), chatReq)).events);
    assert.deepEqual(events.slice(1), [
      { type: 'finish', finishReason: 'content_filter' },
      { type: 'usage', usage: { tokensInput: 11, tokensOutput: 0, tokensCachedInput: 0, tokensCacheWrite: 0, tokensReasoning: 0 } },
    ]);
  });
});

describe('gemini adapter: transport failures', () => {
  test('no response headers within timeoutMsHeaders fails with timeout', async () => {
    handler = () => {
      /* never answer */
    };
    const e = await rejectsWith(adapter.chat(makeCall({ timeoutMsHeaders: 100 }), chatReq), 'timeout');
    assert.equal(e.retryable, true);
  });

  test('a refused connection fails with connect', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const call = makeCall({ provider: { name: 'google', adapter: 'gemini', baseUrl: `http://127.0.0.1:${port}` } });
    await rejectsWith(adapter.chat(call, chatReq), 'connect');
  });

  test('our own abort while waiting for headers fails with aborted, which is not retryable', async () => {
    handler = () => {
      /* never answer */
    };
    const ac = new AbortController();
    const p = adapter.chatStream(makeCall({ signal: ac.signal }), chatReq);
    setImmediate(() => ac.abort());
    const e = await rejectsWith(p, 'aborted');
    assert.equal(e.retryable, false);
  });
});

describe('gemini adapter: embeddings', () => {
  test('one string uses :embedContent', async () => {
    handler = json(200, { embedding: { values: [0.1, -0.2, 0.3] } });
    const out = await createGeminiAdapter({ estimateTextTokens: () => 4 }).embeddings?.(makeCall({ upstreamModel: 'gemini-embedding-001' }), {
      model: 'emb',
      input: 'hello world',
      dimensions: 3,
      extra: {},
    });
    const req = seen.at(-1);
    assert.equal(req?.url, '/v1beta/models/gemini-embedding-001:embedContent');
    assert.deepEqual(JSON.parse(req?.body ?? ''), {
      model: 'models/gemini-embedding-001',
      content: { parts: [{ text: 'hello world' }] },
      outputDimensionality: 3,
    });
    assert.deepEqual(out?.data, [[0.1, -0.2, 0.3]]);
    assert.equal(out?.usage.tokensInput, 4); // estimated: Google reports no usage here
  });

  test('several strings use one :batchEmbedContents call and keep input order', async () => {
    handler = json(200, { embeddings: [{ values: [1, 0] }, { values: [0, 1] }] });
    const out = await adapter.embeddings?.(makeCall({ upstreamModel: 'gemini-embedding-001' }), { model: 'emb', input: ['a', 'b'], extra: {} });
    const req = seen.at(-1);
    assert.equal(req?.url, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
    const sent = JSON.parse(req?.body ?? '') as { requests: unknown[] };
    assert.equal(sent.requests.length, 2);
    assert.deepEqual(out?.data, [
      [1, 0],
      [0, 1],
    ]);
  });

  test('a batch answer with the wrong number of vectors is malformed', async () => {
    handler = json(200, { embeddings: [{ values: [1, 0] }] });
    await rejectsWith(adapter.embeddings!(makeCall(), { model: 'emb', input: ['a', 'b'], extra: {} }), 'malformed');
  });
});
