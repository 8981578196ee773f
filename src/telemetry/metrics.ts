import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { LocalCounter, LocalHistogram, type CounterCell, type HistogramCell } from './local-metrics.ts';
import type { GatewayMetrics } from '../gateway/index.ts';

/** Prometheus metrics (prom-client): requests, latency, time to first token, tokens, upstream errors, open streams. */
export interface Telemetry {
  registry: Registry;
  gateway: GatewayMetrics;
  requestDone(route: string, status: number, latencyS: number): void;
  /** A request that matched no route; the label is the method (unusual methods count as "other"). */
  unknownRoute(method: string): void;
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

interface TokenCells {
  input: CounterCell;
  output: CounterCell;
  cachedInput: CounterCell;
  reasoning: CounterCell;
}

/** The inner map of a two-level map (label values as keys: no key string is built per lookup). */
function inner<K1, K2, V>(m: Map<K1, Map<K2, V>>, a: K1): Map<K2, V> {
  let i = m.get(a);
  if (i === undefined) m.set(a, (i = new Map()));
  return i;
}

/** Sampling interval of the event-loop delay metric. */
export const EVENT_LOOP_SAMPLE_MS = 100;

export function createTelemetry(opts: { defaultMetrics?: boolean } = {}): Telemetry {
  const registry = new Registry();
  // The event-loop delay monitor samples with a libuv timer; prom-client's default 10 ms wakes an idle gateway
  // 100 times a second (on this VM each wake-up of an idle process costs ~100 us of CPU, and under paced streams it
  // was about half a wake-up per chunk). 100 ms still catches every stall of 100 ms or more.
  if (opts.defaultMetrics !== false)
    collectDefaultMetrics({ register: registry, prefix: 'tokengrid_process_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  // The per-request metrics count in plain numbers (local-metrics.ts); their label cells are looked up in maps
  // keyed by the label values, so a request builds no string and hashes no labels.
  const requests = new LocalCounter({ name: 'tokengrid_http_requests_total', help: 'HTTP requests by route and status', registers: [registry] });
  const latency = new LocalHistogram({
    name: 'tokengrid_http_request_duration_seconds',
    help: 'Whole-request latency by route',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [registry],
  });
  const ttft = new LocalHistogram({
    name: 'tokengrid_time_to_first_token_seconds',
    help: 'Time from request arrival to the first streamed event',
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  });
  const tokens = new LocalCounter({ name: 'tokengrid_tokens_total', help: 'Tokens by model, provider and direction', registers: [registry] });
  const upstreamErrors = new Counter({
    name: 'tokengrid_upstream_errors_total',
    help: 'Failed upstream attempts by provider and kind',
    labelNames: ['provider', 'kind'],
    registers: [registry],
  });
  const leak = new Counter({
    name: 'tokengrid_charging_leak_coins_total',
    help: 'Token coins delivered that no bucket could pay (upstream over-delivery or an input under-estimate), by model',
    labelNames: ['model'],
    registers: [registry],
  });
  const usageFloored = new Counter({
    name: 'tokengrid_usage_floored_total',
    help: 'Usage records where the upstream-reported usage was below the gateway floor and was raised (issue 12 F8), by model and direction',
    labelNames: ['model', 'direction'],
    registers: [registry],
  });
  const serverTools = new Counter({
    name: 'tokengrid_server_tool_requests_total',
    help: 'Server-tool requests (Anthropic web search) upstreams billed per request, not priced by the rate table, by model and provider',
    labelNames: ['model', 'provider'],
    registers: [registry],
  });
  const leakRequests = new Counter({
    name: 'tokengrid_charging_leak_requests_total',
    help: 'Requests whose usage record has leakCoins > 0, by model',
    labelNames: ['model'],
    registers: [registry],
  });
  const unknownRoutes = new Counter({
    name: 'tokengrid_unknown_routes_total',
    help: 'Requests that matched no route, by method',
    labelNames: ['method'],
    registers: [registry],
  });
  let streamsOpen = 0;
  new Gauge({
    name: 'tokengrid_open_streams',
    help: 'Streams currently open to clients',
    registers: [registry],
    collect() {
      this.set(streamsOpen);
    },
  });
  const requestsBy = new Map<string, Map<number, CounterCell>>();
  const latencyBy = new Map<string, HistogramCell>();
  const ttftBy = new Map<string, Map<string, HistogramCell>>();
  const tokensBy = new Map<string, Map<string, TokenCells>>();
  return {
    registry,
    unknownRoute(method) {
      unknownRoutes.inc({ method: KNOWN_METHODS.has(method) ? method : 'other' });
    },
    requestDone(route, status, latencyS) {
      const byStatus = inner(requestsBy, route);
      let r = byStatus.get(status);
      if (r === undefined) byStatus.set(status, (r = requests.cell({ route, status: String(status) })));
      r.inc();
      let l = latencyBy.get(route);
      if (l === undefined) latencyBy.set(route, (l = latency.cell({ route })));
      l.observe(latencyS);
    },
    gateway: {
      ttft(model, provider, seconds) {
        const byProvider = inner(ttftBy, model);
        let h = byProvider.get(provider);
        if (h === undefined) byProvider.set(provider, (h = ttft.cell({ model, provider })));
        h.observe(seconds);
      },
      tokens(model, provider, u) {
        const byProvider = inner(tokensBy, model);
        let c = byProvider.get(provider);
        if (c === undefined) {
          c = {
            input: tokens.cell({ model, provider, direction: 'input' }),
            output: tokens.cell({ model, provider, direction: 'output' }),
            cachedInput: tokens.cell({ model, provider, direction: 'cached_input' }),
            reasoning: tokens.cell({ model, provider, direction: 'reasoning' }),
          };
          byProvider.set(provider, c);
        }
        if (u.tokensInput) c.input.inc(u.tokensInput);
        if (u.tokensOutput) c.output.inc(u.tokensOutput);
        if (u.tokensCachedInput) c.cachedInput.inc(u.tokensCachedInput);
        if (u.tokensReasoning) c.reasoning.inc(u.tokensReasoning);
      },
      upstreamError(provider, kind) {
        upstreamErrors.inc({ provider, kind });
      },
      leak(model, coins) {
        leak.inc({ model }, coins);
        leakRequests.inc({ model });
      },
      usageFloored(model, direction) {
        usageFloored.inc({ model, direction });
      },
      serverToolRequests(model, provider, n) {
        serverTools.inc({ model, provider }, n);
      },
      streamOpened() {
        streamsOpen++;
      },
      streamClosed() {
        streamsOpen--;
      },
    },
  };
}
