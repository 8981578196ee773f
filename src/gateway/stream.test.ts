import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { ManualClock, SeededRandom, ok, type ErrorCode } from '../core/index.ts';
import { buildCatalog } from '../catalog/index.ts';
import { DeploymentHealth } from '../routing/index.ts';
import { UpstreamError, type ProviderAdapter, type UpstreamStream } from '../providers/index.ts';
import { zeroUsage, type ChatRequest, type StreamEvent, type Usage } from '../wire/index.ts';
import { Gateway } from './gateway.ts';
import { RateLimiter } from './limits.ts';
import { noopMetrics, type ChargingPort, type RequestContext, type SettleInput } from './ports.ts';
import { testModel, testProvider } from './test-kit.ts';
import type { StreamSink } from './stream.ts';

const model = testModel;
const provider = testProvider;
const usage: Usage = { ...zeroUsage(), tokensInput: 11, tokensOutput: 60 }; // about what the 12 chunks meter: a report far below would meet the usage floor

/** 12 text events of ~5 tokens each (20 characters), a finish, and the upstream's usage. */
function script(): StreamEvent[] {
  const evs: StreamEvent[] = [{ type: 'start', id: 'up', model: 'up', createdS: 1 }];
  for (let i = 0; i < 12; i++) evs.push({ type: 'text', text: `chunk ${String(i).padStart(2, '0')} of the answer` });
  evs.push({ type: 'finish', finishReason: 'stop' }, { type: 'usage', usage });
  return evs;
}

/** How the fake adapter hands its events over: one by one, or in groups as an upstream read would. */
type Mode = 'events' | 'batches';

function streamOf(evs: StreamEvent[], mode: Mode, failAfter?: number): UpstreamStream {
  const items = failAfter === undefined ? evs : evs.slice(0, failAfter);
  const fail = failAfter !== undefined;
  if (mode === 'events') {
    return {
      events: (async function* () {
        yield* items;
        if (fail) throw new UpstreamError('disconnect', 'cut');
      })(),
    };
  }
  const groups: StreamEvent[][] = [];
  for (let i = 0; i < items.length; i += 4) groups.push(items.slice(i, i + 4));
  return {
    get events(): AsyncIterable<StreamEvent> {
      throw new Error('the gateway must read batches when they are offered');
    },
    batches: (async function* () {
      yield* groups;
      if (fail) throw new UpstreamError('disconnect', 'cut');
    })(),
  };
}

interface Run {
  written: StreamEvent[];
  closed: boolean;
  failed: ErrorCode | undefined;
  settled: SettleInput | undefined;
  extends: number;
}

async function run(mode: Mode, opts: { grant: number; extendTo?: number; final?: boolean; failAfter?: number; events?: StreamEvent[] }): Promise<Run> {
  const out: Run = { written: [], closed: false, failed: undefined, settled: undefined, extends: 0 };
  const charging: ChargingPort = {
    async reserve() {
      return ok({ reservationId: 'rsv_1', tokensOutputGranted: opts.grant, validUntilMs: 0, rateVersion: 'v' });
    },
    async extend() {
      out.extends++;
      return ok({ tokensOutputGranted: opts.extendTo ?? opts.grant, final: opts.final ?? true });
    },
    async settle(i) {
      out.settled = i;
    },
    async void() {},
  };
  const adapter = {
    kind: 'openai-compatible',
    async chat() {
      throw new Error('not used');
    },
    async chatStream() {
      return streamOf(opts.events ?? script(), mode, opts.failAfter);
    },
  } as unknown as ProviderAdapter;
  const clock = new ManualClock();
  const gw = new Gateway({
    catalog: () => buildCatalog('t', [model]),
    providers: () => new Map([['p', provider]]),
    adapters: { 'openai-compatible': adapter, anthropic: adapter, gemini: adapter },
    dispatcher: new Agent(),
    charging,
    health: new DeploymentHealth(clock),
    limiter: new RateLimiter(),
    random: new SeededRandom(1),
    clock,
    now: () => 0,
    metrics: noopMetrics,
    timeoutMsUpstreamHeaders: 1000,
    timeoutMsUpstreamBody: 1000,
  });
  const ctx: RequestContext = {
    requestId: 'req_1',
    family: 'openai',
    signal: new AbortController().signal,
    startedAt: 0,
    key: {
      id: 'key_1',
      accountId: 'acct_1',
      memberId: null,
      name: 'k',
      hash: 'h',
      prefix: 'tg-',
      allowedModels: null,
      expiresAtMs: null,
      revokedAtMs: null,
      limits: {},
      createdAtMs: 0,
    },
  };
  const sink: StreamSink = {
    open() {},
    write(ev) {
      out.written.push(ev);
      return true;
    },
    async drain() {},
    fail(code) {
      out.failed = code;
    },
    close() {
      out.closed = true;
    },
  };
  const req: ChatRequest = {
    model: 'm',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    stream: true,
    includeUsage: true,
    extra: {},
    maxTokensOutput: 1000,
  };
  await gw.chatStream(ctx, req, sink, { extendAtFraction: 0.8, sliceTokens: 100 });
  return out;
}

describe('a stream read per upstream batch behaves exactly like one read per event', () => {
  test('a complete stream: every event delivered, the upstream usage settled and re-emitted once at the end', async () => {
    const a = await run('events', { grant: 1000 });
    const b = await run('batches', { grant: 1000 });
    assert.deepEqual(b, a);
    assert.equal(a.settled?.status, 'ok');
    assert.deepEqual(a.settled?.usage, usage);
    assert.equal(a.written.filter((e) => e.type === 'usage').length, 1);
    assert.deepEqual(a.written.at(-1), { type: 'usage', usage });
    assert.equal(a.closed, true);
  });

  test('a grant that runs out mid-stream cuts both at the same event with finish_reason length', async () => {
    const a = await run('events', { grant: 20, final: true });
    const b = await run('batches', { grant: 20, final: true });
    assert.deepEqual(b, a);
    assert.equal(a.settled?.status, 'truncated');
    const texts = a.written.filter((e) => e.type === 'text').length;
    assert.ok(texts > 0 && texts < 12, `cut inside the answer (${texts} text events)`);
    assert.deepEqual(
      a.written.filter((e) => e.type === 'finish'),
      [{ type: 'finish', finishReason: 'length' }],
    );
    assert.equal(a.settled?.usageEstimated, true);
    assert.ok(a.extends >= 1);
  });

  test('an extension that grants more lets both read on to the end', async () => {
    const a = await run('events', { grant: 20, extendTo: 2000, final: false });
    const b = await run('batches', { grant: 20, extendTo: 2000, final: false });
    assert.deepEqual(b, a);
    assert.equal(a.settled?.status, 'ok');
    assert.equal(a.written.filter((e) => e.type === 'text').length, 12);
  });

  test('an upstream failure after the first byte ends both with the same error frame and charge', async () => {
    const a = await run('events', { grant: 1000, failAfter: 6 });
    const b = await run('batches', { grant: 1000, failAfter: 6 });
    assert.deepEqual(b, a);
    assert.equal(a.failed, 'upstream_error');
    assert.equal(a.settled?.status, 'upstream_error');
    assert.equal(a.closed, false);
  });
});

describe('verbatim Anthropic blocks in a stream count against the grant (issue 12 attack report F1)', () => {
  const blocks = (): StreamEvent[] => [
    { type: 'start', id: 'up', model: 'up', createdS: 1 },
    { type: 'text', text: 'Searching.' },
    { type: 'reasoning', text: '', block: { type: 'server_tool_use', id: 's1', name: 'web_search', input: { query: 'q' } } },
    { type: 'reasoning', text: '', block: { type: 'redacted_thinking', data: 'x'.repeat(1_200) } },
    { type: 'text', text: ' Done.' },
    { type: 'finish', finishReason: 'stop' },
  ];

  test('a redacted-thinking block past the grant is not delivered and the stream ends at the grant', async () => {
    const a = await run('events', { grant: 60, final: true, events: blocks() });
    assert.equal(a.settled?.status, 'truncated');
    assert.equal(
      a.written.some((e) => e.type === 'reasoning' && e.block?.['type'] === 'redacted_thinking'),
      false,
    );
    assert.deepEqual(
      a.written.filter((e) => e.type === 'finish'),
      [{ type: 'finish', finishReason: 'length' }],
    );
  });

  test('blocks within the grant are delivered and metered into the charged output', async () => {
    const a = await run('events', { grant: 1000, events: blocks() });
    assert.equal(a.settled?.status, 'ok');
    assert.ok(a.settled!.usage.tokensOutput >= 200, `charged ${a.settled!.usage.tokensOutput} output tokens for a 1,200-character redacted block`);
  });
});
