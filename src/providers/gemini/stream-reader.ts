import type { Dispatcher } from 'undici';
import { SseParser, type SseEvent, type StreamEvent } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { GeminiStreamDecoder, isObject } from './parse-response.ts';
import { toUpstreamError } from './http.ts';
import type { GeminiGenerateContentResponse } from './wire-types.ts';

export interface StreamContext {
  call: UpstreamCall;
  fallbackId: string;
  createdS: number;
}

function decodeEvent(ev: SseEvent): GeminiGenerateContentResponse | undefined {
  if (ev.data === '' || ev.data === '[DONE]') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(ev.data);
  } catch {
    throw new UpstreamError('malformed', 'gemini stream: event data is not JSON', undefined, ev.data.slice(0, 1024));
  }
  if (!isObject(parsed)) throw new UpstreamError('malformed', 'gemini stream: event data is not an object', undefined, ev.data.slice(0, 1024));
  const chunk = parsed as GeminiGenerateContentResponse;
  if (isObject(chunk.error)) {
    // Google reports some failures (overload, internal) inside an already started 200 stream.
    const status = typeof chunk.error.code === 'number' ? chunk.error.code : undefined;
    const message = `gemini stream error: ${chunk.error.status ?? ''} ${chunk.error.message ?? ''}`.trim();
    throw status === undefined ? new UpstreamError('disconnect', message, undefined, ev.data) : new UpstreamError('status', message, status, ev.data);
  }
  return chunk;
}

function pushBytes(parser: SseParser, bytes: Buffer): SseEvent[] {
  try {
    return parser.push(bytes);
  } catch (e) {
    throw new UpstreamError('malformed', `gemini stream: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Canonical events from a 2xx streamGenerateContent?alt=sse body, parsed as the bytes arrive.
 * Ends with 'finish' then 'usage'; throws UpstreamError('disconnect') if the body ends before any
 * chunk carried a finishReason. Stopping the iteration early destroys the body (frees the socket).
 */
export async function* streamEvents(res: Dispatcher.ResponseData, ctx: StreamContext): AsyncGenerator<StreamEvent> {
  const parser = new SseParser();
  const decoder = new GeminiStreamDecoder({ fallbackId: ctx.fallbackId, fallbackModel: ctx.call.upstreamModel, createdS: ctx.createdS });
  try {
    try {
      for await (const chunk of res.body) {
        for (const ev of pushBytes(parser, chunk as Buffer)) {
          const data = decodeEvent(ev);
          if (data !== undefined) yield* decoder.push(data);
        }
      }
    } catch (e) {
      // A socket dropped after the last chunk said "finished" lost nothing: end normally.
      if (e instanceof UpstreamError || ctx.call.signal.aborted || !decoder.sawFinish) throw toUpstreamError(e, ctx.call, 'body');
    }
    for (const ev of parser.end()) {
      const data = decodeEvent(ev);
      if (data !== undefined) yield* decoder.push(data);
    }
    if (!decoder.sawFinish) throw new UpstreamError('disconnect', 'gemini stream ended without a finishReason');
    yield* decoder.end();
  } finally {
    if (!res.body.readableEnded) res.body.destroy();
  }
}
