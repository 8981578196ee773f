import { TokenGridError, type Clock, type ErrorCode, type Random } from '../core/index.ts';
import type { KeyLimits } from '../accounts/index.ts';
import { isModelAllowed, resolveModel, vendorCostMicros, type ModelCatalog, type ModelSpec } from '../catalog/index.ts';
import {
  chooseAutoModel,
  parseAutoModel,
  planAttempts,
  planAutoAttempts,
  routeHeader,
  servedInRegions,
  type Attempt,
  type AutoPolicy,
  type DeploymentHealth,
  type LatencyTracker,
} from '../routing/index.ts';
import { UpstreamError, type AdapterKind, type ProviderAdapter, type ProviderConfig, type UpstreamCall, type UpstreamStream } from '../providers/index.ts';
import {
  chatInputTokens,
  estimateChatInputTokens,
  estimateTextTokens,
  floorUsage,
  inputTextBounds,
  zeroUsage,
  type ChatRequest,
  type ChatResponse,
  type CompletionRequest,
  type CompletionResponse,
  type EmbeddingRequest,
  type EmbeddingResponse,
  type ModelListing,
  type ServingNote,
  type StreamEvent,
  type Usage,
} from '../wire/index.ts';
import { chargingRefusal, isClientAbort, upstreamFailure } from './errors.ts';
import type { LimitCheck, Limiter } from './limits.ts';
import { IdempotencyBook, type IdempotencyStore } from './idempotency.ts';
import { cutChatAtGrant, cutCompletionAtGrant, meterChatAnswer, meterCompletionAnswer, StreamMeter } from './meter.ts';
import { StageHooks, type FlightView, type Operation, type Stage, type StageAnswer } from './stages.ts';
import { defaultStreamOptions, EventPuller, type StreamOptions, type StreamSink } from './stream.ts';
import type { ChargingPort, GatewayMetrics, RequestContext, RequestStatus } from './ports.ts';

/*
 * The gateway lifecycle, one path for every inference request (chat, legacy completions, embeddings, the
 * Responses API served as chat, and streams of each):
 *
 *   stages.beforeAdmit -> admit (resolve, limits, reserve) -> plan -> stages.beforeDispatch
 *   -> dispatch (the one retry loop) -> meter (meter.ts) -> settle -> stages.afterSettle
 *
 * with the hold released in `finally` when the request ends without a settlement. One `Flight` object per
 * request carries the admission, the attempt that answered and the settlement; no closure per request.
 */

export interface GatewayDeps {
  catalog: () => ModelCatalog;
  providers: () => ReadonlyMap<string, ProviderConfig>;
  adapters: Readonly<Record<AdapterKind, ProviderAdapter>>;
  dispatcher: UpstreamCall['dispatcher'];
  charging: ChargingPort;
  health: DeploymentHealth;
  /** Latency EWMAs per deployment, fed at settle for auto-eligible models (tiered), read by `model: "auto"`. */
  latency?: LatencyTracker;
  limiter: Limiter;
  random: Random;
  clock: Clock;
  /** Monotonic milliseconds (performance.now in production). */
  now: () => number;
  metrics: GatewayMetrics;
  timeoutMsUpstreamHeaders: number;
  timeoutMsUpstreamBody: number;
  log?: (level: 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string) => void;
  /** Re-checks a running request's key (revocation, expiry, account suspension) at each stream extension. */
  keys?: {
    recheck(
      key: RequestContext['key'],
      nowMs: number,
    ): { ok: true } | { ok: false; code: 'invalid_api_key' | 'api_key_revoked' | 'api_key_expired'; message: string };
  };
  /** Pipeline stages (stages.ts), run in order at fixed points of the lifecycle; none by default. */
  stages?: readonly Stage[];
  /** Where Idempotency-Keys live: default this process's memory; PostgreSQL's for many nodes (issue 15). */
  idempotency?: IdempotencyStore;
}

const NO_MODELS: readonly ModelSpec[] = Object.freeze([]);
const NO_LIMITS: KeyLimits = Object.freeze({});

const FAMILY_ADAPTER: Record<RequestContext['family'], AdapterKind> = { openai: 'openai-compatible', anthropic: 'anthropic' };

export class Gateway {
  /** Idempotency-Key on inference requests, per API key (see idempotency.ts). */
  readonly idempotency: IdempotencyBook;
  readonly #hooks: StageHooks;
  constructor(readonly deps: GatewayDeps) {
    // A non-streamed duplicate waits for the first request at most 5 minutes (unref'd: never holds the process open).
    this.idempotency = new IdempotencyBook(
      () => deps.clock.nowMs(),
      undefined,
      undefined,
      undefined,
      (ms) => new Promise<void>((r) => setTimeout(r, ms).unref()),
      deps.idempotency,
      (err) =>
        deps.log?.(
          'error',
          { err },
          'Idempotency-Key: could not record the outcome; duplicates get 409 in progress until the claim goes stale (PostgreSQL: 1 h)',
        ),
    );
    this.#hooks = new StageHooks(deps.stages ?? NO_STAGES);
  }

  /**
   * GET /v1/models: only the models this key may use (for an account pinned to regions, only those served there,
   * by themselves or a fallback); owned_by says whether the emulator serves it.
   */
  listModels(ctx: Pick<RequestContext, 'key' | 'regions'>): ModelListing[] {
    const catalog = this.deps.catalog();
    const providers = this.deps.providers();
    const out: ModelListing[] = [];
    for (const m of catalog.models.values()) {
      if (!isModelAllowed(catalog, ctx.key.allowedModels, m)) continue;
      if (ctx.regions !== undefined && !servedInRegions([m, ...this.#fallbacks(m, m.kind)], ctx.regions)) continue;
      out.push({ id: m.id, ownedBy: this.#ownedBy(m, providers), createdS: m.createdS });
    }
    return out;
  }

  getModel(ctx: Pick<RequestContext, 'key' | 'modelMap'>, id: string): ModelListing {
    const model = this.#resolveAllowed(ctx, id);
    return { id: model.id, ownedBy: this.#ownedBy(model, this.deps.providers()), createdS: model.createdS };
  }

  countTokens(ctx: Pick<RequestContext, 'key' | 'modelMap'>, req: ChatRequest): number {
    const auto = parseAutoModel(req.model);
    if (auto === 'unknown') this.#chooseAuto(ctx as RequestContext, auto, req.model, 'chat', 0, undefined); // throws: names the policies
    // A count for `auto` needs no model: the estimate is the same for every chat model.
    if (auto === null) this.#resolveAllowed(ctx, req.model);
    return estimateChatInputTokens(req);
  }

  #ownedBy(m: ModelSpec, providers: ReadonlyMap<string, ProviderConfig>): string {
    const names = [...new Set(m.deployments.map((d) => d.provider))];
    const allMock = names.every((n) => providers.get(n)?.isMock);
    return allMock ? `${m.vendor} (tokengrid-mock: offline emulator)` : m.vendor;
  }

  /**
   * The catalog model a request for `requested` would use (package mapping, aliases), if the key may use it.
   * For `model: "auto"` the choice is made here and kept for the request's admission: `req` (the chat request
   * about to be sent) gives it the input size and output ask admission would use, so a long input is not routed
   * to a model too small for it.
   */
  resolve(ctx: Pick<RequestContext, 'key' | 'modelMap'> & Partial<RequestContext>, requested: string, req?: ChatRequest): ModelSpec {
    const auto = parseAutoModel(requested);
    if (auto === null || ctx.requestId === undefined) return this.#resolveAllowed(ctx, requested);
    const tokensInput = req === undefined ? 0 : chatInputTokens(req).estimate;
    return this.#chooseAuto(ctx as RequestContext, auto, requested, 'chat', tokensInput, req?.maxTokensOutput);
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

  // ---- the entry points (one lifecycle each; the API shells call these) ----

  chat(ctx: RequestContext, req: ChatRequest): Promise<{ response: ChatResponse; model: ModelSpec }> {
    return this.#run(new Flight(ctx, 'chat', req, undefined, defaultStreamOptions)) as Promise<{ response: ChatResponse; model: ModelSpec }>;
  }

  completion(ctx: RequestContext, req: CompletionRequest): Promise<{ response: CompletionResponse; model: ModelSpec }> {
    return this.#run(new Flight(ctx, 'completion', req, undefined, defaultStreamOptions)) as Promise<{ response: CompletionResponse; model: ModelSpec }>;
  }

  embeddings(ctx: RequestContext, req: EmbeddingRequest): Promise<{ response: EmbeddingResponse; model: ModelSpec }> {
    return this.#run(new Flight(ctx, 'embeddings', req, undefined, defaultStreamOptions)) as Promise<{ response: EmbeddingResponse; model: ModelSpec }>;
  }

  /**
   * A streamed chat: dispatch until an upstream produces its first event (retries allowed until then), then
   * forward events as they arrive, metering output, extending the reservation as it is used, cutting the
   * stream cleanly when nothing more can be granted, and settling before the final bytes.
   */
  chatStream(ctx: RequestContext, req: ChatRequest, sink: StreamSink, opts: StreamOptions = defaultStreamOptions): Promise<void> {
    return this.#run(new Flight(ctx, 'chat', req, sink, opts)) as Promise<undefined>;
  }

  completionStream(ctx: RequestContext, req: CompletionRequest, sink: StreamSink, opts: StreamOptions = defaultStreamOptions): Promise<void> {
    return this.#run(new Flight(ctx, 'completion', req, sink, opts)) as Promise<undefined>;
  }

  // ---- the lifecycle ----

  /** The lifecycle. Resolves to the metered answer (non-streamed) or undefined (a stream, written to its sink). */
  async #run(f: Flight): Promise<{ response: unknown; model: ModelSpec } | undefined> {
    let failure: unknown;
    try {
      // A hook that answers synchronously (the common case: nothing to do for this request) costs no await.
      if (this.#hooks.beforeAdmit.length !== 0) {
        for (const s of this.#hooks.beforeAdmit) {
          const r = s.beforeAdmit!(f);
          if (r !== undefined) await r;
        }
      }
      await this.#admit(f);
      if (this.#hooks.beforeDispatch.length !== 0) {
        const r = this.#beforeDispatch(f);
        if (r !== undefined) await r;
      }
      if (f.served === undefined) await this.#dispatch(f);
      if (f.sink === undefined) {
        this.#meterAnswer(f);
        f.settling = true;
        await this.settle(f);
        if (this.#hooks.afterSettle.length !== 0) this.#afterSettle(f);
        return { response: f.answer, model: f.model };
      }
      await this.#pump(f, f.sink);
      return undefined;
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      // Anything held and not settled (a refusal after the reservation, a failed dispatch, a client gone)
      // is released here, or charged its input when the upstream already read the prompt.
      if (f.reservationId !== '' && !f.settling) await this.#abandon(f, failure);
      if (this.#hooks.onEnd.length !== 0) this.#onEnd(f);
    }
  }

  /**
   * Admit: resolve the model, check the key may use it, admit it through the rate limiter, reserve the
   * estimated cost, and plan attempts. Any refusal happens here, before an upstream call.
   */
  async #admit(f: Flight): Promise<void> {
    const { ctx } = f;
    let requested: string;
    let kind: ModelSpec['kind'];
    let tokensInputEstimate: number;
    let tokensInputBound: number;
    let tokensInputFloorBase: number | undefined;
    let tokensOutputAsked: number | undefined;
    switch (f.op) {
      case 'chat': {
        const req = f.req as ChatRequest;
        const input = chatInputTokens(req);
        requested = req.model;
        kind = 'chat';
        tokensOutputAsked = req.maxTokensOutput;
        tokensInputEstimate = input.estimate;
        tokensInputBound = input.bound;
        tokensInputFloorBase = input.text;
        break;
      }
      case 'completion': {
        const req = f.req as CompletionRequest;
        const prompt = Array.isArray(req.prompt) ? req.prompt.join('\n') : req.prompt;
        const est = estimateTextTokens(prompt);
        requested = req.model;
        kind = 'chat';
        tokensOutputAsked = req.maxTokensOutput;
        tokensInputEstimate = est + 4;
        const b = inputTextBounds(prompt, est);
        tokensInputBound = b.bound + 4;
        tokensInputFloorBase = b.floor + 4;
        break;
      }
      case 'embeddings': {
        const req = f.req as EmbeddingRequest;
        const inputs = typeof req.input === 'string' ? [req.input] : req.input;
        let estimate = 0;
        for (const item of inputs) estimate += typeof item === 'string' ? estimateTextTokens(item) : Array.isArray(item) ? item.length : 1;
        requested = req.model;
        kind = 'embedding';
        tokensOutputAsked = 0;
        tokensInputEstimate = Math.max(1, estimate);
        tokensInputBound = tokensInputEstimate;
        break;
      }
    }
    const auto = parseAutoModel(requested);
    const model = auto === null ? this.#resolveAllowed(ctx, requested) : this.#chooseAuto(ctx, auto, requested, kind, tokensInputEstimate, tokensOutputAsked);
    if (model.kind !== kind) {
      throw new TokenGridError(
        'invalid_request',
        `The model '${requested}' is ${model.kind === 'embedding' ? 'an embedding model' : 'a chat model'} and cannot serve this endpoint.`,
        'model',
      );
    }
    if (tokensInputEstimate > model.contextWindow) {
      throw new TokenGridError(
        'invalid_request',
        `This request has about ${tokensInputEstimate} input tokens, more than the ${model.contextWindow}-token context window of '${model.id}'.`,
        'messages',
      );
    }
    const stream = f.sink !== undefined;
    const tokensOutputMax =
      kind === 'embedding'
        ? 0
        : Math.max(1, Math.min(tokensOutputAsked ?? model.maxOutputTokens, model.maxOutputTokens, model.contextWindow - tokensInputEstimate));
    const limited = this.#admitLimits(ctx, tokensInputEstimate + tokensOutputMax);
    // A shared (Redis) limiter answers with a promise; the local one synchronously, with no await.
    const check = limited instanceof Promise ? await limited : limited;
    if (!check.ok) throw new TokenGridError('rate_limited', check.message, null, { 'retry-after': String(check.retryAfterS) });
    // Reservations sized to need (issue 12, finding 10): a stream asks for a first slice and grows as its output
    // flows; a non-streamed request without max_tokens asks softly (a share of a small balance, the upstream is
    // capped at what was granted); an explicit max_tokens is asked for as is (or the largest affordable part).
    const tokensOutputAsk =
      kind === 'embedding'
        ? undefined
        : stream
          ? Math.min(tokensOutputMax, f.opts.firstSliceTokens ?? f.opts.sliceTokens)
          : tokensOutputAsked === undefined
            ? tokensOutputMax
            : undefined;
    let reserved;
    try {
      // The hold covers the input's upper bound (issue 12, finding 3), so a byte-level tokenizer on CJK text
      // cannot take more than was held.
      reserved = await this.deps.charging.reserve({
        requestId: ctx.requestId,
        accountId: ctx.key.accountId,
        memberId: ctx.key.memberId,
        keyId: ctx.key.id,
        model: model.id,
        tokensInputEstimate: Math.max(tokensInputEstimate, tokensInputBound),
        tokensOutputMax,
        stream,
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
    f.model = model;
    f.reservationId = reserved.value.reservationId;
    f.tokensInputEstimate = tokensInputEstimate;
    f.tokensInputFloorBase = tokensInputFloorBase ?? tokensInputEstimate;
    f.tokensOutputGranted = reserved.value.tokensOutputGranted;
    f.tokensOutputMax = tokensOutputMax;
    // Plan. An empty plan is refused here; the lifecycle's `finally` releases the hold. A request pinned to
    // regions (data residency) is planned only on deployments inside them, fallbacks included.
    const fallbacks = this.#fallbacks(model, kind);
    f.attempts =
      auto === null
        ? planAttempts(model, fallbacks, this.#isAvailable, this.deps.random, f.routeKey, ctx.regions)
        : planAutoAttempts(model, fallbacks, this.#isAvailable, this.#latencyOf, this.deps.random, ctx.regions);
    if (f.attempts.length === 0) {
      if (!servedInRegions([model, ...fallbacks], ctx.regions)) throw notInRegions(model.id, ctx.regions!);
      const where = ctx.regions === undefined ? '' : ` in ${regionWords(ctx.regions)} (this account's data residency)`;
      throw new TokenGridError('no_healthy_deployment', `Every deployment of '${model.id}'${where} is cooling down after failures; try again shortly.`);
    }
    if (f.routeKey !== undefined && auto === null && model.deployments.length > 1) f.serving = { ...f.serving, stickyPrefix: true };
  }

  /**
   * The beforeDispatch stages, in order; the first that answers (the response cache) ends the loop, and the
   * lifecycle meters, settles and delivers its answer instead of dispatching (stages.ts StageAnswer).
   */
  #beforeDispatch(f: Flight): Promise<void> | undefined {
    const hooks = this.#hooks.beforeDispatch;
    for (let i = 0; i < hooks.length; i++) {
      const r = hooks[i]!.beforeDispatch!(f);
      if (r === undefined || r === null) continue;
      // A hook that waits (QoS queueing, a cache lookup on Redis): the rest of the list runs after it, awaited.
      if (typeof (r as PromiseLike<unknown>).then === 'function') return this.#beforeDispatchFrom(f, i, r as Promise<StageAnswer | undefined | void>);
      return this.#serve(f, hooks[i]!, r as StageAnswer);
    }
    return undefined;
  }

  async #beforeDispatchFrom(f: Flight, i: number, first: Promise<StageAnswer | undefined | void>): Promise<void> {
    const hooks = this.#hooks.beforeDispatch;
    for (let j = i; j < hooks.length; j++) {
      const s = hooks[j]!;
      const served = j === i ? await first : await s.beforeDispatch!(f);
      if (served === undefined || served === null) continue;
      return this.#serve(f, s, served);
    }
  }

  /** A stage answered without dispatch (the response cache): the lifecycle meters, settles and delivers it. */
  async #serve(f: Flight, s: Stage, served: StageAnswer): Promise<void> {
    if ((served.kind === 'events') !== (f.sink !== undefined)) {
      throw new TokenGridError('internal_error', `Stage '${s.name}' answered a ${f.sink !== undefined ? 'stream' : 'whole answer'} with the wrong kind.`);
    }
    f.served = served;
    if (served.kind === 'answer') f.answer = served.answer;
    else {
      const events = served.events.slice();
      const pull = new EventPuller({ events: replay(events), batches: replay([events]) });
      while ((f.first = pull.shift()) === undefined && (await pull.fill()));
      f.pull = pull;
    }
  }

  /** One closure for the gateway's life, not one per request. */
  readonly #isAvailable = (deploymentId: string): boolean => this.deps.health.isAvailable(deploymentId);
  readonly #latencyOf = (deploymentId: string): number | undefined => this.deps.latency?.latencyMs(deploymentId);

  /**
   * `model: "auto"` (issue 17 item 1): the model is chosen among the tiered models of this kind the key may
   * use (routing/auto.ts), the package's covered models first. The choice goes out as `x-tokengrid-route`
   * and in a log line with the request id (the usage record keeps the model actually used).
   */
  #chooseAuto(
    ctx: RequestContext,
    policy: AutoPolicy | 'unknown',
    requested: string,
    kind: ModelSpec['kind'],
    tokensInput: number,
    tokensOutput: number | undefined,
  ): ModelSpec {
    if (policy === 'unknown') {
      throw new TokenGridError('model_not_found', `Unknown routing policy '${requested}': use 'auto' (balanced), 'auto:cheap' or 'auto:best'.`, 'model');
    }
    const earlier = ctx.autoRoute;
    // The choice made when the API shell resolved the model is kept, unless the input turned out too large for it.
    if (earlier !== undefined && earlier.requested === requested && earlier.model.kind === kind && earlier.model.contextWindow >= tokensInput)
      return earlier.model;
    const catalog = this.deps.catalog();
    const candidates: ModelSpec[] = [];
    for (const m of catalog.models.values()) {
      if (m.kind === kind && m.tier !== undefined && m.contextWindow >= tokensInput && isModelAllowed(catalog, ctx.key.allowedModels, m)) candidates.push(m);
    }
    const paid = ctx.packageModels;
    const input = {
      policy,
      candidates,
      covered: (m: ModelSpec) => paid === undefined || paid.includes(m.id) || m.groups.some((g) => paid.includes(g) || paid.includes(`group:${g}`)),
      isAvailable: this.#isAvailable,
      latencyMs: this.#latencyOf,
      tokensInput,
      tokensOutput: tokensOutput ?? 512,
      ...(ctx.regions === undefined ? {} : { regions: ctx.regions }),
    };
    const choice = chooseAutoModel(input);
    if (choice === null) {
      if (ctx.regions !== undefined && !servedInRegions(candidates, ctx.regions)) throw notInRegions(requested, ctx.regions);
      throw new TokenGridError(
        'model_not_found',
        `No model this API key may use is available for '${requested}'. GET /v1/models lists the models this key may use.`,
        'model',
      );
    }
    const route = routeHeader(choice);
    // The routing saving's reference (usage record serving.savings.routing): the model `auto:best` would have
    // taken for the same request, i.e. what the caller pays for the top tier it may use without routing.
    const baseline = policy === 'best' ? choice.model : (chooseAutoModel({ ...input, policy: 'best' })?.model ?? choice.model);
    ctx.autoRoute = { requested, model: choice.model, route, baseline };
    if (ctx.res !== undefined && !ctx.res.headersSent) ctx.res.setHeader('x-tokengrid-route', route);
    this.deps.log?.('info', { requestId: ctx.requestId, requested, model: choice.model.id, reason: choice.reason, tier: choice.model.tier }, 'auto route');
    return choice.model;
  }

  #fallbacks(model: ModelSpec, kind: ModelSpec['kind']): readonly ModelSpec[] {
    if (model.fallback.length === 0) return NO_MODELS;
    const catalog = this.deps.catalog();
    return model.fallback.map((id) => catalog.models.get(id)).filter((m): m is ModelSpec => m !== undefined && m.kind === kind);
  }

  /** Rate limits per key and per account (the plan's limits, shared by all the account's keys). */
  #admitLimits(ctx: RequestContext, tokens: number): LimitCheck | Promise<LimitCheck> {
    // A self-minted key counts against its root key's window (issue 12, N1): minting children multiplies nothing.
    return this.deps.limiter.admit(
      ctx.requestId,
      ctx.key.parentKeyId ?? ctx.key.id,
      ctx.key.limits,
      ctx.key.accountId,
      ctx.accountLimits ?? NO_LIMITS,
      tokens,
      this.deps.clock.nowMs(),
    );
  }

  #limitsDone(ctx: RequestContext, estimate: number, actual: number): void {
    this.deps.limiter.done(ctx.requestId, ctx.key.parentKeyId ?? ctx.key.id, ctx.key.accountId, estimate, actual, this.deps.clock.nowMs());
  }

  /**
   * The only retry loop (habit 10): try each planned attempt until one answers. An attempt answers once
   * nothing has reached the client yet (a whole answer, or a stream's first event); a failure after that is
   * the stream pump's to handle.
   */
  async #dispatch(f: Flight): Promise<void> {
    const { ctx } = f;
    let last: unknown;
    let tried = 0;
    for (const attempt of f.attempts) {
      if (ctx.signal.aborted) break;
      const provider = this.deps.providers().get(attempt.deployment.provider);
      if (!provider) continue;
      if (!this.deps.health.tryAcquire(attempt.deployment.id)) continue;
      tried++;
      // The client's own signal aborts the upstream call: no controller per attempt. A failed attempt has
      // already released its upstream request (adapters destroy the body on every error path).
      const upstream: UpstreamCall = {
        provider,
        upstreamModel: attempt.deployment.upstreamModel,
        dispatcher: this.deps.dispatcher,
        signal: ctx.signal,
        requestId: ctx.requestId,
        timeoutMsHeaders: this.deps.timeoutMsUpstreamHeaders,
        timeoutMsBody: this.deps.timeoutMsUpstreamBody,
      };
      try {
        f.answer = await this.#call(f, this.deps.adapters[provider.adapter], upstream);
        this.deps.health.recordSuccess(attempt.deployment.id);
        f.attempt = attempt;
        f.provider = provider;
        return;
      } catch (e) {
        last = e;
        if (ctx.signal.aborted) {
          this.deps.health.release(attempt.deployment.id);
          break;
        }
        const kind = e instanceof UpstreamError ? e.kind : 'internal';
        this.deps.metrics.upstreamError(provider.name, kind);
        this.deps.log?.(
          'warn',
          { requestId: ctx.requestId, deployment: attempt.deployment.id, kind, status: (e as UpstreamError).status, err: (e as Error).message },
          'upstream attempt failed',
        );
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
    if (tried === 0)
      throw new TokenGridError('no_healthy_deployment', `Every deployment of '${f.model.id}' is cooling down after failures; try again shortly.`);
    throw upstreamFailure(last, tried);
  }

  /** One upstream call for this operation: the whole answer, or a stream opened up to its first event. */
  #call(f: Flight, adapter: ProviderAdapter, upstream: UpstreamCall): Promise<unknown> {
    switch (f.op) {
      case 'chat': {
        const req = f.req as ChatRequest;
        f.sentUpstream = true;
        if (f.sink === undefined) return adapter.chat(upstream, this.#upstreamChatRequest(f.ctx, req, upstream.provider, f.tokensOutputGranted));
        return this.#open(f, adapter.chatStream(upstream, this.#upstreamChatRequest(f.ctx, req, upstream.provider, f.tokensOutputMax)));
      }
      case 'completion': {
        const req = f.req as CompletionRequest;
        if (f.sink === undefined) {
          if (!adapter.completion) throw noLegacyCompletions(req.model);
          f.sentUpstream = true;
          return adapter.completion(upstream, {
            ...req,
            maxTokensOutput: f.tokensOutputGranted,
            extra: f.ctx.family === 'openai' && upstream.provider.adapter === 'openai-compatible' ? req.extra : {},
          });
        }
        f.sentUpstream = true;
        if (!adapter.completionStream) return Promise.reject(noLegacyCompletions(req.model));
        return this.#open(
          f,
          adapter.completionStream(upstream, {
            ...req,
            includeUsage: true,
            maxTokensOutput: f.tokensOutputMax,
            extra: upstream.provider.adapter === 'openai-compatible' ? req.extra : {},
          }),
        );
      }
      case 'embeddings': {
        const req = f.req as EmbeddingRequest;
        if (!adapter.embeddings) throw new TokenGridError('invalid_request', `The upstream of '${req.model}' does not serve embeddings.`, 'model');
        return adapter.embeddings(upstream, { ...req, extra: upstream.provider.adapter === 'openai-compatible' ? req.extra : {} });
      }
    }
  }

  /** The first event decides a stream's attempt: until it arrives nothing has reached the client, so a failure may retry. */
  async #open(f: Flight, started: Promise<UpstreamStream>): Promise<undefined> {
    const pull = new EventPuller(await started);
    try {
      let first: StreamEvent | undefined;
      while ((first = pull.shift()) === undefined && (await pull.fill()));
      f.pull = pull;
      f.first = first;
      return undefined;
    } catch (e) {
      await pull.return().catch(ignore);
      throw e;
    }
  }

  /** Extras only cross to an upstream of the same wire family; elsewhere they would be unknown fields. */
  #upstreamChatRequest(ctx: RequestContext, req: ChatRequest, provider: ProviderConfig, maxTokens: number): ChatRequest {
    const sameFamily = FAMILY_ADAPTER[ctx.family] === provider.adapter;
    return { ...req, maxTokensOutput: maxTokens, includeUsage: true, extra: sameFamily ? req.extra : {} };
  }

  /** Meter a whole answer: usage as reported (or estimated), the answer cut at the grant when the upstream ignored it. */
  #meterAnswer(f: Flight): void {
    if (this.#hooks.onAnswer.length !== 0) {
      for (const s of this.#hooks.onAnswer) f.answer = s.onAnswer!(f, f.answer as ChatResponse | CompletionResponse | EmbeddingResponse);
    }
    switch (f.op) {
      case 'chat': {
        let res = f.answer as ChatResponse;
        const reported = res.usage.tokensInput > 0 || res.usage.tokensOutput > 0;
        let generated = meterChatAnswer(res);
        let usage = reported ? res.usage : { ...zeroUsage(), tokensInput: f.tokensInputEstimate, tokensOutput: generated };
        let estimated = !reported || res.usageEstimated === true;
        // What was delivered counts even when the upstream reports less (issue 12 attack report F1, F8). Tool
        // results an Anthropic upstream relays (web search) are not output an honest max_tokens limits: they do
        // not trigger the cut, but once cutting they take their place in the budget (meter.ts cutChatAtGrant).
        if (Math.max(usage.tokensOutput, generated) > f.tokensOutputGranted) {
          // The upstream ignored max_tokens (issue 12, finding 2): the answer is cut at the grant, as a stream is,
          // and only what is delivered is charged.
          res = cutChatAtGrant(res, f.tokensOutputGranted);
          generated = meterChatAnswer(res);
          const delivered = generated;
          usage = { ...usage, tokensOutput: Math.min(usage.tokensOutput, delivered), tokensReasoning: Math.min(usage.tokensReasoning, delivered) };
          estimated = true;
          f.status = 'truncated';
          this.deps.log?.(
            'warn',
            {
              requestId: f.ctx.requestId,
              model: f.model.id,
              provider: f.provider?.name ?? f.served?.source,
              granted: f.tokensOutputGranted,
              reported: res.usage.tokensOutput,
              delivered,
            },
            'upstream ignored max_tokens: answer cut at the grant',
          );
        }
        f.usage = usage;
        f.usageEstimated = estimated;
        this.#floor(f, generated);
        usage = f.usage;
        estimated = f.usageEstimated;
        // The adapter's response is this request's own: copied only when the usage changed.
        f.answer = usage === res.usage ? res : { ...res, usage, usageEstimated: estimated };
        return;
      }
      case 'completion': {
        let res = f.answer as CompletionResponse;
        const reported = res.usage.tokensInput > 0 || res.usage.tokensOutput > 0;
        let usage = reported ? res.usage : { ...zeroUsage(), tokensInput: f.tokensInputEstimate, tokensOutput: meterCompletionAnswer(res) };
        let estimated = !reported;
        if (usage.tokensOutput > f.tokensOutputGranted) {
          res = cutCompletionAtGrant(res, f.tokensOutputGranted);
          usage = { ...usage, tokensOutput: Math.min(usage.tokensOutput, meterCompletionAnswer(res)) };
          estimated = true;
          f.status = 'truncated';
        }
        f.usage = usage;
        f.usageEstimated = estimated;
        this.#floor(f, meterCompletionAnswer(res));
        f.answer = { ...res, usage: f.usage };
        return;
      }
      case 'embeddings': {
        const res = f.answer as EmbeddingResponse;
        const reported = res.usage.tokensInput > 0;
        const usage = reported ? res.usage : { ...zeroUsage(), tokensInput: f.tokensInputEstimate };
        f.usage = usage;
        f.usageEstimated = !reported;
        this.#floor(f, 0);
        f.answer = { ...res, usage: f.usage };
        return;
      }
    }
  }

  /**
   * A stream after its first event: forward events as they arrive, the meter (meter.ts) deciding for each
   * whether to deliver it, extend the reservation first, or end the stream at the grant; settle before the
   * final bytes.
   */
  async #pump(f: Flight, sink: StreamSink): Promise<void> {
    const { ctx } = f;
    const pull = f.pull!;
    // A stage's replayed answer (the response cache) has no provider: its source names it.
    const provider = f.provider ?? { name: f.served!.source };
    const ttftMs = this.deps.now() - ctx.startedAt;
    this.deps.metrics.ttft(f.model.id, provider.name, ttftMs / 1000);
    this.deps.metrics.streamOpened();
    sink.open();

    const meter = new StreamMeter(f.tokensOutputGranted, f.tokensOutputMax, f.opts.extendAtFraction);
    const staged = this.#hooks.onEvent.length !== 0;
    let failure: { code: ErrorCode; message: string } | undefined;
    // Events a stage emitted beyond the one it was given (already staged: not passed to the stages again).
    let queued: StreamEvent[] | undefined;
    let restaged = false;
    try {
      let ev = f.first;
      for (;;) {
        if (ev === undefined) {
          if (!(await pull.fill())) break;
          ev = pull.shift();
          continue;
        }
        if (restaged) restaged = false;
        else if (staged) {
          const out = this.#onEvent(f, ev);
          if (out === null) {
            ev = pull.shift();
            continue;
          }
          if (Array.isArray(out)) {
            if (out.length === 0) {
              ev = pull.shift();
              continue;
            }
            ev = out[0]!;
            if (out.length > 1) queued = out.slice(1);
          } else ev = out;
        }
        let step = meter.onEvent(ev);
        if (step === 'extend') {
          // Revocation, expiry and suspension reach running streams here, within one slice (issue 12, finding 6).
          const still = this.deps.keys?.recheck(ctx.key, this.deps.clock.nowMs());
          if (still !== undefined && !still.ok) {
            f.status = 'truncated';
            failure = { code: still.code, message: `${still.message} The stream was stopped; the output so far was delivered and is the only part charged.` };
            await pull.return().catch(ignore);
            break;
          }
          const ext = await this.deps.charging.extend({ reservationId: f.reservationId, tokensOutputMore: f.opts.sliceTokens });
          step = meter.extended(ext.ok ? ext.value : null);
        }
        if (step === 'truncate') {
          // Out of balance: end the stream cleanly at the grant, as a carrier ends a call when credit runs out.
          f.status = 'truncated';
          await pull.return().catch(ignore); // stops reading: the adapter destroys the upstream body
          meter.closedByGateway();
          if (!sink.write({ type: 'finish', finishReason: 'length' })) await sink.drain();
          break;
        }
        meter.delivered(ev);
        // The upstream's usage event is held back: re-emitted once, after settlement decides the final figures.
        if (ev.type !== 'usage' && !sink.write(ev)) await sink.drain();
        if (ctx.signal.aborted) break;
        if (queued !== undefined) {
          ev = queued.shift();
          restaged = true;
          if (queued.length === 0) queued = undefined;
        } else ev = pull.shift();
      }
      if (!meter.finished && f.status === 'ok' && !ctx.signal.aborted) {
        // The upstream ended without a finish event (the adapter would have thrown on a true disconnect).
        meter.closedByGateway();
        if (!sink.write({ type: 'finish', finishReason: 'stop' })) await sink.drain();
      }
    } catch (e) {
      if (ctx.signal.aborted || (e instanceof UpstreamError && e.kind === 'aborted')) {
        f.status = 'client_aborted';
      } else {
        f.status = e instanceof UpstreamError && e.kind === 'timeout' ? 'timeout' : 'upstream_error';
        const kind = e instanceof UpstreamError ? e.kind : 'internal';
        this.deps.metrics.upstreamError(provider.name, kind);
        this.deps.log?.(
          'warn',
          { requestId: ctx.requestId, deployment: f.attempt?.deployment.id ?? provider.name, kind, err: (e as Error).message },
          'upstream stream failed after the first byte',
        );
        failure = {
          code: f.status === 'timeout' ? 'upstream_timeout' : 'upstream_error',
          message: `The upstream stream failed after it started (${kind}); the output so far was delivered and is the only part charged.`,
        };
      }
    } finally {
      // When we stopped reading early (client gone, error), return() makes the adapter destroy the upstream body;
      // after a normal end it is a no-op. (No AbortController here: abort() builds a DOMException with a stack.)
      if (f.status !== 'ok' || ctx.signal.aborted) await pull.return().catch(ignore);
    }
    if (ctx.signal.aborted) f.status = 'client_aborted';

    f.usage = meter.usage(f.status, f.tokensInputEstimate);
    f.usageEstimated = !meter.reported(f.status);
    // A report far below what was sent and delivered is raised to the floor (issue 12 attack report F8).
    this.#floor(f, meter.generated);
    f.ttftMs = Math.round(ttftMs);
    f.settling = true;
    try {
      await this.settle(f);
    } finally {
      this.deps.metrics.streamClosed();
    }
    if (this.#hooks.afterSettle.length !== 0) this.#afterSettle(f);
    if (f.status === 'client_aborted') return;
    if (failure) {
      sink.fail(failure.code, failure.message);
      return;
    }
    sink.write({ type: 'usage', usage: f.usage });
    sink.close();
  }

  /**
   * The usage floor of issue 12 F8 (src/wire/estimate.ts floorUsage), applied where the lifecycle has the
   * usage to settle: f.usage stays the same object when the report stood; otherwise it is raised, flagged
   * estimated, counted in /metrics and logged. `tokensOutputDelivered`: what the model generated and the
   * client was sent (relayed tool results excluded).
   */
  #floor(f: Flight, tokensOutputDelivered: number): void {
    const reported = f.usage;
    const r = floorUsage(reported, f.tokensInputFloorBase, tokensOutputDelivered);
    if (r.floored === undefined) return;
    f.usage = r.usage;
    f.usageEstimated = true;
    this.deps.metrics.usageFloored?.(f.model.id, r.floored);
    this.deps.log?.(
      'warn',
      {
        requestId: f.ctx.requestId,
        accountId: f.ctx.key.accountId,
        model: f.model.id,
        provider: f.provider?.name ?? 'none',
        floored: r.floored,
        reported,
        tokensInputFloorBase: f.tokensInputFloorBase,
        tokensOutputDelivered,
        charged: r.usage,
      },
      'upstream usage below the gateway floor: the floor is charged',
    );
  }

  #onEvent(f: Flight, ev: StreamEvent): StreamEvent | StreamEvent[] | null {
    let out: StreamEvent | StreamEvent[] | null = ev;
    for (const s of this.#hooks.onEvent) {
      if (Array.isArray(out)) {
        const next: StreamEvent[] = [];
        for (const e of out) {
          const r = s.onEvent!(f, e);
          if (r === null) continue;
          if (Array.isArray(r)) next.push(...r);
          else next.push(r);
        }
        out = next;
      } else out = s.onEvent!(f, out);
      if (out === null) return null;
    }
    return out;
  }

  #onEnd(f: Flight): void {
    for (const s of this.#hooks.onEnd) {
      try {
        s.onEnd!(f);
      } catch (e) {
        this.deps.log?.('error', { err: e, requestId: f.ctx.requestId, stage: s.name }, 'stage onEnd failed');
      }
    }
  }

  #afterSettle(f: Flight): void {
    for (const s of this.#hooks.afterSettle) {
      try {
        s.afterSettle!(f);
      } catch (e) {
        this.deps.log?.('error', { err: e, requestId: f.ctx.requestId, stage: s.name }, 'stage afterSettle failed');
      }
    }
  }

  /**
   * A request that ends without a settlement. The rule (docs/errors.md, "Charging rules"): nothing reached an
   * upstream, or the upstream failed -> the hold is released, nothing is charged; the client went away after
   * the request was sent upstream -> the upstream has read the prompt and bills it, so its input estimate is
   * charged (status client_aborted; output is unknown: the call was aborted).
   */
  async #abandon(f: Flight, e: unknown): Promise<void> {
    if (f.sentUpstream && f.ctx.signal.aborted && (isClientAbort(e) || e instanceof UpstreamError)) {
      f.attempt = undefined;
      f.provider = undefined;
      f.usage = { ...zeroUsage(), tokensInput: f.tokensInputEstimate };
      f.usageEstimated = true;
      f.status = 'client_aborted';
      f.ttftMs = null;
      f.settling = true;
      try {
        await this.settle(f);
      } catch (err) {
        this.deps.log?.('error', { err, requestId: f.ctx.requestId }, 'charging settle of an abandoned request failed');
        return;
      }
      if (this.#hooks.afterSettle.length !== 0) this.#afterSettle(f);
      return;
    }
    this.#limitsDone(f.ctx, f.tokensInputEstimate + f.tokensOutputMax, 0);
    await this.deps.charging
      .void(f.reservationId)
      .catch((err: unknown) => this.deps.log?.('error', { err, requestId: f.ctx.requestId }, 'charging void failed'));
  }

  /**
   * charging.settle, with a store failure (a database restart, issue 15) turned into 503 charging_unavailable: the
   * answer is not delivered (settle comes before the last byte) and says so plainly; the hold stays open until the
   * sweeper expires it.
   */
  async #chargeSettle(input: Parameters<ChargingPort['settle']>[0]): ReturnType<ChargingPort['settle']> {
    try {
      return await this.deps.charging.settle(input);
    } catch (e) {
      if (e instanceof TokenGridError) throw e;
      this.deps.log?.('error', { err: e, requestId: input.requestId }, 'charging settle failed');
      throw new TokenGridError('charging_unavailable', 'The charging system is unavailable; the answer was not delivered. Please retry.');
    }
  }

  /** Settle the reservation with the actual usage and write the usage record (durable before the caller answers). */
  async settle(s: Settlement): Promise<void> {
    const { ctx, usage } = s;
    const latencyMs = Math.round(this.deps.now() - ctx.startedAt);
    const deployment = s.attempt?.deployment;
    const model = s.attempt?.model ?? s.model;
    const provider = s.provider?.name ?? s.served?.source ?? 'none';
    // A stage's answer (the response cache) cost the vendor nothing; it is charged at its own ratio.
    const vendorCost = s.served === undefined ? vendorCostMicros(model, usage) : 0;
    this.#limitsDone(ctx, s.tokensInputEstimate + s.tokensOutputMax, usage.tokensInput + usage.tokensOutput);
    const rec = await this.#chargeSettle({
      reservationId: s.reservationId,
      requestId: ctx.requestId,
      usage,
      usageEstimated: s.usageEstimated,
      status: s.status,
      provider,
      upstreamModel: deployment?.upstreamModel ?? '',
      region: deployment?.region ?? '',
      deploymentId: deployment?.id ?? '',
      latencyMs,
      ttftMs: s.ttftMs,
      vendorCostMicros: vendorCost,
      ...(ctx.clientRequestId === undefined ? {} : { clientRequestId: ctx.clientRequestId }),
      ...servingOf(s, s.served === undefined && usage.tokensCachedInput > 0 ? promptCacheSaving(model, usage, vendorCost) : 0),
      ...(s.served?.chargeRatio === undefined ? {} : { chargeRatio: s.served.chargeRatio }),
    });
    if (deployment !== undefined && s.status === 'ok' && model.tier !== undefined) this.deps.latency?.observe(deployment.id, latencyMs, s.ttftMs);
    this.deps.metrics.tokens(s.model.id, provider, usage);
    if (usage.serverToolRequests !== undefined && usage.serverToolRequests > 0) {
      // Billed per request by the vendor, not priced here yet (issue 12 attack report F8): counted and logged.
      this.deps.metrics.serverToolRequests?.(s.model.id, provider, usage.serverToolRequests);
      this.deps.log?.(
        'warn',
        { requestId: ctx.requestId, accountId: ctx.key.accountId, model: s.model.id, serverToolRequests: usage.serverToolRequests },
        'server-tool requests billed by the upstream are not priced',
      );
    }
    const leakCoins = rec?.leakCoins ?? 0;
    if (leakCoins > 0) {
      // Delivered and not paid (issue 12, finding 2): counted, logged at warn, shown per account (usage summary).
      this.deps.metrics.leak?.(s.model.id, leakCoins);
      this.deps.log?.(
        'warn',
        {
          requestId: ctx.requestId,
          clientRequestId: ctx.clientRequestId,
          accountId: ctx.key.accountId,
          model: s.model.id,
          leakCoins,
          tokensInputReserved: s.tokensInputEstimate,
          tokensOutputGranted: s.tokensOutputGranted,
          usage,
          status: s.status,
        },
        'charging leak: usage beyond what the buckets could pay',
      );
    }
  }
}

/** What settle needs, by name: the admission, the attempt that answered (none when abandoned), and the outcome. */
export interface Settlement {
  readonly ctx: RequestContext;
  /** The admitted model (the attempt's model may be a fallback). */
  readonly model: ModelSpec;
  readonly reservationId: string;
  readonly tokensInputEstimate: number;
  readonly tokensOutputMax: number;
  readonly tokensOutputGranted: number;
  readonly attempt: Attempt | undefined;
  readonly provider: ProviderConfig | undefined;
  readonly usage: Usage;
  readonly usageEstimated: boolean;
  readonly status: RequestStatus;
  readonly ttftMs: number | null;
  /** What stages did (issue 17); the auto route is added here. */
  readonly serving?: ServingNote | undefined;
  /** A stage answered without dispatch (the response cache): vendor cost 0, charged at its ratio. */
  readonly served?: StageAnswer | undefined;
}

/**
 * One request in flight: the lifecycle's only per-request object. It carries the admission (model,
 * reservation, plan), the attempt that answered, the answer or the opened stream, and the settlement; it is
 * the Settlement passed to settle and the view stages see.
 */
class Flight implements FlightView, Settlement {
  model!: ModelSpec;
  reservationId = '';
  tokensInputEstimate = 0;
  /**
   * The base the usage floor applies to (issue 12 F8, attack round 2 N2): for chat and completions, floorTextTokens
   * of each text (estimate or ASCII bound, the larger) plus framing, not the fixed per-image charge (a low-detail
   * image really costs far less); for embeddings the estimate.
   */
  tokensInputFloorBase = 0;
  tokensOutputGranted = 0;
  tokensOutputMax = 0;
  attempts: Attempt[] = NO_ATTEMPTS;
  attempt: Attempt | undefined = undefined;
  provider: ProviderConfig | undefined = undefined;
  /** The request reached an upstream (it has read the prompt): an abandoned request is charged its input. */
  sentUpstream = false;
  /** Settlement has begun: the lifecycle's `finally` does not release the hold. */
  settling = false;
  /** A whole answer (adapter's, then metered), or undefined for a stream. */
  answer: unknown = undefined;
  pull: EventPuller | undefined = undefined;
  first: StreamEvent | undefined = undefined;
  usage!: Usage;
  usageEstimated = false;
  status: RequestStatus = 'ok';
  ttftMs: number | null = null;
  serving: ServingNote | undefined = undefined;
  routeKey: string | undefined = undefined;
  /** Set when a beforeDispatch stage answered (no dispatch). */
  served: StageAnswer | undefined = undefined;
  readonly stream: boolean;
  constructor(
    readonly ctx: RequestContext,
    readonly op: Operation,
    public req: ChatRequest | CompletionRequest | EmbeddingRequest,
    readonly sink: StreamSink | undefined,
    readonly opts: StreamOptions,
  ) {
    this.stream = sink !== undefined;
  }
}

/**
 * The usage record's `serving` note: the stages' note plus `model: "auto"`'s route and the vendor prompt cache's
 * saving (issue 17 item 5); nothing for a plain request.
 */
function servingOf(s: Settlement, promptCacheMicros: number): { serving?: ServingNote } {
  const auto = s.ctx.autoRoute;
  const route = auto?.route;
  let note = s.serving;
  // model: "auto" (issue 17 item 1): the vendor cost the choice saved against the top-tier model it could have
  // taken (`auto:best`), on the same usage; nothing when it took that model or the request did not end ok.
  if (auto !== undefined && auto.baseline !== auto.model && s.status === 'ok' && s.attempt?.model === auto.model && note?.cache !== 'hit') {
    const saved = vendorCostMicros(auto.baseline, s.usage) - vendorCostMicros(auto.model, s.usage);
    if (saved > 0) note = { ...note, savings: { ...note?.savings, routing: saved } };
  }
  // `stored` stands only for an answer that really filled the cache: a request that ended otherwise did not.
  if (note?.cache === 'stored' && s.status !== 'ok') {
    const { cache: _, ...rest } = note;
    note = rest;
  }
  if (promptCacheMicros > 0) note = { ...note, savings: { ...note?.savings, prompt_cache: promptCacheMicros } };
  if (note === undefined) return route === undefined ? {} : { serving: { route } };
  return { serving: route === undefined ? note : { route, ...note } };
}

/** Vendor cost the upstream's prompt cache saved: the same usage with no cached tokens, minus what it cost. */
function promptCacheSaving(model: ModelSpec, usage: Usage, vendorCost: number): number {
  return Math.max(0, vendorCostMicros(model, { ...usage, tokensCachedInput: 0 }) - vendorCost);
}

/** A stage's stored events as an async iterable (a cache replay). */
async function* replay<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

const NO_ATTEMPTS: Attempt[] = [];
const NO_STAGES: readonly Stage[] = Object.freeze([]);
const ignore = (): undefined => undefined;

function noLegacyCompletions(model: string): TokenGridError {
  return new TokenGridError('invalid_request', `The model '${model}' does not support the legacy completions endpoint; use /v1/chat/completions.`, 'model');
}

function regionWords(regions: readonly string[]): string {
  return regions.length === 0 ? 'no region' : regions.length === 1 ? `region ${regions[0]}` : `regions ${regions.join(', ')}`;
}

function notInRegions(model: string, regions: readonly string[]): TokenGridError {
  const where = regionWords(regions);
  return new TokenGridError(
    'no_deployment_in_region',
    `This account's requests must stay in ${where} (data residency), and '${model}' has no deployment there. Choose a model served in ${where}.`,
    'model',
  );
}
