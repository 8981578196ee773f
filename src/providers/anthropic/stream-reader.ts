/**
 * Anthropic Messages SSE -> canonical stream events, parsed once as bytes arrive.
 *
 * Usage: message_start carries input and cache counts, message_delta the cumulative output count
 * (and, on newer API versions, cumulative input counts too). One 'usage' event combines them, emitted
 * at message_delta, or at message_stop if no message_delta came.
 */
import type { Dispatcher } from 'undici';
import { SseParser, type FinishReason, type SseEvent, type StreamEvent } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { bodyError } from './http.ts';
import { finishReasonOf, usageOf, type AnthropicUsageFields } from './parse-response.ts';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Status reported for an in-stream error event, so the gateway's retry rule sees it like an HTTP answer. */
function statusOfStreamError(type: unknown): number {
  if (type === 'overloaded_error') return 529;
  if (type === 'rate_limit_error') return 429;
  return 500;
}

export class AnthropicEventMapper {
  #usage: AnthropicUsageFields = {};
  #isUsageSent = false;
  #isFinishSent = false;
  #isStopped = false;
  #toolCount = 0;
  /** Anthropic content block index -> canonical tool call index. */
  readonly #toolIndexByBlock = new Map<number, number>();
  /**
   * Blocks the canonical events cannot carry (redacted_thinking, server_tool_use, *_tool_result, ...),
   * by block index, with server_tool_use's input JSON as it streams; emitted whole at content_block_stop.
   */
  readonly #nativeBlocks = new Map<number, { block: Record<string, unknown>; json: string }>();

  /** True once message_stop was seen. */
  get isStopped(): boolean {
    return this.#isStopped;
  }

  /** Map one SSE event; throws UpstreamError for in-stream errors and unparsable data. */
  map(ev: SseEvent): StreamEvent[] {
    if (this.#isStopped || ev.event === 'ping') return [];
    let data: unknown;
    try {
      data = JSON.parse(ev.data);
    } catch {
      throw new UpstreamError('malformed', 'anthropic upstream sent an SSE data line that is not JSON', undefined, ev.data.slice(0, 4096));
    }
    if (!isRecord(data)) throw new UpstreamError('malformed', 'anthropic upstream sent an SSE event that is not an object', undefined, ev.data.slice(0, 4096));
    const type = ev.event ?? data['type'];
    switch (type) {
      case 'message_start':
        return this.#messageStart(data);
      case 'content_block_start':
        return this.#blockStart(data);
      case 'content_block_delta':
        return this.#blockDelta(data);
      case 'content_block_stop':
        return this.#blockStop(data);
      case 'message_delta':
        return this.#messageDelta(data);
      case 'message_stop':
        return this.#messageStop();
      case 'error': {
        const error = isRecord(data['error']) ? data['error'] : {};
        const message = typeof error['message'] === 'string' ? error['message'] : 'stream error';
        throw new UpstreamError(
          'status',
          `anthropic upstream stream error ${String(error['type'])}: ${message}`,
          statusOfStreamError(error['type']),
          ev.data.slice(0, 4096),
        );
      }
      default:
        // ping and event types added later carry nothing we need.
        return [];
    }
  }

  #messageStart(data: Record<string, unknown>): StreamEvent[] {
    const message = isRecord(data['message']) ? data['message'] : {};
    const usage = isRecord(message['usage']) ? message['usage'] : undefined;
    if (usage !== undefined) this.#mergeUsage(usage);
    return [
      {
        type: 'start',
        id: typeof message['id'] === 'string' ? message['id'] : '',
        model: typeof message['model'] === 'string' ? message['model'] : '',
        // Anthropic sends no creation time; the gateway stamps its own when it needs one.
        createdS: 0,
        // The real input counts, known up front: an Anthropic client's message_start shows them (not an estimate).
        ...(usage === undefined ? {} : { usage: usageOf(this.#usage) }),
      },
    ];
  }

  #blockStart(data: Record<string, unknown>): StreamEvent[] {
    const block = isRecord(data['content_block']) ? data['content_block'] : {};
    const blockIndex = typeof data['index'] === 'number' ? data['index'] : -1;
    if (block['type'] === 'tool_use') {
      const index = this.#toolCount++;
      this.#toolIndexByBlock.set(blockIndex, index);
      return [{ type: 'tool_call_start', index, id: String(block['id'] ?? ''), name: String(block['name'] ?? '') }];
    }
    if (block['type'] === 'text' && typeof block['text'] === 'string' && block['text'] !== '') return [{ type: 'text', text: block['text'] }];
    if (block['type'] === 'thinking') {
      const out: StreamEvent[] = [];
      if (typeof block['thinking'] === 'string' && block['thinking'] !== '') out.push({ type: 'reasoning', text: block['thinking'] });
      if (typeof block['signature'] === 'string' && block['signature'] !== '') out.push({ type: 'reasoning', text: '', signature: block['signature'] });
      return out;
    }
    if (typeof block['type'] === 'string' && block['type'] !== 'text') this.#nativeBlocks.set(blockIndex, { block, json: '' });
    return [];
  }

  #blockStop(data: Record<string, unknown>): StreamEvent[] {
    const blockIndex = typeof data['index'] === 'number' ? data['index'] : -1;
    const native = this.#nativeBlocks.get(blockIndex);
    if (native === undefined) return [];
    this.#nativeBlocks.delete(blockIndex);
    const block = { ...native.block };
    if (native.json !== '') {
      try {
        block['input'] = JSON.parse(native.json);
      } catch {
        // keep the input the block started with
      }
    }
    return [{ type: 'reasoning', text: '', block }];
  }

  #blockDelta(data: Record<string, unknown>): StreamEvent[] {
    const delta = isRecord(data['delta']) ? data['delta'] : {};
    switch (delta['type']) {
      case 'text_delta':
        return typeof delta['text'] === 'string' && delta['text'] !== '' ? [{ type: 'text', text: delta['text'] }] : [];
      case 'thinking_delta':
        return typeof delta['thinking'] === 'string' && delta['thinking'] !== '' ? [{ type: 'reasoning', text: delta['thinking'] }] : [];
      case 'signature_delta':
        return typeof delta['signature'] === 'string' && delta['signature'] !== '' ? [{ type: 'reasoning', text: '', signature: delta['signature'] }] : [];
      case 'input_json_delta': {
        const native = this.#nativeBlocks.get(typeof data['index'] === 'number' ? data['index'] : -1);
        if (native !== undefined && typeof delta['partial_json'] === 'string') native.json += delta['partial_json'];
        const index = this.#toolIndexByBlock.get(typeof data['index'] === 'number' ? data['index'] : -1);
        const partial = delta['partial_json'];
        if (index === undefined || typeof partial !== 'string' || partial === '') return [];
        return [{ type: 'tool_call_delta', index, argumentsDelta: partial }];
      }
      default:
        // citations_delta: nothing canonical to carry.
        return [];
    }
  }

  #messageDelta(data: Record<string, unknown>): StreamEvent[] {
    const out: StreamEvent[] = [];
    const delta = isRecord(data['delta']) ? data['delta'] : {};
    if (isRecord(data['usage'])) this.#mergeUsage(data['usage']);
    if (delta['stop_reason'] !== undefined && delta['stop_reason'] !== null) out.push(this.#finish(finishReasonOf(delta['stop_reason'])));
    if (!this.#isUsageSent) {
      this.#isUsageSent = true;
      out.push({ type: 'usage', usage: usageOf(this.#usage) });
    }
    return out;
  }

  #messageStop(): StreamEvent[] {
    this.#isStopped = true;
    const out: StreamEvent[] = [];
    if (!this.#isFinishSent) out.push(this.#finish(this.#toolCount > 0 ? 'tool_calls' : 'stop'));
    if (!this.#isUsageSent) {
      this.#isUsageSent = true;
      out.push({ type: 'usage', usage: usageOf(this.#usage) });
    }
    return out;
  }

  #finish(finishReason: FinishReason): StreamEvent {
    this.#isFinishSent = true;
    return { type: 'finish', finishReason };
  }

  /** Later counts overwrite earlier ones: Anthropic's counts are cumulative, never increments. */
  #mergeUsage(u: Record<string, unknown>): void {
    for (const key of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const) {
      const v = u[key];
      if (typeof v === 'number') this.#usage[key] = v;
    }
    const tools = u['server_tool_use'];
    if (typeof tools === 'object' && tools !== null && !Array.isArray(tools)) this.#usage.server_tool_use = tools as AnthropicUsageFields['server_tool_use'];
  }
}

function parse(parser: SseParser, chunk: Uint8Array): SseEvent[] {
  try {
    return parser.push(chunk);
  } catch (e) {
    throw new UpstreamError('malformed', `anthropic upstream stream is not SSE: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Iterate the upstream body as canonical events. Ends normally only after message_stop; the rest of
 * the body (normally nothing) is then drained so the keep-alive connection can be reused, and a failure
 * while draining is ignored. A body that ends before message_stop is a 'disconnect'.
 * If the consumer stops early, the body is destroyed, which closes the upstream request.
 */
export async function* readAnthropicStream(call: UpstreamCall, body: Dispatcher.ResponseData['body']): AsyncGenerator<StreamEvent> {
  const parser = new SseParser();
  const mapper = new AnthropicEventMapper();
  let isDone = false;
  try {
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        if (mapper.isStopped) continue;
        for (const ev of parse(parser, chunk)) yield* mapper.map(ev);
      }
    } catch (e) {
      // After message_stop the answer is complete; a drain that fails changes nothing for the client.
      if (!mapper.isStopped) throw bodyError(call, e);
    }
    if (!mapper.isStopped) {
      for (const ev of parser.end()) yield* mapper.map(ev);
    }
    if (!mapper.isStopped) throw new UpstreamError('disconnect', 'anthropic upstream stream ended before message_stop');
    isDone = true;
  } finally {
    if (!isDone && !body.destroyed) body.destroy();
  }
}
