import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GatewayMetrics } from '../gateway/index.ts';

/** Prometheus metrics (prom-client): requests, latency, time to first token, tokens, upstream errors, open streams. */
export interface Telemetry {
  registry: Registry;
  gateway: GatewayMetrics;
  requestDone(route: string, status: number, latencyS: number): void;
}

export function createTelemetry(opts: { defaultMetrics?: boolean } = {}): Telemetry {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tokengrid_process_' });
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
  return {
    registry,
    requestDone(route, status, latencyS) {
      requests.inc({ route, status: String(status) });
      latency.observe({ route }, latencyS);
    },
    gateway: {
      ttft(model, provider, seconds) { ttft.observe({ model, provider }, seconds); },
      tokens(model, provider, u) {
        if (u.tokensInput) tokens.inc({ model, provider, direction: 'input' }, u.tokensInput);
        if (u.tokensOutput) tokens.inc({ model, provider, direction: 'output' }, u.tokensOutput);
        if (u.tokensCachedInput) tokens.inc({ model, provider, direction: 'cached_input' }, u.tokensCachedInput);
        if (u.tokensReasoning) tokens.inc({ model, provider, direction: 'reasoning' }, u.tokensReasoning);
      },
      upstreamError(provider, kind) { upstreamErrors.inc({ provider, kind }); },
      streamOpened() { openStreams.inc(); },
      streamClosed() { openStreams.dec(); },
    },
  };
}
