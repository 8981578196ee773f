import { TokenGridError, type Clock, type Random } from '../core/index.ts';
import type { KeyLimits } from '../accounts/index.ts';
import { isModelAllowed, resolveModel, vendorCostMicros, type Deployment, type ModelCatalog, type ModelSpec } from '../catalog/index.ts';
import { planAttempts, type Attempt, type DeploymentHealth } from '../routing/index.ts';
import { UpstreamError, type AdapterKind, type ProviderAdapter, type ProviderConfig, type UpstreamCall } from '../providers/index.ts';
import {
  boundTextTokens, chatInputTokens, cutTextAtTokens, estimateChatInputTokens, estimateTextTokens, floorUsage, meterTextTokens, zeroUsage,
  type ChatRequest, type ChatResponse, type CompletionRequest, type CompletionResponse, type EmbeddingRequest,
  type EmbeddingResponse, type ModelListing, type Usage,
} from '../wire/index.ts';
import { chargingRefusal, isClientAbort, upstreamFailure } from './errors.ts';
import type { RateLimiter } from './limits.ts';
import { IdempotencyBook } from './idempotency.ts';
import type { ChargingPort, GatewayMetrics, RequestContext, RequestStatus } from './ports.ts';

export interface GatewayDeps {
  catalog: () => ModelCatalog;
  providers: () => ReadonlyMap<string, ProviderConfig>;
  adapters: Readonly<Record<AdapterKind, ProviderAdapter>>;
  dispatcher: UpstreamCall['dispatcher'];
  charging: ChargingPort;
  health: DeploymentHealth;
  limiter: RateLimiter;
  random: Random;
  clock: Clock;
  /** Monotonic milliseconds (performance.now in production). */
  now: () => number;
  metrics: GatewayMetrics;
  timeoutMsUpstreamHeaders: number;
  timeoutMsUpstreamBody: number;
  log?: (level: 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string) => void;
  /** Re-checks a running request's key (revocation, expiry, account suspension) at each stream extension. */
  keys?: { recheck(key: RequestContext['key'], nowMs: number): { ok: true } | { ok: false; code: 'invalid_api_key' | 'api_key_revoked' | 'api_key_expired'; message: string } };
}

/** What the gateway decided before any upstream call: the model, the reservation and the attempt plan. */
export interface Admission {
  model: ModelSpec;
  reservationId: string;
  tokensInputEstimate: number;
  /**
   * The part of the input estimate the usage floor applies to (issue 12 F8): text, not the fixed per-image
   * charge (a low-detail image really costs far less). Absent: the whole estimate.
   */
  tokensInputFloorBase?: number;
  tokensOutputGranted: number;
  tokensOutputMax: number;
  attempts: Attempt[];
}

/** The outcome of one upstream call made through the retry loop. */
export interface Served<T> {
  value: T;
  attempt: Attempt;
  provider: ProviderConfig;
}

const NO_MODELS: readonly ModelSpec[] = Object.freeze([]);
const NO_LIMITS: KeyLimits = Object.freeze({});

const FAMILY_ADAPTER: Record<RequestContext['family'], AdapterKind> = { openai: 'openai-compatible', anthropic: 'anthropic' };

export class Gateway {
  /** Idempotency-Key on inference requests, per API key (see idempotency.ts). */
  readonly idempotency: IdempotencyBook;
  constructor(readonly deps: GatewayDeps) {
    this.idempotency = new IdempotencyBook(() => deps.clock.nowMs());
  }

  /** GET /v1/models: only the models this key may use; owned_by says whether the emulator serves it. */
  listModels(ctx: Pick<RequestContext, 'key'>): ModelListing[] {
    const catalog = this.deps.catalog();
    const providers = this.deps.providers();
    const out: ModelListing[] = [];
    for (const m of catalog.models.values()) {
      if (!isModelAllowed(catalog, ctx.key.allowedModels, m)) continue;
      out.push({ id: m.id, ownedBy: this.#ownedBy(m, providers), createdS: m.createdS });
    }
    return out;
  }

  getModel(ctx: Pick<RequestContext, 'key' | 'modelMap'>, id: string): ModelListing {
    const model = this.#resolveAllowed(ctx, id);
    return { id: model.id, ownedBy: this.#ownedBy(model, this.deps.providers()), createdS: model.createdS };
  }

  countTokens(ctx: Pick<RequestContext, 'key' | 'modelMap'>, req: ChatRequest): number {
    this.#resolveAllowed(ctx, req.model);
    return estimateChatInputTokens(req);
  }

  #ownedBy(m: ModelSpec, providers: ReadonlyMap<string, ProviderConfig>): string {
    const names = [...new Set(m.deployments.map((d) => d.provider))];
    const allMock = names.every((n) => providers.get(n)?.isMock);
    return allMock ? `${m.vendor} (tokengrid-mock: offline emulator)` : m.vendor;
  }

  /** The catalog model a request for `requested` would use (package mapping, aliases), if the key may use it. */
  resolve(ctx: Pick<RequestContext, 'key' | 'modelMap'>, requested: string): ModelSpec {
    return this.#resolveAllowed(ctx, requested);
  }

  #resolveAllowed(ctx: Pick<RequestContext, 'key' | 'modelMap'>, requested: string): ModelSpec {
    const catalog = this.deps.catalog();
    const r = resolveModel(catalog, requested, ctx.modelMap);
    if (!r.ok) throw new TokenGridError('model_not_found', r.message, 'model');
    if (!isModelAllowed(catalog, ctx.key.allowedModels, r.model)) {
      throw new TokenGridError('model_not_allowed', `This API key is not allowed to use the model '${requested}'.`, 'model');
    }
    return r.model;
  }

  /**
   * Authorise: resolve the model, check the key may use it, admit it through the rate limiter, reserve
   * the estimated cost, and plan attempts. Any refusal happens here, before an upstream call.
   */
  async admit(
    ctx: RequestContext, requested: string, kind: ModelSpec['kind'], tokensInputEstimate: number, tokensOutputAsked: number | undefined, stream: boolean,
    tokensInputBound = tokensInputEstimate, tokensOutputFirst?: number,
  ): Promise<Admission> {
    const model = this.#resolveAllowed(ctx, requested);
    if (model.kind !== kind) {
      throw new TokenGridError('invalid_request', `The model '${requested}' is ${model.kind === 'embedding' ? 'an embedding model' : 'a chat model'} and cannot serve this endpoint.`, 'model');
    }
    if (tokensInputEstimate > model.contextWindow) {
      throw new TokenGridError('invalid_request', `This request has about ${tokensInputEstimate} input tokens, more than the ${model.contextWindow}-token context window of '${model.id}'.`, 'messages');
    }
    const tokensOutputMax = kind === 'embedding' ? 0 : Math.max(1, Math.min(tokensOutputAsked ?? model.maxOutputTokens, model.maxOutputTokens, model.contextWindow - tokensInputEstimate));
    this.#admitLimits(ctx, tokensInputEstimate + tokensOutputMax);
    // Reservations sized to need (issue 12, finding 10): a stream asks for a first slice and grows as its output
    // flows; a non-streamed request without max_tokens asks softly (a share of a small balance, the upstream is
    // capped at what was granted); an explicit max_tokens is asked for as is (or the largest affordable part).
    const tokensOutputAsk = kind === 'embedding' ? undefined
      : stream ? Math.min(tokensOutputMax, tokensOutputFirst ?? tokensOutputMax)
      : tokensOutputAsked === undefined ? tokensOutputMax : undefined;
    let reserved;
    try {
      // The hold covers the input's upper bound (issue 12, finding 3), so a byte-level tokenizer on CJK text
      // cannot take more than was held.
      reserved = await this.deps.charging.reserve({
        requestId: ctx.requestId, accountId: ctx.key.accountId, memberId: ctx.key.memberId, keyId: ctx.key.id,
        model: model.id, tokensInputEstimate: Math.max(tokensInputEstimate, tokensInputBound), tokensOutputMax, stream,
        ...(tokensOutputAsk === undefined ? {} : { tokensOutputAsk }),
      });
    } catch (e) {
      this.#limitsDone(ctx, tokensInputEstimate + tokensOutputMax, 0);
      this.deps.log?.('error', { err: e, requestId: ctx.requestId }, 'charging reserve failed');
      throw new TokenGridError('charging_unavailable', 'The charging system is unavailable; the request was not sent upstream.');
    }
    if (!reserved.ok) {
      this.#limitsDone(ctx, tokensInputEstimate + tokensOutputMax, 0);
      throw chargingRefusal(reserved.code, reserved.message, 'details' in reserved ? reserved.details : undefined);
    }
    const attempts = planAttempts(model, this.#fallbacks(model, kind), this.#isAvailable, this.deps.random);
    const admission: Admission = {
      model, reservationId: reserved.value.reservationId, tokensInputEstimate,
      tokensOutputGranted: reserved.value.tokensOutputGranted, tokensOutputMax, attempts,
    };
    if (attempts.length === 0) {
      await this.#release(ctx, admission);
      throw new TokenGridError('no_healthy_deployment', `Every deployment of '${model.id}' is cooling down after failures; try again shortly.`);
    }
    return admission;
  }

  /** One closure for the gateway's life, not one per request. */
  readonly #isAvailable = (deploymentId: string): boolean => this.deps.health.isAvailable(deploymentId);

  #fallbacks(model: ModelSpec, kind: ModelSpec['kind']): readonly ModelSpec[] {
    if (model.fallback.length === 0) return NO_MODELS;
    const catalog = this.deps.catalog();
    return model.fallback.map((id) => catalog.models.get(id)).filter((m): m is ModelSpec => m !== undefined && m.kind === kind);
  }

  /** Rate limits per key and per account (the plan's limits, shared by all the account's keys). */
  #admitLimits(ctx: RequestContext, tokens: number): void {
    const nowMs = this.deps.clock.nowMs();
    const byKey = this.deps.limiter.admit(ctx.key.id, ctx.key.limits, tokens, nowMs);
    if (!byKey.ok) throw new TokenGridError('rate_limited', byKey.message, null, { 'retry-after': String(byKey.retryAfterS) });
    const byPlan = this.deps.limiter.admit(ctx.key.accountId, ctx.accountLimits ?? NO_LIMITS, tokens, nowMs);
    if (!byPlan.ok) {
      this.deps.limiter.done(ctx.key.id, tokens, 0, nowMs);
      throw new TokenGridError('rate_limited', byPlan.message.replace('for this key', "for this account's plan"), null, { 'retry-after': String(byPlan.retryAfterS) });
    }
  }

  #limitsDone(ctx: RequestContext, estimate: number, actual: number): void {
    const nowMs = this.deps.clock.nowMs();
    this.deps.limiter.done(ctx.key.id, estimate, actual, nowMs);
    this.deps.limiter.done(ctx.key.accountId, estimate, actual, nowMs);
  }

  async #release(ctx: RequestContext, a: Admission): Promise<void> {
    this.#limitsDone(ctx, a.tokensInputEstimate + a.tokensOutputMax, 0);
    await this.deps.charging.void(a.reservationId).catch((e: unknown) => this.deps.log?.('error', { err: e, requestId: ctx.requestId }, 'charging void failed'));
  }

  /**
   * The only retry loop (habit 10): try each planned attempt until one answers. `call` must resolve only
   * once nothing has reached the client yet; a failure after that is the caller's to handle.
   */
  async dispatch<T>(ctx: RequestContext, a: Admission, call: (adapter: ProviderAdapter, upstream: UpstreamCall, attempt: Attempt) => Promise<T>): Promise<Served<T>> {
    let last: unknown;
    let tried = 0;
    for (const attempt of a.attempts) {
      if (ctx.signal.aborted) break;
      const provider = this.deps.providers().get(attempt.deployment.provider);
      if (!provider) continue;
      if (!this.deps.health.tryAcquire(attempt.deployment.id)) continue;
      tried++;
      // The client's own signal aborts the upstream call: no controller per attempt. A failed attempt has
      // already released its upstream request (adapters destroy the body on every error path).
      const upstream: UpstreamCall = {
        provider, upstreamModel: attempt.deployment.upstreamModel, dispatcher: this.deps.dispatcher, signal: ctx.signal,
        requestId: ctx.requestId, timeoutMsHeaders: this.deps.timeoutMsUpstreamHeaders, timeoutMsBody: this.deps.timeoutMsUpstreamBody,
      };
      try {
        const value = await call(this.deps.adapters[provider.adapter], upstream, attempt);
        this.deps.health.recordSuccess(attempt.deployment.id);
        return { value, attempt, provider };
      } catch (e) {
        last = e;
        if (ctx.signal.aborted) {
          this.deps.health.release(attempt.deployment.id);
          break;
        }
        const kind = e instanceof UpstreamError ? e.kind : 'internal';
        this.deps.metrics.upstreamError(provider.name, kind);
        this.deps.log?.('warn', { requestId: ctx.requestId, deployment: attempt.deployment.id, kind, status: (e as UpstreamError).status, err: (e as Error).message }, 'upstream attempt failed');
        if (!(e instanceof UpstreamError)) {
          this.deps.health.release(attempt.deployment.id);
          throw e;
        }
        if (!e.retryable) {
          // The upstream judged the request itself bad (4xx): another deployment would say the same.
          this.deps.health.release(attempt.deployment.id);
          break;
        }
        this.deps.health.recordFailure(attempt.deployment.id);
      }
    }
    if (ctx.signal.aborted) throw new UpstreamError('aborted', 'client disconnected');
    if (tried === 0) throw new TokenGridError('no_healthy_deployment', `Every deployment of '${a.model.id}' is cooling down after failures; try again shortly.`);
    throw upstreamFailure(last, tried);
  }

  /** Settle the reservation with the actual usage and write the usage record (durable before the caller answers). */
  async settle(ctx: RequestContext, a: Admission, served: { attempt: Attempt; provider: ProviderConfig } | null, usage: Usage, usageEstimated: boolean, status: RequestStatus, ttftMs: number | null): Promise<void> {
    const latencyMs = Math.round(this.deps.now() - ctx.startedAt);
    const deployment: Deployment | undefined = served?.attempt.deployment;
    const model = served?.attempt.model ?? a.model;
    this.#limitsDone(ctx, a.tokensInputEstimate + a.tokensOutputMax, usage.tokensInput + usage.tokensOutput);
    const rec = await this.deps.charging.settle({
      reservationId: a.reservationId, requestId: ctx.requestId, usage, usageEstimated, status,
      provider: served?.provider.name ?? 'none', upstreamModel: deployment?.upstreamModel ?? '', region: deployment?.region ?? '',
      deploymentId: deployment?.id ?? '', latencyMs, ttftMs, vendorCostMicros: vendorCostMicros(model, usage),
      ...(ctx.clientRequestId === undefined ? {} : { clientRequestId: ctx.clientRequestId }),
    });
    this.deps.metrics.tokens(a.model.id, served?.provider.name ?? 'none', usage);
    if (usage.serverToolRequests !== undefined && usage.serverToolRequests > 0) {
      // Billed per request by the vendor, not priced here yet (issue 12 attack report F8): counted and logged.
      this.deps.metrics.serverToolRequests?.(a.model.id, served?.provider.name ?? 'none', usage.serverToolRequests);
      this.deps.log?.('warn', { requestId: ctx.requestId, accountId: ctx.key.accountId, model: a.model.id, serverToolRequests: usage.serverToolRequests }, 'server-tool requests billed by the upstream are not priced');
    }
    const leakCoins = rec?.leakCoins ?? 0;
    if (leakCoins > 0) {
      // Delivered and not paid (issue 12, finding 2): counted, logged at warn, shown per account (usage summary).
      this.deps.metrics.leak?.(a.model.id, leakCoins);
      this.deps.log?.('warn', {
        requestId: ctx.requestId, clientRequestId: ctx.clientRequestId, accountId: ctx.key.accountId, model: a.model.id, leakCoins,
        tokensInputReserved: a.tokensInputEstimate, tokensOutputGranted: a.tokensOutputGranted, usage, status,
      }, 'charging leak: usage beyond what the buckets could pay');
    }
  }

  /** Abandon a reservation (nothing was served): release the hold and the limiter slot. */
  async release(ctx: RequestContext, a: Admission): Promise<void> {
    await this.#release(ctx, a);
  }

  /** Extras only cross to an upstream of the same wire family; elsewhere they would be unknown fields. */
  upstreamChatRequest(ctx: RequestContext, req: ChatRequest, provider: ProviderConfig, maxTokens: number): ChatRequest {
    const sameFamily = FAMILY_ADAPTER[ctx.family] === provider.adapter;
    return { ...req, maxTokensOutput: maxTokens, includeUsage: true, extra: sameFamily ? req.extra : {} };
  }

  // ---- non-streaming endpoints ----

  async chat(ctx: RequestContext, req: ChatRequest): Promise<{ response: ChatResponse; model: ModelSpec }> {
    const input = chatInputTokens(req);
    const a = await this.admit(ctx, req.model, 'chat', input.estimate, req.maxTokensOutput, false, input.bound);
    a.tokensInputFloorBase = input.text;
    let served: Served<ChatResponse>;
    const sent = { upstream: false };
    try {
      served = await this.dispatch(ctx, a, (adapter, upstream) => {
        sent.upstream = true;
        return adapter.chat(upstream, this.upstreamChatRequest(ctx, req, upstream.provider, a.tokensOutputGranted));
      });
    } catch (e) {
      await this.abandoned(ctx, a, sent.upstream, e);
      throw e;
    }
    let res = served.value;
    const reported = res.usage.tokensInput > 0 || res.usage.tokensOutput > 0;
    let out = outputMeter(res);
    let usage = reported ? res.usage : { ...zeroUsage(), tokensInput: a.tokensInputEstimate, tokensOutput: out.generated };
    let estimated = !reported || res.usageEstimated === true;
    let status: RequestStatus = 'ok';
    // What was delivered counts even when the upstream reports less (issue 12 attack report F1, F8). Tool
    // results an Anthropic upstream relays (web search) are not output an honest max_tokens limits: they do
    // not trigger the cut, but once cutting they take their place in the budget (cutAnthropicBlocks).
    if (Math.max(usage.tokensOutput, out.generated) > a.tokensOutputGranted) {
      // The upstream ignored max_tokens (issue 12, finding 2): the answer is cut at the grant, as a stream is,
      // and only what is delivered is charged.
      res = cutChatAtGrant(res, a.tokensOutputGranted);
      out = outputMeter(res);
      const delivered = out.generated;
      usage = { ...usage, tokensOutput: Math.min(usage.tokensOutput, delivered), tokensReasoning: Math.min(usage.tokensReasoning, delivered) };
      estimated = true;
      status = 'truncated';
      this.deps.log?.('warn', { requestId: ctx.requestId, model: a.model.id, provider: served.provider.name, granted: a.tokensOutputGranted, reported: res.usage.tokensOutput, delivered }, 'upstream ignored max_tokens: answer cut at the grant');
    }
    const floored = flooredUsage(this, ctx, a, served.provider.name, usage, out.generated);
    if (floored !== usage) { usage = floored; estimated = true; }
    await this.settle(ctx, a, served, usage, estimated, status, null);
    // The adapter's response is this request's own: copied only when the usage changed.
    return { response: usage === res.usage ? res : { ...res, usage, usageEstimated: estimated }, model: a.model };
  }

  /**
   * A non-streamed request that failed or was abandoned after dispatch. The rule (docs/errors.md, "Charging
   * rules"): nothing reached an upstream, or the upstream failed -> the hold is released, nothing is charged;
   * the client went away after the request was sent upstream -> the upstream has read the prompt and bills
   * it, so its input estimate is charged (status client_aborted; output is unknown: the call was aborted).
   */
  async abandoned(ctx: RequestContext, a: Admission, sentUpstream: boolean, e: unknown): Promise<void> {
    if (sentUpstream && ctx.signal.aborted && (isClientAbort(e) || e instanceof UpstreamError)) {
      await this.settle(ctx, a, null, { ...zeroUsage(), tokensInput: a.tokensInputEstimate }, true, 'client_aborted', null)
        .catch((err: unknown) => this.deps.log?.('error', { err, requestId: ctx.requestId }, 'charging settle of an abandoned request failed'));
      return;
    }
    await this.#release(ctx, a);
  }

  async completion(ctx: RequestContext, req: CompletionRequest): Promise<{ response: CompletionResponse; model: ModelSpec }> {
    const prompt = Array.isArray(req.prompt) ? req.prompt.join('\n') : req.prompt;
    const est = estimateTextTokens(prompt) + 4;
    const a = await this.admit(ctx, req.model, 'chat', est, req.maxTokensOutput, false, boundTextTokens(prompt, est - 4) + 4);
    let served: Served<CompletionResponse>;
    const sent = { upstream: false };
    try {
      served = await this.dispatch(ctx, a, (adapter, upstream) => {
        if (!adapter.completion) throw new TokenGridError('invalid_request', `The model '${req.model}' does not support the legacy completions endpoint; use /v1/chat/completions.`, 'model');
        sent.upstream = true;
        return adapter.completion(upstream, { ...req, maxTokensOutput: a.tokensOutputGranted, extra: ctx.family === 'openai' && upstream.provider.adapter === 'openai-compatible' ? req.extra : {} });
      });
    } catch (e) {
      await this.abandoned(ctx, a, sent.upstream, e);
      throw e;
    }
    let res = served.value;
    const reported = res.usage.tokensInput > 0 || res.usage.tokensOutput > 0;
    const metered = (r: CompletionResponse): number => r.choices.reduce((n, c) => n + meterTextTokens(c.text), 0);
    let usage = reported ? res.usage : { ...zeroUsage(), tokensInput: a.tokensInputEstimate, tokensOutput: metered(res) };
    let estimated = !reported;
    let status: RequestStatus = 'ok';
    if (usage.tokensOutput > a.tokensOutputGranted) {
      let left = a.tokensOutputGranted;
      res = { ...res, choices: res.choices.map((c) => {
        const text = cutTextAtTokens(c.text, left);
        left = Math.max(0, left - meterTextTokens(text));
        return { text, finishReason: text.length < c.text.length ? 'length' : c.finishReason };
      }) };
      usage = { ...usage, tokensOutput: Math.min(usage.tokensOutput, metered(res)) };
      estimated = true;
      status = 'truncated';
    }
    const floored = flooredUsage(this, ctx, a, served.provider.name, usage, metered(res));
    if (floored !== usage) { usage = floored; estimated = true; }
    await this.settle(ctx, a, served, usage, estimated, status, null);
    return { response: { ...res, usage }, model: a.model };
  }

  async embeddings(ctx: RequestContext, req: EmbeddingRequest): Promise<{ response: EmbeddingResponse; model: ModelSpec }> {
    const inputs = typeof req.input === 'string' ? [req.input] : req.input;
    let estimate = 0;
    for (const item of inputs) estimate += typeof item === 'string' ? estimateTextTokens(item) : Array.isArray(item) ? item.length : 1;
    const a = await this.admit(ctx, req.model, 'embedding', Math.max(1, estimate), 0, false);
    let served: Served<EmbeddingResponse>;
    try {
      served = await this.dispatch(ctx, a, (adapter, upstream) => {
        if (!adapter.embeddings) throw new TokenGridError('invalid_request', `The upstream of '${req.model}' does not serve embeddings.`, 'model');
        return adapter.embeddings(upstream, { ...req, extra: upstream.provider.adapter === 'openai-compatible' ? req.extra : {} });
      });
    } catch (e) {
      await this.#release(ctx, a);
      throw e;
    }
    const res = served.value;
    const reported = res.usage.tokensInput > 0;
    const told = reported ? res.usage : { ...zeroUsage(), tokensInput: a.tokensInputEstimate };
    const usage = flooredUsage(this, ctx, a, served.provider.name, told, 0);
    await this.settle(ctx, a, served, usage, !reported || usage !== told, 'ok', null);
    return { response: { ...res, usage }, model: a.model };
  }
}

/**
 * Usage with the floor of issue 12 F8 applied (src/wire/estimate.ts floorUsage): the same object when the
 * report stood; otherwise the raised usage, counted in /metrics and logged.
 */
export function flooredUsage(gw: Gateway, ctx: RequestContext, a: Admission, provider: string, usage: Usage, tokensOutputDelivered: number): Usage {
  const f = floorUsage(usage, a.tokensInputFloorBase ?? a.tokensInputEstimate, tokensOutputDelivered);
  if (f.floored === undefined) return usage;
  gw.deps.metrics.usageFloored?.(a.model.id, f.floored);
  gw.deps.log?.('warn', {
    requestId: ctx.requestId, accountId: ctx.key.accountId, model: a.model.id, provider, floored: f.floored, reported: usage,
    tokensInputFloorBase: a.tokensInputFloorBase ?? a.tokensInputEstimate, tokensOutputDelivered, charged: f.usage,
  }, 'upstream usage below the gateway floor: the floor is charged');
  return f.usage;
}

/**
 * Metered output of a finished answer (calibrated, no safety margin): `generated` is what the model wrote
 * (text, thinking, tool calls: billed when delivered), `total` adds the tool results an Anthropic upstream
 * relays (server tool results count against the grant but are not output tokens). From an Anthropic
 * upstream the verbatim blocks are what is sent, so they are what is metered.
 */
function outputMeter(res: ChatResponse): { generated: number; total: number } {
  if (res.anthropicContent !== undefined) {
    let generated = 0;
    let total = 0;
    for (const b of res.anthropicContent) {
      const n = anthropicBlockTokens(b);
      total += n;
      if (!isToolResultBlock(b)) generated += n;
    }
    return { generated, total };
  }
  let n = 0;
  for (const part of res.content) {
    if (part.type === 'text') n += meterTextTokens(part.text);
    else if (part.type === 'tool_call') n += meterTextTokens(part.argumentsJson) + meterTextTokens(part.name) + 3;
  }
  if (res.reasoning) n += meterTextTokens(res.reasoning);
  return { generated: n, total: n };
}

const isToolResultBlock = (b: Record<string, unknown>): boolean => typeof b['type'] === 'string' && b['type'].endsWith('_tool_result');

/** Metered tokens of one verbatim Anthropic content block (also used by the stream meter). */
export function anthropicBlockTokens(b: Record<string, unknown>): number {
  switch (b['type']) {
    case 'text': return typeof b['text'] === 'string' ? meterTextTokens(b['text']) : 0;
    case 'thinking': return typeof b['thinking'] === 'string' ? meterTextTokens(b['thinking']) : 0;
    // Encrypted thinking: about 6 base64 characters per token of the thinking it hides.
    case 'redacted_thinking': return typeof b['data'] === 'string' ? Math.max(1, Math.ceil(b['data'].length / 6)) : 1;
    case 'tool_use':
    case 'server_tool_use':
      return meterTextTokens(JSON.stringify(b['input'] ?? {})) + meterTextTokens(String(b['name'] ?? '')) + 3;
    default: return meterTextTokens(JSON.stringify(b));
  }
}

/**
 * Verbatim Anthropic blocks cut at `budget`: text and thinking are cut to what fits (a cut thinking block
 * loses its signature, which no longer matches), whole blocks (tool use, server tool use and results,
 * redacted thinking) go whole or not at all, and nothing after the first block that did not fit is sent.
 */
function cutAnthropicBlocks(blocks: Record<string, unknown>[], budget: number): Record<string, unknown>[] {
  let left = budget;
  const out: Record<string, unknown>[] = [];
  for (const b of blocks) {
    if (left <= 0) break;
    const key = b['type'] === 'text' ? 'text' : b['type'] === 'thinking' ? 'thinking' : undefined;
    const whole = anthropicBlockTokens(b);
    if (whole <= left) {
      out.push(b);
      left -= whole;
      continue;
    }
    if (key !== undefined && typeof b[key] === 'string') {
      const text = cutTextAtTokens(b[key] as string, left);
      if (text.length > 0) out.push(key === 'thinking' ? { ...b, thinking: text, signature: '' } : { ...b, text });
    }
    break;
  }
  return out;
}

/** The answer cut at `budget` output tokens: reasoning first, then text and whole tool calls in order. */
export function cutChatAtGrant(res: ChatResponse, budget: number): ChatResponse {
  let left = budget;
  let reasoning = res.reasoning;
  if (reasoning) {
    reasoning = cutTextAtTokens(reasoning, left);
    left = Math.max(0, left - meterTextTokens(reasoning));
  }
  const content: ChatResponse['content'] = [];
  for (const part of res.content) {
    if (left <= 0) break;
    if (part.type === 'text') {
      const text = cutTextAtTokens(part.text, left);
      if (text.length > 0) content.push(text.length === part.text.length ? part : { ...part, text });
      left -= meterTextTokens(text);
      if (text.length < part.text.length) break;
    } else if (part.type === 'tool_call') {
      const cost = meterTextTokens(part.argumentsJson) + meterTextTokens(part.name) + 3;
      if (cost > left) break; // half a tool call is no use to anyone
      content.push(part);
      left -= cost;
    } else {
      content.push(part);
    }
  }
  const out: ChatResponse = { ...res, content, finishReason: 'length' };
  if (reasoning !== undefined) out.reasoning = reasoning;
  // What an Anthropic client is sent (encodeMessagesResponse prefers the verbatim blocks): cut the same way.
  if (res.anthropicContent !== undefined) out.anthropicContent = cutAnthropicBlocks(res.anthropicContent, budget);
  return out;
}
