import type { ApiKeyRecord, KeyLimits } from '../accounts/index.ts';
import type { ServingNote, Usage } from '../wire/index.ts';
import type { ModelMap, ModelSpec } from '../catalog/index.ts';
import type { Result } from '../core/index.ts';
import type { CallSignal } from '../providers/index.ts';

export type { CallSignal };

/** The charging engine as the gateway sees it (implemented by src/charging). */
export interface ChargingPort {
  reserve(i: {
    requestId: string;
    accountId: string;
    memberId: string | null;
    keyId: string;
    model: string;
    tokensInputEstimate: number;
    tokensOutputMax: number;
    stream: boolean;
    tokensOutputAsk?: number;
  }): Promise<Result<{ reservationId: string; tokensOutputGranted: number; validUntilMs: number; rateVersion: string }, string>>;
  extend(i: { reservationId: string; tokensOutputMore: number }): Promise<Result<{ tokensOutputGranted: number; final: boolean }, string>>;
  /** Returns the usage record (its leakCoins: what no bucket could pay). */
  settle(i: SettleInput): Promise<{ leakCoins?: number } | void>;
  void(reservationId: string): Promise<void>;
}

export type RequestStatus = 'ok' | 'upstream_error' | 'client_aborted' | 'timeout' | 'truncated';

export interface SettleInput {
  reservationId: string;
  requestId: string;
  usage: Usage;
  usageEstimated: boolean;
  status: RequestStatus;
  provider: string;
  upstreamModel: string;
  region: string;
  deploymentId: string;
  latencyMs: number;
  ttftMs: number | null;
  vendorCostMicros?: number;
  /** The client's x-request-id (a label on the usage record). */
  clientRequestId?: string;
  /** What the stages did (issue 17): stored on the usage record as is. */
  serving?: ServingNote;
  /** Charge this fraction of the rated cost (a cache hit, issue 17 item 4); absent: the whole cost. */
  chargeRatio?: { num: number; den: number };
}

/** Metrics the gateway reports (implemented by src/telemetry with prom-client). */
export interface GatewayMetrics {
  ttft(model: string, provider: string, seconds: number): void;
  tokens(model: string, provider: string, usage: Usage): void;
  upstreamError(provider: string, kind: string): void;
  streamOpened(): void;
  streamClosed(): void;
  /** Coins delivered that no bucket could pay (a usage record with leakCoins > 0). */
  leak?(model: string, coins: number): void;
  /** A reported usage raised to the gateway's floor (issue 12 F8): direction 'input', 'output' or 'input+output'. */
  usageFloored?(model: string, direction: string): void;
  /** Server-tool requests an upstream billed per request (web search), not priced by the rate table. */
  serverToolRequests?(model: string, provider: string, n: number): void;
}

export const noopMetrics: GatewayMetrics = {
  ttft() {},
  tokens() {},
  upstreamError() {},
  streamOpened() {},
  streamClosed() {},
};

export type ApiFamily = 'openai' | 'anthropic';

/** One inbound request as the gateway sees it: who, which API family, and the client's abort signal. */
export interface RequestContext {
  /** The server's own id: the charging identity (reservation and usage record). */
  requestId: string;
  /** The client's x-request-id, a correlation label only (echoed, logged, stored on the usage record). */
  clientRequestId?: string;
  family: ApiFamily;
  key: ApiKeyRecord;
  /** Aborted when the client disconnects (an AbortSignal, or the shell's lighter ClientSignal). */
  signal: CallSignal;
  /** Monotonic ms (performance.now()) when the request arrived. */
  startedAt: number;
  /** Limits of the account's plan, shared by all its keys (the key's own limits apply too). */
  accountLimits?: KeyLimits;
  /** The account's package model mapping (its plan offer's modelMap), applied when resolving the model. */
  modelMap?: ModelMap;
  /**
   * What the account's allowance still pays for (models and groups of its buckets with something left;
   * undefined: everything, e.g. a bucket for all models); read only by `model: "auto"`.
   */
  packageModels?: readonly string[];
  /** The response, for headers a stage adds before the head is written (`x-tokengrid-route`). */
  res?: { setHeader(name: string, value: string): unknown; readonly headersSent: boolean };
  /** The model `auto` chose for this request, kept so the shell's early resolve and the admission agree. */
  /** `model: "auto"`'s choice; `baseline` is what `auto:best` would have taken (the routing saving's reference). */
  autoRoute?: { requested: string; model: ModelSpec; route: string; baseline: ModelSpec };
  /** The account has the security protection pack (feature `security_pack`): the guardrail stage applies. */
  guardrails?: true;
  /** The account's QoS class (its package's `qos` entitlement); absent: standard. Read by the QoS stage. */
  qos?: 'priority' | 'standard' | 'best_effort';
  /** Data residency: the only regions this request may be served in (routing never leaves them); absent: anywhere. */
  regions?: readonly string[];
  /** The client's `x-tokengrid-cache` header: `on` opts a non-deterministic request into the response cache, `off` bypasses it. */
  cache?: 'on' | 'off';
  /**
   * Context compression applies (issue 17 item 6): `x-tokengrid-compress: on`, or the account's add-on feature
   * `context_compression` without `x-tokengrid-compress: off`.
   */
  compress?: true;
}
