import { TokenGridError, type ErrorCode } from '../core/index.ts';
import { UpstreamError, type UpstreamStream } from '../providers/index.ts';
import { boundTextTokens, chatInputTokens, estimateTextTokens, TextMeter, zeroUsage, type ChatRequest, type CompletionRequest, type StreamEvent, type Usage } from '../wire/index.ts';
import { anthropicBlockTokens, flooredUsage, type Admission, type Gateway, type Served } from './gateway.ts';
import type { RequestContext, RequestStatus } from './ports.ts';

/** Where a stream goes: implemented by the HTTP shell with the client's API family encoder. */
export interface StreamSink {
  /** Called once, right before the first event: the shell sends status 200 and the SSE headers. */
  open(): void;
  /** Write one event; false when the socket buffer is full (then await drain()). */
  write(ev: StreamEvent): boolean;
  drain(): Promise<void>;
  /** An error after the first byte: the shell writes an error frame in its family's format. */
  fail(code: ErrorCode, message: string): void;
  /** Final bytes ([DONE] / message_stop) and end of the response. Called after settlement. */
  close(): void;
}

export interface StreamOptions {
  /** Ask for another slice when this fraction of the granted output is used (Volume-Quota-Threshold). */
  extendAtFraction: number;
  /** Output tokens asked for by each extension. */
  sliceTokens: number;
  /**
   * Output tokens held at admission (a soft ask: at most a share of a small balance); the stream grows by
   * extensions as output flows, and each extension re-checks the key and the account (issue 12, findings 6, 10).
   */
  firstSliceTokens?: number;
}

export const defaultStreamOptions: StreamOptions = { extendAtFraction: 0.8, sliceTokens: 4096, firstSliceTokens: 512 };

/**
 * A streamed chat: admit, dispatch until an upstream produces its first event (retries allowed until then),
 * then forward events as they arrive, metering output, extending the reservation as it is used, cutting the
 * stream cleanly when nothing more can be granted, and settling before the final bytes.
 */
export async function chatStream(gw: Gateway, ctx: RequestContext, req: ChatRequest, sink: StreamSink, opts: StreamOptions = defaultStreamOptions): Promise<void> {
  const input = chatInputTokens(req);
  const a = await gw.admit(ctx, req.model, 'chat', input.estimate, req.maxTokensOutput, true, input.bound, opts.firstSliceTokens ?? opts.sliceTokens);
  a.tokensInputFloorBase = input.text;
  await runStream(gw, ctx, a, sink, opts, (adapter, upstream) =>
    adapter.chatStream(upstream, gw.upstreamChatRequest(ctx, req, upstream.provider, a.tokensOutputMax)));
}

export async function completionStream(gw: Gateway, ctx: RequestContext, req: CompletionRequest, sink: StreamSink, opts: StreamOptions = defaultStreamOptions): Promise<void> {
  const prompt = Array.isArray(req.prompt) ? req.prompt.join('\n') : req.prompt;
  const est = estimateTextTokens(prompt);
  const a = await gw.admit(ctx, req.model, 'chat', est + 4, req.maxTokensOutput, true, boundTextTokens(prompt, est) + 4, opts.firstSliceTokens ?? opts.sliceTokens);
  await runStream(gw, ctx, a, sink, opts, (adapter, upstream) => {
    if (!adapter.completionStream) throw new TokenGridError('invalid_request', `The model '${req.model}' does not support the legacy completions endpoint; use /v1/chat/completions.`, 'model');
    return adapter.completionStream(upstream, { ...req, includeUsage: true, maxTokensOutput: a.tokensOutputMax, extra: upstream.provider.adapter === 'openai-compatible' ? req.extra : {} });
  });
}

/**
 * The adapter's events, pulled one upstream read at a time when it offers batches (one promise per read,
 * not one per event), otherwise one event at a time.
 */
class EventPuller {
  #buf: StreamEvent[] = [];
  #i = 0;
  readonly #batches: AsyncIterator<StreamEvent[]> | undefined;
  readonly #events: AsyncIterator<StreamEvent> | undefined;

  constructor(s: UpstreamStream) {
    if (s.batches !== undefined) this.#batches = s.batches[Symbol.asyncIterator]();
    else this.#events = s.events[Symbol.asyncIterator]();
  }

  /** The next buffered event, or undefined when the buffer is used up (then await fill()). */
  shift(): StreamEvent | undefined {
    return this.#i < this.#buf.length ? this.#buf[this.#i++] : undefined;
  }

  /** Read the next upstream group of events; false at the end of the stream. */
  async fill(): Promise<boolean> {
    if (this.#batches !== undefined) {
      const r = await this.#batches.next();
      if (r.done === true) return false;
      this.#buf = r.value;
    } else {
      const r = await this.#events!.next();
      if (r.done === true) return false;
      this.#buf = [r.value];
    }
    this.#i = 0;
    return true;
  }

  /** Stop reading: the adapter destroys the upstream body. */
  async return(): Promise<void> {
    await (this.#batches ?? this.#events)?.return?.();
  }
}

interface Delivery {
  /** The upstream's usage event, held back: re-emitted once, after settlement decides the final figures. */
  upstreamUsage: Usage | undefined;
  finished: boolean;
}

/** Deliver one event to the sink; false when the sink wants a drain() first. */
function deliver(sink: StreamSink, d: Delivery, ev: StreamEvent): boolean {
  if (ev.type === 'usage') {
    d.upstreamUsage = ev.usage;
    return true;
  }
  if (ev.type === 'finish') d.finished = true;
  return sink.write(ev);
}

async function runStream(
  gw: Gateway, ctx: RequestContext, a: Admission, sink: StreamSink, opts: StreamOptions,
  start: Parameters<Gateway['dispatch']>[2] extends (...args: infer P) => unknown ? (...args: P) => Promise<UpstreamStream> : never,
): Promise<void> {
  const now = gw.deps.now;
  let served: Served<{ pull: EventPuller; first: StreamEvent | undefined }>;
  const sent = { upstream: false };
  try {
    served = await gw.dispatch(ctx, a, async (adapter, upstream, attempt) => {
      sent.upstream = true;
      const pull = new EventPuller(await start(adapter, upstream, attempt));
      try {
        // The first event decides the attempt: until it arrives nothing has reached the client, so a failure may retry.
        let first: StreamEvent | undefined;
        while ((first = pull.shift()) === undefined && await pull.fill());
        return { pull, first };
      } catch (e) {
        await pull.return().catch(() => undefined);
        throw e;
      }
    });
  } catch (e) {
    // A client gone after the request reached an upstream is charged its input (the same rule as non-streamed).
    await gw.abandoned(ctx, a, sent.upstream, e);
    throw e;
  }
  const { pull } = served.value;
  const ttftMs = now() - ctx.startedAt;
  gw.deps.metrics.ttft(a.model.id, served.provider.name, ttftMs / 1000);
  gw.deps.metrics.streamOpened();
  sink.open();

  let granted = a.tokensOutputGranted;
  let final = granted >= a.tokensOutputMax;
  let metered = 0;
  let status: RequestStatus = 'ok';
  let failure: { code: ErrorCode; message: string } | undefined;
  let extendAt = Math.floor(granted * opts.extendAtFraction);

  // What was delivered so far (a plain object and a module function: no closure per stream).
  const d: Delivery = { upstreamUsage: undefined, finished: false };
  // Output is metered over the accumulated text, not chunk by chunk (issue 12, finding 4).
  const textMeter = new TextMeter();
  let argsMeter: TextMeter | undefined;
  let textTokens = 0;
  let argsTokens = 0;
  let toolStarts = 0;
  // Verbatim Anthropic blocks (redacted_thinking, server_tool_use, *_tool_result) count against the grant;
  // tool results are relayed, not generated, so they stay out of the usage floor's delivered output.
  let blockTokens = 0;
  let resultTokens = 0;

  try {
    let ev = served.value.first;
    for (;;) {
      if (ev === undefined) {
        if (!(await pull.fill())) break;
        ev = pull.shift();
        continue;
      }
      if (ev.type === 'reasoning' && ev.block !== undefined) {
        const n = anthropicBlockTokens(ev.block);
        blockTokens += n;
        if (typeof ev.block['type'] === 'string' && ev.block['type'].endsWith('_tool_result')) resultTokens += n;
      }
      if (ev.type === 'text' || ev.type === 'reasoning') textTokens = textMeter.add(ev.text);
      else if (ev.type === 'tool_call_delta') argsTokens = (argsMeter ??= new TextMeter()).add(ev.argumentsDelta);
      else if (ev.type === 'tool_call_start') toolStarts++;
      const evTokens = textTokens + argsTokens + 3 * toolStarts + blockTokens - metered;
      if (!final && metered + evTokens >= extendAt) {
        // Revocation, expiry and suspension reach running streams here, within one slice (issue 12, finding 6).
        const still = gw.deps.keys?.recheck(ctx.key, gw.deps.clock.nowMs());
        if (still !== undefined && !still.ok) {
          status = 'truncated';
          failure = { code: still.code, message: `${still.message} The stream was stopped; the output so far was delivered and is the only part charged.` };
          await pull.return().catch(() => undefined);
          break;
        }
        const ext = await gw.deps.charging.extend({ reservationId: a.reservationId, tokensOutputMore: opts.sliceTokens });
        if (ext.ok) {
          granted = ext.value.tokensOutputGranted;
          final = ext.value.final || granted >= a.tokensOutputMax;
          extendAt = Math.floor(granted * opts.extendAtFraction);
        } else {
          final = true;
        }
      }
      if (final && metered + evTokens > granted && !d.finished) {
        // Out of balance: end the stream cleanly at the grant, as a carrier ends a call when credit runs out.
        // The event that would cross the grant is not delivered, so `metered` (what was delivered) is charged.
        status = 'truncated';
        await pull.return().catch(() => undefined); // stops reading: the adapter destroys the upstream body
        if (!deliver(sink, d, { type: 'finish', finishReason: 'length' })) await sink.drain();
        break;
      }
      if (!deliver(sink, d, ev)) await sink.drain();
      metered += evTokens;
      if (ctx.signal.aborted) break;
      ev = pull.shift();
    }
    if (!d.finished && status === 'ok' && !ctx.signal.aborted) {
      // The upstream ended without a finish event (the adapter would have thrown on a true disconnect).
      if (!deliver(sink, d, { type: 'finish', finishReason: 'stop' })) await sink.drain();
    }
  } catch (e) {
    if (ctx.signal.aborted || (e instanceof UpstreamError && e.kind === 'aborted')) {
      status = 'client_aborted';
    } else {
      status = e instanceof UpstreamError && e.kind === 'timeout' ? 'timeout' : 'upstream_error';
      const kind = e instanceof UpstreamError ? e.kind : 'internal';
      gw.deps.metrics.upstreamError(served.provider.name, kind);
      gw.deps.log?.('warn', { requestId: ctx.requestId, deployment: served.attempt.deployment.id, kind, err: (e as Error).message }, 'upstream stream failed after the first byte');
      failure = { code: status === 'timeout' ? 'upstream_timeout' : 'upstream_error', message: `The upstream stream failed after it started (${kind}); the output so far was delivered and is the only part charged.` };
    }
  } finally {
    // When we stopped reading early (client gone, error), return() makes the adapter destroy the upstream body;
    // after a normal end it is a no-op. (No AbortController here: abort() builds a DOMException with a stack.)
    if (status !== 'ok' || ctx.signal.aborted) await pull.return().catch(() => undefined);
  }
  if (ctx.signal.aborted) status = 'client_aborted';

  const upstreamUsage = d.upstreamUsage;
  const complete = status === 'ok' && upstreamUsage !== undefined && (upstreamUsage.tokensInput > 0 || upstreamUsage.tokensOutput > 0);
  const told: Usage = complete ? upstreamUsage! : { ...zeroUsage(), ...upstreamUsage, tokensInput: upstreamUsage?.tokensInput || a.tokensInputEstimate, tokensOutput: Math.max(upstreamUsage?.tokensOutput ?? 0, metered) };
  // A report far below what was sent and delivered is raised to the floor (issue 12 attack report F8).
  const usage = flooredUsage(gw, ctx, a, served.provider.name, told, metered - resultTokens);
  try {
    await gw.settle(ctx, a, served, usage, !complete || usage !== told, status, Math.round(ttftMs));
  } finally {
    gw.deps.metrics.streamClosed();
  }
  if (status === 'client_aborted') return;
  if (failure) {
    sink.fail(failure.code, failure.message);
    return;
  }
  sink.write({ type: 'usage', usage });
  sink.close();
}
