import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { LocalCounter, LocalHistogram } from './local-metrics.ts';
import { createTelemetry } from './metrics.ts';

const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1];

/** The same operations on prom-client's metrics and on ours, in two registries. */
function pair(): { prom: Registry; local: Registry; ops: { inc(route: string, status: string, v?: number): void; observe(route: string, v: number): void } } {
  const prom = new Registry();
  const local = new Registry();
  const pc = new Counter({ name: 't_requests_total', help: 'requests "quoted" \\ help', labelNames: ['route', 'status'], registers: [prom] });
  const ph = new Histogram({ name: 't_latency_seconds', help: 'latency', labelNames: ['route'], buckets: BUCKETS, registers: [prom] });
  const lc = new LocalCounter({ name: 't_requests_total', help: 'requests "quoted" \\ help', registers: [local] });
  const lh = new LocalHistogram({ name: 't_latency_seconds', help: 'latency', buckets: BUCKETS, registers: [local] });
  const counterCells = new Map<string, ReturnType<LocalCounter['cell']>>();
  const histCells = new Map<string, ReturnType<LocalHistogram['cell']>>();
  return {
    prom,
    local,
    ops: {
      inc(route, status, v) {
        pc.inc({ route, status }, v);
        const k = `${route} ${status}`;
        if (!counterCells.has(k)) counterCells.set(k, lc.cell({ route, status }));
        counterCells.get(k)!.inc(v);
      },
      observe(route, v) {
        ph.observe({ route }, v);
        if (!histCells.has(route)) histCells.set(route, lh.cell({ route }));
        histCells.get(route)!.observe(v);
      },
    },
  };
}

test('local counters and histograms render exactly as prom-client renders the same observations', async () => {
  const { prom, local, ops } = pair();
  assert.equal(await local.metrics(), await prom.metrics(), 'before any observation');
  // Label sets appear in order of first use; values on and between bucket bounds, beyond the last one, zero.
  const latencies = [0.0004, 0.001, 0.003, 0.05, 0.7, 1, 12, 0, 0.0099];
  latencies.forEach((v, i) => {
    ops.observe(i % 3 === 0 ? '/v1/messages' : '/v1/chat/completions', v);
    ops.inc(i % 2 === 0 ? '/v1/chat/completions' : '/a"b\\c\nd', String(200 + (i % 3)), i === 4 ? 17 : undefined);
  });
  assert.equal(await local.metrics(), await prom.metrics());
  assert.deepEqual(await local.getMetricsAsJSON(), await prom.getMetricsAsJSON());

  prom.resetMetrics();
  local.resetMetrics();
  assert.equal(await local.metrics(), await prom.metrics(), 'after reset');
  ops.inc('/v1/models', '200');
  ops.observe('/v1/chat/completions', 0.02);
  assert.equal(await local.metrics(), await prom.metrics(), 'label sets come back in their new order after reset');
});

test('bad values fail as in prom-client', () => {
  const r = new Registry();
  const c = new LocalCounter({ name: 'c_total', help: 'c', registers: [r] }).cell({ a: 'x' });
  const h = new LocalHistogram({ name: 'h', help: 'h', buckets: BUCKETS, registers: [r] }).cell({ a: 'x' });
  assert.throws(() => c.inc(-1), /not possible to decrease/);
  assert.throws(() => c.inc(Number.NaN), TypeError);
  assert.throws(() => h.observe(Number.POSITIVE_INFINITY), TypeError);
});

test('telemetry: requests, latency, ttft, tokens and open streams in the metrics text', async () => {
  const t = createTelemetry({ defaultMetrics: false });
  t.requestDone('/v1/chat/completions', 200, 0.004);
  t.requestDone('/v1/chat/completions', 200, 0.2);
  t.requestDone('/v1/chat/completions', 429, 0.0005);
  t.gateway.ttft('m', 'p', 0.03);
  t.gateway.tokens('m', 'p', { tokensInput: 10, tokensOutput: 5, tokensCachedInput: 0, tokensReasoning: 0, tokensCacheWrite: 0 });
  t.gateway.tokens('m', 'p', { tokensInput: 1, tokensOutput: 2, tokensCachedInput: 3, tokensReasoning: 0, tokensCacheWrite: 0 });
  t.gateway.streamOpened();
  t.gateway.streamOpened();
  t.gateway.streamClosed();
  const text = await t.registry.metrics();
  assert.match(text, /^tokengrid_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} 2$/m);
  assert.match(text, /^tokengrid_http_requests_total\{route="\/v1\/chat\/completions",status="429"\} 1$/m);
  assert.match(text, /^tokengrid_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/chat\/completions"\} 2$/m);
  assert.match(text, /^tokengrid_http_request_duration_seconds_count\{route="\/v1\/chat\/completions"\} 3$/m);
  assert.match(text, /^tokengrid_time_to_first_token_seconds_bucket\{le="0.05",model="m",provider="p"\} 1$/m);
  assert.match(text, /^tokengrid_tokens_total\{model="m",provider="p",direction="input"\} 11$/m);
  assert.match(text, /^tokengrid_tokens_total\{model="m",provider="p",direction="output"\} 7$/m);
  assert.match(text, /^tokengrid_tokens_total\{model="m",provider="p",direction="cached_input"\} 3$/m);
  assert.doesNotMatch(text, /direction="reasoning"/, 'a direction never counted is not listed');
  assert.match(text, /^tokengrid_open_streams 1$/m);
});
