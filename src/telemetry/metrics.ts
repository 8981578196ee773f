import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GatewayMetrics } from '../gateway/index.ts';

/** Prometheus metrics (prom-client): requests, latency, time to first token, tokens, upstream errors, open streams. */
export interface Telemetry {
  registry: Registry;
  gateway: GatewayMetrics;
  requestDone(route: string, status: number, latencyS: number): void;
}

interface TokenChildren {
  input: { inc(v: number): void };
  output: { inc(v: number): void };
  cachedInput: { inc(v: number): void };
  reasoning: { inc(v: number): void };
}

/** Sampling interval of the event-loop delay metric. */
export const EVENT_LOOP_SAMPLE_MS = 100;

export function createTelemetry(opts: { defaultMetrics?: boolean } = {}): Telemetry {
  const registry = new Registry();
  // The event-loop delay monitor samples with a libuv timer; prom-client's default 10 ms wakes an idle gateway
  // 100 times a second (on this VM each wake-up of an idle process costs ~100 us of CPU, and under paced streams it
  // was about half a wake-up per chunk). 100 ms still catches every stall of 100 ms or more.
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tokengrid_process_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const requests = new Counter({ name: 'tokengrid_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'tokengrid_http_request_duration_seconds', help: 'Whole-request latency by route', labelNames: ['route'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300], registers: [registry],
  });
  const ttft = new Histogram({
    name: 'tokengrid_time_to_first_token_seconds', help: 'Time from request arrival to the first streamed event', labelNames: ['model', 'provider'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: [registry],
  });
  const tokens = new Counter({ name: 'tokengrid_tokens_total', help: 'Tokens by model, provider and direction', labelNames: ['model', 'provider', 'direction'], registers: [registry] });
  const upstreamErrors = new Counter({ name: 'tokengrid_upstream_errors_total', help: 'Failed upstream attempts by provider and kind', labelNames: ['provider', 'kind'], registers: [registry] });
  const openStreams = new Gauge({ name: 'tokengrid_open_streams', help: 'Streams currently open to clients', registers: [registry] });
  // Label children are looked up once per label set (prom-client hashes the label object on every call otherwise).
  const requestsByKey = new Map<string, { inc(): void }>();
  const latencyByRoute = new Map<string, { observe(v: number): void }>();
  const ttftByKey = new Map<string, { observe(v: number): void }>();
  const tokensByKey = new Map<string, TokenChildren>();
  const tokenChildren = (model: string, provider: string): TokenChildren => {
    const key = `${model}\u0000${provider}`;
    let c = tokensByKey.get(key);
    if (c === undefined) {
      c = {
        input: tokens.labels({ model, provider, direction: 'input' }),
        output: tokens.labels({ model, provider, direction: 'output' }),
        cachedInput: tokens.labels({ model, provider, direction: 'cached_input' }),
        reasoning: tokens.labels({ model, provider, direction: 'reasoning' }),
      };
      tokensByKey.set(key, c);
    }
    return c;
  };
  return {
    registry,
    requestDone(route, status, latencyS) {
      const key = `${route}\u0000${status}`;
      let r = requestsByKey.get(key);
      if (r === undefined) requestsByKey.set(key, (r = requests.labels({ route, status: String(status) })));
      r.inc();
      let l = latencyByRoute.get(route);
      if (l === undefined) latencyByRoute.set(route, (l = latency.labels({ route })));
      l.observe(latencyS);
    },
    gateway: {
      ttft(model, provider, seconds) {
        const key = `${model}\u0000${provider}`;
        let h = ttftByKey.get(key);
        if (h === undefined) ttftByKey.set(key, (h = ttft.labels({ model, provider })));
        h.observe(seconds);
      },
      tokens(model, provider, u) {
        const c = tokenChildren(model, provider);
        if (u.tokensInput) c.input.inc(u.tokensInput);
        if (u.tokensOutput) c.output.inc(u.tokensOutput);
        if (u.tokensCachedInput) c.cachedInput.inc(u.tokensCachedInput);
        if (u.tokensReasoning) c.reasoning.inc(u.tokensReasoning);
      },
      upstreamError(provider, kind) { upstreamErrors.inc({ provider, kind }); },
      streamOpened() { openStreams.inc(); },
      streamClosed() { openStreams.dec(); },
    },
  };
}
