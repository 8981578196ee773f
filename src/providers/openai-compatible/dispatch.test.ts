import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import { Agent } from 'undici';
import type { StreamEvent } from '../../wire/index.ts';
import type { UpstreamCall } from '../types.ts';
import { contentTypeOf } from './dispatch.ts';
import { createOpenAICompatibleAdapter } from './index.ts';
import { chatRequest, rejectsWith, scenarioCall, startScenarioUpstream, testFastPaths, type ScenarioUpstream } from './test-upstream.ts';

/**
 * The adapter's own dispatch handlers (dispatch.ts, dispatch-stream.ts) against a real HTTP server:
 * aborts before and after headers, size limits, broken and stalled bodies, 1xx answers, backpressure,
 * and the connection after [DONE].
 */

const sse = (o: unknown) => `data: ${typeof o === 'string' ? o : JSON.stringify(o)}\n\n`;
const delta = (content: string) =>
  sse({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] });
const finish = sse({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
const usageChunk = sse({
  id: 'c',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'up',
  choices: [],
  usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
});
const chatJson = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'up',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});

/** Per scenario: requests seen, the server sockets' remote ports, and a promise per closed response. */
const hits = new Map<string, number>();
const ports = new Map<string, number[]>();
const closes = new Map<string, Promise<void>>();
/** Scenario → resolve to let a waiting handler go on (set by the test before the request). */
const gates = new Map<string, Promise<void>>();
/** Scenario → resolved once the server handler ran (the request reached the server). */
const arrivals = new Map<string, { promise: Promise<void>; resolve: () => void }>();

function arrival(name: string): Promise<void> {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  arrivals.set(name, { promise, resolve });
  return promise;
}

function gate(name: string): () => void {
  let open!: () => void;
  gates.set(
    name,
    new Promise<void>((r) => {
      open = r;
    }),
  );
  return open;
}

/** Resolves on 'drain', or on 'close' (a client that went away never drains). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Write `piece` until `bytes` are out (or the client went away), honouring backpressure. */
async function writeLots(res: ServerResponse, bytes: number, piece: string): Promise<void> {
  for (let sent = 0; sent < bytes && !res.destroyed; sent += Buffer.byteLength(piece)) {
    if (!res.write(piece)) await drained(res);
  }
}

const BIG_CHUNKS = 3000;
const bigPiece = (i: number) => delta(`piece ${String(i).padStart(4, '0')} ${'x'.repeat(300)}|`);

const scenarios: Record<string, (req: IncomingMessage, res: ServerResponse) => void | Promise<void>> = {
  ok: (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(chatJson);
  },
  hang: () => {
    // never answers
  },
  'partial-body': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"id":');
  },
  'partial-then-drop': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"id":', () => res.socket?.destroy());
  },
  'error-then-drop': (_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '1000' });
    res.write('overloaded', () => res.socket?.destroy());
  },
  large: (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // 100 KiB of JSON, in pieces.
    void writeLots(res, 100 * 1024, ' '.repeat(1024)).then(() => res.end('{}'));
  },
  exact: (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(chatJson);
  },
  'large-error': (_req, res) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    void writeLots(res, 200 * 1024, 'e'.repeat(4096)).then(() => res.end());
  },
  'early-hints': (_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(chatJson);
  },
  'stream-json-charset': (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(chatJson);
  },
  'stream-big': async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (let i = 0; i < BIG_CHUNKS && !res.destroyed; i++) if (!res.write(bigPiece(i))) await drained(res);
    res.end(finish + usageChunk + sse('[DONE]'));
  },
  'stream-endless': async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    // Keeps writing (pushing back when the client stops reading) until the client goes away.
    for (let i = 0; !res.destroyed; i++) {
      if (!res.write(bigPiece(i))) await drained(res);
    }
  },
  'stream-done-then-wait': async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(delta('a') + finish + sse('[DONE]'));
    await gates.get(new URL(req.url ?? '/', 'http://x').pathname.split('/')[1]!);
    res.end(': trailing comment after [DONE]\n\n');
  },
};

let up: ScenarioUpstream;
let port = 0;
let agent: ScenarioUpstream['agent'];

before(async () => {
  up = await startScenarioUpstream(scenarios, (name, req, res) => {
    hits.set(name, (hits.get(name) ?? 0) + 1);
    ports.set(name, [...(ports.get(name) ?? []), req.socket.remotePort ?? 0]);
    closes.set(name, new Promise<void>((r) => res.on('close', () => r())));
    // The handler runs right after this, in the same turn: the request has reached the server.
    queueMicrotask(() => arrivals.get(name)?.resolve());
  });
  ({ port, agent } = up);
});

after(() => up.close());

function call(scenario: string, over: Partial<UpstreamCall> = {}): UpstreamCall {
  return scenarioCall(up, scenario, {}, over);
}

const chatReq = chatRequest;

const adapter = createOpenAICompatibleAdapter({ fastPaths: testFastPaths() });

describe('contentTypeOf (raw undici headers)', () => {
  test('finds content-type in any case, and only when sent once', () => {
    const b = (...xs: string[]) => xs.map((x) => Buffer.from(x));
    assert.equal(contentTypeOf(b('X-Request-Id', 'r1', 'Content-Type', 'application/json; charset=utf-8')), 'application/json; charset=utf-8');
    assert.equal(contentTypeOf(b('content-type', 'text/event-stream')), 'text/event-stream');
    assert.equal(contentTypeOf(['CONTENT-TYPE', 'text/plain']), 'text/plain');
    assert.equal(contentTypeOf(b('x-request-id', 'application/json')), undefined);
    assert.equal(contentTypeOf(b('content_type', 'application/json', 'Content-Typf', 'application/json')), undefined);
    assert.equal(contentTypeOf(b('content-type', 'application/json', 'content-type', 'text/html')), undefined);
    assert.equal(contentTypeOf([]), undefined);
  });
});

describe('non-streaming dispatch', () => {
  test('aborting while the upstream has not answered is aborted, and closes the connection', async () => {
    const arrived = arrival('hang');
    const ac = new AbortController();
    const pending = adapter.chat(call('hang', { signal: ac.signal }), chatReq());
    await arrived;
    ac.abort();
    await rejectsWith(pending, 'aborted');
    await closes.get('hang');
  });

  test('aborting mid-body is aborted, and closes the connection', async () => {
    const arrived = arrival('partial-body');
    const ac = new AbortController();
    const pending = adapter.chat(call('partial-body', { signal: ac.signal }), chatReq());
    await arrived;
    ac.abort();
    const e = await rejectsWith(pending, 'aborted');
    assert.match(e.message, /aborted by the caller/);
    await closes.get('partial-body');
  });

  test('aborting a request still queued for a connection fails it at once, and it is never sent', async () => {
    const one = new Agent({ connections: 1 });
    try {
      const arrived = arrival('hang');
      const blocker = new AbortController();
      const first = adapter.chat(call('hang', { dispatcher: one, signal: blocker.signal }), chatReq());
      await arrived;
      const ac = new AbortController();
      const queued = adapter.chat(call('queued', { dispatcher: one, signal: ac.signal }), chatReq());
      ac.abort();
      await rejectsWith(queued, 'aborted');
      blocker.abort();
      await rejectsWith(first, 'aborted');
      // The next request on that pool goes through; the aborted one, queued before it, never reached the server.
      assert.equal((await adapter.chat(call('ok', { dispatcher: one }), chatReq())).model, 'up');
      assert.equal(hits.get('queued'), undefined);
    } finally {
      await one.close();
    }
  });

  test('a 2xx body larger than responseBytesMax is malformed, and the connection is closed', async () => {
    const small = createOpenAICompatibleAdapter({ fastPaths: testFastPaths(), responseBytesMax: 4096 });
    const e = await rejectsWith(small.chat(call('large'), chatReq()), 'malformed');
    assert.match(e.message, /more than 4096 bytes/);
    await closes.get('large');
  });

  test('a 2xx body of exactly responseBytesMax bytes is read', async () => {
    const exact = createOpenAICompatibleAdapter({ fastPaths: testFastPaths(), responseBytesMax: Buffer.byteLength(chatJson) });
    assert.equal((await exact.chat(call('exact'), chatReq())).content[0]?.type, 'text');
    const under = createOpenAICompatibleAdapter({ fastPaths: testFastPaths(), responseBytesMax: Buffer.byteLength(chatJson) - 1 });
    await rejectsWith(under.chat(call('exact'), chatReq()), 'malformed');
  });

  test('a large error body is cut at 64 KiB and still reported as the status', async () => {
    const e = await rejectsWith(adapter.chat(call('large-error'), chatReq()), 'status', 500);
    assert.equal(e.body?.length, 64 * 1024);
    assert.match(e.body ?? '', /^e+$/);
  });

  test('an error body that breaks off is the status error without a body', async () => {
    const e = await rejectsWith(adapter.chat(call('error-then-drop'), chatReq()), 'status', 503);
    assert.equal(e.body, '');
    assert.match(e.message, /answered 503: \(empty body\)/);
  });

  test('a 2xx body that breaks off is a disconnect; one that stalls is a timeout', async () => {
    await rejectsWith(adapter.chat(call('partial-then-drop'), chatReq()), 'disconnect');
    await rejectsWith(adapter.chat(call('partial-body', { timeoutMsBody: 150 }), chatReq()), 'timeout');
  });

  test('an answer that is not HTTP is malformed, not a connection failure', async () => {
    const raw = createNetServer((socket) => {
      socket.once('data', () => socket.end('SPDY/9 200 fine thanks\r\nno headers here\r\n\r\n'));
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    try {
      const rawPort = (raw.address() as AddressInfo).port;
      const bad = { name: 'fake', adapter: 'openai-compatible' as const, baseUrl: `http://127.0.0.1:${rawPort}/v1` };
      const e = await rejectsWith(adapter.chat(call('unused', { provider: bad }), chatReq()), 'malformed');
      assert.match(e.message, /unparseable HTTP response/);
    } finally {
      raw.close();
    }
  });

  test('1xx informational answers before the real one are skipped', async () => {
    const res = await adapter.chat(call('early-hints'), chatReq());
    assert.deepEqual(res.content, [{ type: 'text', text: 'Hi' }]);
  });
});

describe('streaming dispatch', () => {
  test('a JSON answer to a stream request is detected with any header case and parameters, and bounded', async () => {
    const events: StreamEvent[] = [];
    for await (const ev of (await adapter.chatStream(call('stream-json-charset'), chatReq({ stream: true }))).events) events.push(ev);
    assert.deepEqual(
      events.map((e) => e.type),
      ['start', 'text', 'finish', 'usage'],
    );
    const small = createOpenAICompatibleAdapter({ fastPaths: testFastPaths(), responseBytesMax: 16 });
    await rejectsWith(small.chatStream(call('stream-json-charset'), chatReq({ stream: true })), 'malformed');
  });

  test('a consumer slower than the upstream gets every event in order (backpressure, then resume)', async () => {
    const stream = await adapter.chatStream(call('stream-big'), chatReq({ stream: true }));
    // Let the upstream run ahead: the queue fills past its limit and undici stops reading.
    await new Promise((r) => setTimeout(r, 100));
    const texts: string[] = [];
    const types: string[] = [];
    let batches = 0;
    for await (const batch of stream.batches!) {
      assert.ok(batch.length > 0);
      batches++;
      for (const ev of batch) {
        types.push(ev.type);
        if (ev.type === 'text') texts.push(ev.text);
      }
      await tick();
    }
    assert.equal(texts.length, BIG_CHUNKS);
    assert.equal(texts.join(''), Array.from({ length: BIG_CHUNKS }, (_, i) => `piece ${String(i).padStart(4, '0')} ${'x'.repeat(300)}|`).join(''));
    assert.deepEqual(types.slice(0, 1), ['start']);
    assert.deepEqual(types.slice(-2), ['finish', 'usage']);
    assert.ok(batches > 1);
  });

  test('after [DONE] the stream ends at once; the rest of the body is read in the background and the connection reused', async () => {
    // One connection: the second request waits for it, and gets the same socket only if the first left it pooled.
    const one = new Agent({ connections: 1 });
    try {
      const release = gate('stream-done-then-wait');
      const stream = await adapter.chatStream(call('stream-done-then-wait', { dispatcher: one }), chatReq({ stream: true }));
      const types: string[] = [];
      for await (const ev of stream.events) types.push(ev.type);
      // The server has not ended the response yet: it waits for release().
      assert.deepEqual(types, ['start', 'text', 'finish']);
      release();
      gate('stream-done-then-wait')();
      for await (const ev of (await adapter.chatStream(call('stream-done-then-wait', { dispatcher: one }), chatReq({ stream: true }))).events) void ev;
      const seen = ports.get('stream-done-then-wait')!;
      assert.equal(seen.length, 2);
      assert.equal(seen[0], seen[1], 'the second request should reuse the pooled connection');
    } finally {
      await one.close();
    }
  });

  test('aborting with chunks queued throws aborted at the next pull, not the queued events', async () => {
    const ac = new AbortController();
    const stream = await adapter.chatStream(call('stream-endless', { signal: ac.signal }), chatReq({ stream: true }));
    const it = stream.batches![Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.[0]?.type, 'start');
    await new Promise((r) => setTimeout(r, 50)); // chunks pile up unread
    ac.abort();
    await rejectsWith(it.next(), 'aborted');
    assert.equal((await it.next()).done, true);
    await closes.get('stream-endless');
  });

  test('a consumer that stops while the upstream is held back closes the upstream response', async () => {
    const stream = await adapter.chatStream(call('stream-endless'), chatReq({ stream: true }));
    const it = stream.batches![Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 50)); // the queue fills and undici pauses
    assert.deepEqual(await it.return!(), { done: true, value: undefined });
    await closes.get('stream-endless');
    assert.equal((await it.next()).done, true);
  });

  test('an upstream stream is read per event or per batch, not both', async () => {
    const stream = await adapter.chatStream(call('stream-big'), chatReq({ stream: true }));
    void stream.events;
    assert.throws(() => stream.batches, /either per event or per batch/);
    for await (const ev of stream.events) if (ev.type === 'text') break;
    const other = await adapter.chatStream(call('stream-big'), chatReq({ stream: true }));
    void other.batches;
    assert.throws(() => other.events, /either per event or per batch/);
    await other.batches![Symbol.asyncIterator]().return!();
  });
});
