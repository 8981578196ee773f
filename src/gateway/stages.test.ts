import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { ManualClock, SeededRandom, TokenGridError, ok } from '../core/index.ts';
import { buildCatalog, type ModelSpec } from '../catalog/index.ts';
import { DeploymentHealth } from '../routing/index.ts';
import { UpstreamError, type ProviderAdapter } from '../providers/index.ts';
import { zeroUsage, type ChatRequest, type ChatResponse, type StreamEvent, type Usage } from '../wire/index.ts';
import { Gateway } from './gateway.ts';
import { RateLimiter } from './limits.ts';
import { noopMetrics, type ChargingPort, type RequestContext, type SettleInput } from './ports.ts';
import { testModel, testProvider } from './test-kit.ts';
import type { FlightView, Stage } from './stages.ts';
import type { StreamSink } from './stream.ts';

const model = testModel;
const provider = testProvider;
const usage: Usage = { ...zeroUsage(), tokensInput: 11, tokensOutput: 7 };
const answer: ChatResponse = {
  id: 'up',
  model: 'up',
  createdS: 1,
  content: [{ type: 'text', text: 'call 13800138000 now' }],
  finishReason: 'stop',
  usage,
} as ChatResponse;

interface World {
  gw: Gateway;
  calls: { reserve: number; upstream: number; voided: number; settled: SettleInput[] };
}

function world(stages: Stage[], upstream: 'ok' | 'fail' | 'fail-first' | 'abort' = 'ok', m: ModelSpec = model, abort?: AbortController): World {
  const calls = { reserve: 0, upstream: 0, voided: 0, settled: [] as SettleInput[] };
  const charging: ChargingPort = {
    async reserve() {
      calls.reserve++;
      return ok({ reservationId: 'rsv_1', tokensOutputGranted: 1000, validUntilMs: 0, rateVersion: 'v' });
    },
    async extend() {
      return ok({ tokensOutputGranted: 1000, final: true });
    },
    async settle(i) {
      calls.settled.push(i);
    },
    async void() {
      calls.voided++;
    },
  };
  const adapter = {
    kind: 'openai-compatible',
    async chat() {
      calls.upstream++;
      if (upstream === 'fail') throw new UpstreamError('status', 'bad', 400);
      if (upstream === 'fail-first' && calls.upstream === 1) throw new UpstreamError('status', 'overloaded', 503);
      if (upstream === 'abort') {
        abort?.abort();
        throw new UpstreamError('aborted', 'client disconnected');
      }
      return { ...answer };
    },
    async chatStream() {
      calls.upstream++;
      const evs: StreamEvent[] = [
        { type: 'start', id: 'up', model: 'up', createdS: 1 },
        { type: 'text', text: 'call 13800138000 now' },
        { type: 'finish', finishReason: 'stop' },
        { type: 'usage', usage },
      ];
      return {
        events: (async function* () {
          yield* evs;
        })(),
      };
    },
  } as unknown as ProviderAdapter;
  const clock = new ManualClock();
  const gw = new Gateway({
    catalog: () => buildCatalog('t', [m]),
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
    stages,
  });
  return { gw, calls };
}

const ctx = (abort = new AbortController()): RequestContext => ({
  requestId: 'req_1',
  family: 'openai',
  signal: abort.signal,
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
});
const req = (stream: boolean): ChatRequest => ({
  model: 'm',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  stream,
  includeUsage: true,
  extra: {},
});
const redact = (s: string): string => s.replace(/1\d{10}/g, '[phone]');

describe('pipeline stages plug into the one lifecycle', () => {
  test('a beforeAdmit stage that refuses stops the request before anything is reserved or sent', async () => {
    const w = world([
      {
        name: 'guard',
        beforeAdmit() {
          throw new TokenGridError('invalid_request', 'refused by policy');
        },
      },
    ]);
    await assert.rejects(w.gw.chat(ctx(), req(false)), /refused by policy/);
    assert.deepEqual([w.calls.reserve, w.calls.upstream, w.calls.voided, w.calls.settled.length], [0, 0, 0, 0]);
  });

  test('a beforeDispatch stage that refuses after the reservation has the hold released, nothing charged', async () => {
    const w = world([
      {
        name: 'qos',
        beforeDispatch(f: FlightView) {
          assert.equal(f.model?.id, 'm');
          throw new TokenGridError('rate_limited', 'queue full');
        },
      },
    ]);
    await assert.rejects(w.gw.chat(ctx(), req(false)), /queue full/);
    assert.deepEqual([w.calls.reserve, w.calls.upstream, w.calls.voided, w.calls.settled.length], [1, 0, 1, 0]);
  });

  test('a failed upstream releases the hold in the same place for every operation', async () => {
    const w = world([], 'fail');
    await assert.rejects(w.gw.chat(ctx(), req(false)));
    assert.deepEqual([w.calls.voided, w.calls.settled.length], [1, 0]);
  });

  test('onAnswer and onEvent rewrite output before it is metered and delivered; afterSettle sees the final usage', async () => {
    const seen: (Usage | undefined)[] = [];
    const stages: Stage[] = [
      {
        name: 'pii',
        onAnswer(_f, res) {
          const r = res as ChatResponse;
          return { ...r, content: r.content.map((p) => (p.type === 'text' ? { ...p, text: redact(p.text) } : p)) };
        },
        onEvent(_f, ev) {
          return ev.type === 'text' ? { ...ev, text: redact(ev.text) } : ev;
        },
        afterSettle(f) {
          seen.push(f.usage);
        },
      },
    ];
    const w = world(stages);
    const { response } = await w.gw.chat(ctx(), req(false));
    assert.deepEqual(response.content, [{ type: 'text', text: 'call [phone] now' }]);

    const written: StreamEvent[] = [];
    const sink: StreamSink = {
      open() {},
      write(ev) {
        written.push(ev);
        return true;
      },
      async drain() {},
      fail() {},
      close() {},
    };
    await w.gw.chatStream(ctx(), req(true), sink);
    assert.deepEqual(
      written.filter((e) => e.type === 'text'),
      [{ type: 'text', text: 'call [phone] now' }],
    );
    assert.deepEqual(seen, [usage, usage]);
    assert.equal(w.calls.settled.length, 2);
  });

  test('a beforeAdmit stage may replace the request before it is estimated and sent (compression)', async () => {
    let sent: ChatRequest | undefined;
    const w = world([
      {
        name: 'compress',
        beforeAdmit(f) {
          f.req = { ...(f.req as ChatRequest), messages: [{ role: 'user', content: [{ type: 'text', text: 'short' }] }] };
        },
      },
    ]);
    const adapter = w.gw.deps.adapters['openai-compatible'];
    const chat = adapter.chat.bind(adapter);
    (adapter as { chat: typeof chat }).chat = (u, r) => {
      sent = r;
      return chat(u, r);
    };
    await w.gw.chat(ctx(), req(false));
    assert.deepEqual(sent?.messages, [{ role: 'user', content: [{ type: 'text', text: 'short' }] }]);
  });

  test('an onEvent stage may drop an event: it is neither delivered nor metered', async () => {
    const w = world([
      {
        name: 'drop-text',
        onEvent(_f, ev) {
          return ev.type === 'text' ? null : ev;
        },
      },
    ]);
    const written: StreamEvent[] = [];
    const sink: StreamSink = {
      open() {},
      write(ev) {
        written.push(ev);
        return true;
      },
      async drain() {},
      fail() {},
      close() {},
    };
    await w.gw.chatStream(ctx(), req(true), sink);
    assert.equal(written.filter((e) => e.type === 'text').length, 0);
    assert.equal(w.calls.settled[0]?.status, 'ok');
  });

  test('an onEvent stage may hold text back and emit it with the next event, in order; later stages see each event once', async () => {
    let held = '';
    const seenByNext: string[] = [];
    const w = world([
      {
        name: 'hold',
        onEvent(_f, ev) {
          if (ev.type === 'text') {
            held += ev.text;
            return null;
          }
          if (held === '') return ev;
          const text = held;
          held = '';
          return [{ type: 'text', text }, ev];
        },
      },
      {
        name: 'next',
        onEvent(_f, ev) {
          seenByNext.push(ev.type);
          return ev.type === 'text' ? { ...ev, text: redact(ev.text) } : ev;
        },
      },
    ]);
    const written: StreamEvent[] = [];
    const sink: StreamSink = {
      open() {},
      write(ev) {
        written.push(ev);
        return true;
      },
      async drain() {},
      fail() {},
      close() {},
    };
    await w.gw.chatStream(ctx(), req(true), sink);
    assert.deepEqual(
      written.map((e) => e.type),
      ['start', 'text', 'finish', 'usage'],
    );
    assert.deepEqual(written[1], { type: 'text', text: 'call [phone] now' });
    assert.deepEqual(seenByNext, ['start', 'text', 'finish', 'usage']);
    assert.equal(w.calls.settled[0]?.status, 'ok');
  });

  describe('onEnd runs exactly once on every path, after the hold is settled or released', () => {
    const counting = (): { stage: Stage; ends: { status: string; settled: boolean; attempts: number }[] } => {
      const ends: { status: string; settled: boolean; attempts: number }[] = [];
      return { ends, stage: { name: 'end', onEnd: (f) => ends.push({ status: f.status, settled: f.usage !== undefined, attempts: f.attempts.length }) } };
    };
    const sink = (): StreamSink => ({
      open() {},
      write: () => true,
      async drain() {},
      fail() {},
      close() {},
    });

    test('answered (non-streamed and streamed)', async () => {
      const c = counting();
      const w = world([c.stage]);
      await w.gw.chat(ctx(), req(false));
      await w.gw.chatStream(ctx(), req(true), sink());
      assert.deepEqual(c.ends, [
        { status: 'ok', settled: true, attempts: 1 },
        { status: 'ok', settled: true, attempts: 1 },
      ]);
    });

    test('refused by a beforeAdmit or beforeDispatch stage, and by admission itself', async () => {
      const c = counting();
      const refuse = (where: 'beforeAdmit' | 'beforeDispatch'): Stage => ({
        name: where,
        [where]() {
          throw new TokenGridError('rate_limited', `no (${where})`);
        },
      });
      await assert.rejects(world([refuse('beforeAdmit'), c.stage]).gw.chat(ctx(), req(false)), /no \(beforeAdmit\)/);
      const w = world([refuse('beforeDispatch'), c.stage]);
      await assert.rejects(w.gw.chat(ctx(), req(false)), /no \(beforeDispatch\)/);
      assert.equal(w.calls.voided, 1, 'released before onEnd');
      await assert.rejects(world([c.stage]).gw.chat(ctx(), { ...req(false), model: 'nope' }), /nope/);
      assert.equal(c.ends.length, 3);
    });

    test('a failed upstream, a client gone mid-call, and a retry to the next deployment', async () => {
      const c = counting();
      await assert.rejects(world([c.stage], 'fail').gw.chat(ctx(), req(false)));
      const abort = new AbortController();
      const gone = world([c.stage], 'abort', model, abort);
      await assert.rejects(gone.gw.chat(ctx(abort), req(false)));
      assert.equal(gone.calls.settled[0]?.status, 'client_aborted');
      const two: ModelSpec = {
        ...model,
        attemptsMax: 2,
        deployments: [
          { id: 'p/up@r', provider: 'p', upstreamModel: 'up', region: 'r', weight: 1 },
          { id: 'p/up2@r', provider: 'p', upstreamModel: 'up2', region: 'r', weight: 1 },
        ],
      };
      const retried = world([c.stage], 'fail-first', two);
      await retried.gw.chat(ctx(), req(false));
      assert.equal(retried.calls.upstream, 2);
      assert.deepEqual(
        c.ends.map((e) => e.status),
        ['ok', 'client_aborted', 'ok'],
      );
      assert.deepEqual(
        c.ends.map((e) => e.attempts),
        [1, 1, 2],
      );
    });
  });

  test('a beforeDispatch stage may answer a whole request itself: no upstream call, metered and settled at its charge ratio, vendor cost 0', async () => {
    const cached: ChatResponse = { ...answer, content: [{ type: 'text', text: 'from the cache' }] };
    let after: FlightView | undefined;
    const w = world([
      {
        name: 'cache',
        beforeDispatch(f) {
          f.serving = { cache: 'hit', savings: { cache: 99 } };
          return { kind: 'answer', answer: cached, source: 'cache', chargeRatio: { num: 1, den: 10 } };
        },
        afterSettle(f) {
          after = f;
        },
      },
      {
        name: 'never',
        beforeDispatch() {
          throw new Error('a later stage must not run once one answered');
        },
      },
    ]);
    const { response } = await w.gw.chat(ctx(), req(false));
    assert.deepEqual(response.content, [{ type: 'text', text: 'from the cache' }]);
    assert.deepEqual([w.calls.reserve, w.calls.upstream, w.calls.voided, w.calls.settled.length], [1, 0, 0, 1]);
    const s = w.calls.settled[0]!;
    assert.deepEqual(
      [s.provider, s.vendorCostMicros, s.chargeRatio, s.usage, s.serving],
      ['cache', 0, { num: 1, den: 10 }, usage, { cache: 'hit', savings: { cache: 99 } }],
    );
    assert.equal(after?.usage, usage);
  });

  test('a beforeDispatch stage may answer a stream with events replayed through the meter and the sink', async () => {
    const events: StreamEvent[] = [
      { type: 'start', id: 'c', model: 'up', createdS: 1 },
      { type: 'text', text: 'cached ' },
      { type: 'text', text: 'words' },
      { type: 'finish', finishReason: 'stop' },
      { type: 'usage', usage },
    ];
    const w = world([
      {
        name: 'cache',
        beforeDispatch() {
          return { kind: 'events', events, source: 'cache', chargeRatio: { num: 0, den: 1 } };
        },
      },
    ]);
    const written: StreamEvent[] = [];
    let closed = false;
    const sink: StreamSink = {
      open() {},
      write(ev) {
        written.push(ev);
        return true;
      },
      async drain() {},
      fail() {},
      close() {
        closed = true;
      },
    };
    await w.gw.chatStream(ctx(), req(true), sink);
    assert.deepEqual(
      written.map((e) => (e.type === 'text' ? e.text : e.type)),
      ['start', 'cached ', 'words', 'finish', 'usage'],
    );
    assert.ok(closed);
    assert.deepEqual([w.calls.upstream, w.calls.voided, w.calls.settled.length], [0, 0, 1]);
    assert.deepEqual([w.calls.settled[0]!.status, w.calls.settled[0]!.vendorCostMicros, w.calls.settled[0]!.usage], ['ok', 0, usage]);
  });

  test('a stage answer of the wrong kind is refused and its hold released', async () => {
    const w = world([{ name: 'bad', beforeDispatch: () => ({ kind: 'answer', answer, source: 'cache' }) }]);
    const sink: StreamSink = { open() {}, write: () => true, async drain() {}, fail() {}, close() {} };
    await assert.rejects(w.gw.chatStream(ctx(), req(true), sink), /wrong kind/);
    assert.deepEqual([w.calls.upstream, w.calls.voided, w.calls.settled.length], [0, 1, 0]);
  });

  test('cached input tokens an upstream reports put the vendor prompt cache saving on the usage record', async () => {
    const priced: ModelSpec = {
      ...model,
      cost: { currency: 'CNY', inputMicrosPerMillion: 2_000_000, outputMicrosPerMillion: 8_000_000, cachedInputMicrosPerMillion: 500_000 },
    };
    const w = world([]);
    (w.gw.deps as { catalog: () => ReturnType<typeof buildCatalog> }).catalog = () => buildCatalog('t', [priced]);
    const adapter = w.gw.deps.adapters['openai-compatible'];
    (adapter as { chat: unknown }).chat = async () => ({ ...answer, usage: { ...zeroUsage(), tokensInput: 2000, tokensCachedInput: 1500, tokensOutput: 10 } });
    await w.gw.chat(ctx(), req(false));
    const s = w.calls.settled[0]!;
    // uncached: 2000 x 2 + 10 x 8 = 4,080 micros; with 1,500 cached: 500 x 2 + 1500 x 0.5 + 80 = 1,830
    assert.deepEqual([s.vendorCostMicros, s.serving], [1830, { savings: { prompt_cache: 2250 } }]);
  });
});
