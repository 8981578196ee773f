import { systemClock, type Clock } from '../../core/index.ts';
import type { ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse } from '../../wire/index.ts';
import { UpstreamError, type ProviderAdapter, type UpstreamCall, type UpstreamStream } from '../types.ts';
import { embed } from './embeddings.ts';
import { buildGenerateContentRequest } from './build-request.ts';
import { decodeResponse } from './parse-response.ts';
import { streamEvents } from './stream-reader.ts';
import { methodUrl, parseJsonObject, postJson, readText } from './http.ts';
import type { GeminiGenerateContentResponse } from './wire-types.ts';

/** A whole (non-streamed) response larger than this is refused rather than buffered. */
export const BYTES_MAX_RESPONSE_DEFAULT = 32 * 1024 * 1024;

export interface GeminiAdapterOptions {
  /** Source of `createdS` (Gemini responses carry no timestamp). */
  clock?: Clock;
  bytesMaxResponse?: number;
  /**
   * Token count for embedding inputs, used when Google reports none (the Gemini API's embedContent
   * returns no usage). The composition root should pass wire's estimateTextTokens.
   */
  estimateTextTokens?: (text: string) => number;
}

/** Crude fallback: about 3 UTF-8 bytes per token errs high for English and CJK alike. */
const roughTokens = (text: string): number => Math.ceil(Buffer.byteLength(text, 'utf8') / 3);

export function createGeminiAdapter(options: GeminiAdapterOptions = {}): ProviderAdapter {
  const clock = options.clock ?? systemClock;
  const bytesMaxResponse = options.bytesMaxResponse ?? BYTES_MAX_RESPONSE_DEFAULT;
  const estimate = options.estimateTextTokens ?? roughTokens;
  const nowS = (): number => Math.floor(clock.nowMs() / 1000);
  const fallbackId = (call: UpstreamCall): string => `gemini-${call.requestId}`;

  async function chat(call: UpstreamCall, req: ChatRequest): Promise<ChatResponse> {
    const url = methodUrl(call.provider.baseUrl, call.upstreamModel, 'generateContent');
    const res = await postJson(call, url, buildGenerateContentRequest(req), 'application/json');
    const text = await readText(res, call, bytesMaxResponse);
    const body = parseJsonObject(text, 'response') as GeminiGenerateContentResponse;
    const id = nonEmpty(body.responseId) ?? fallbackId(call);
    const decoded = decodeResponse(body, id);
    if (decoded.finishReason === undefined && decoded.content.length === 0) {
      throw new UpstreamError('malformed', 'gemini response has no candidate and no block reason', undefined, text.slice(0, 1024));
    }
    const out: ChatResponse = {
      id,
      model: nonEmpty(body.modelVersion) ?? call.upstreamModel,
      createdS: nowS(),
      content: decoded.content,
      finishReason: decoded.finishReason ?? 'stop',
      usage: decoded.usage,
    };
    if (decoded.reasoning !== '') out.reasoning = decoded.reasoning;
    return out;
  }

  async function chatStream(call: UpstreamCall, req: ChatRequest): Promise<UpstreamStream> {
    const url = methodUrl(call.provider.baseUrl, call.upstreamModel, 'streamGenerateContent', '?alt=sse');
    const res = await postJson(call, url, buildGenerateContentRequest(req), 'text/event-stream');
    return { events: streamEvents(res, { call, fallbackId: fallbackId(call), createdS: nowS() }) };
  }

  function embeddings(call: UpstreamCall, req: EmbeddingRequest): Promise<EmbeddingResponse> {
    return embed(call, req, { bytesMaxResponse, estimateTextTokens: estimate });
  }

  return { kind: 'gemini', chat, chatStream, embeddings };
}

function nonEmpty(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
