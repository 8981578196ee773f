import type { ProviderAdapter, UpstreamCall, UpstreamStream } from '../types.ts';
import type { StreamEvent } from '../../wire/index.ts';
import type { ChunkParser } from './chunk-parser.ts';
import { buildChatBody, buildCompletionBody, buildEmbeddingBody } from './build-request.ts';
import { ChatChunkParser, CompletionChunkParser } from './chunk-parser.ts';
import { isJsonResponse, postJson, readJson, sseBatches, sseEvents, type UpstreamBody } from './http.ts';
import {
  chatResponseEvents, parseChatResponse, parseCompletionResponse, parseEmbeddingResponse, type ResponseDefaults,
} from './parse-response.ts';

export interface OpenAICompatibleOptions {
  /** Largest non-streamed answer we read; bigger ones fail as 'malformed' instead of filling memory. */
  responseBytesMax?: number;
}

const RESPONSE_BYTES_MAX_DEFAULT = 32 * 1024 * 1024;

/** Used only where the upstream leaves out id, model or created. */
function defaultsFor(call: UpstreamCall): ResponseDefaults {
  return { id: call.requestId, model: call.upstreamModel, createdS: Math.floor(Date.now() / 1000) };
}

/** One parse of the body, offered per event or per upstream read; only the view the consumer reads first exists. */
class SseStream implements UpstreamStream {
  #events: AsyncIterable<StreamEvent> | undefined;
  #batches: AsyncIterable<StreamEvent[]> | undefined;
  constructor(readonly body: UpstreamBody, readonly call: UpstreamCall, readonly parser: ChunkParser) {}

  get events(): AsyncIterable<StreamEvent> {
    if (this.#batches !== undefined) throw new Error('an upstream stream is read either per event or per batch, not both');
    return (this.#events ??= sseEvents(this.body, this.call, this.parser));
  }

  get batches(): AsyncIterable<StreamEvent[]> {
    if (this.#events !== undefined) throw new Error('an upstream stream is read either per event or per batch, not both');
    return (this.#batches ??= sseBatches(this.body, this.call, this.parser));
  }
}

async function* replay<T>(events: T[]): AsyncGenerator<T, void, undefined> {
  yield* events;
}

/**
 * The adapter for every upstream that speaks OpenAI's chat/completions dialect (OpenAI, DeepSeek,
 * Qwen/DashScope compatible mode, Zhipu GLM, Moonshot, Volcengine Ark, MiniMax, vLLM, Ollama...).
 * It never retries: the gateway owns the only retry loop.
 */
export function createOpenAICompatibleAdapter(opts: OpenAICompatibleOptions = {}): ProviderAdapter {
  const bytesMax = opts.responseBytesMax ?? RESPONSE_BYTES_MAX_DEFAULT;
  return {
    kind: 'openai-compatible',

    async chat(call, req) {
      const res = await postJson(call, '/chat/completions', buildChatBody(call, req, false), 'application/json');
      return parseChatResponse(await readJson(res, call, bytesMax), defaultsFor(call));
    },

    async chatStream(call, req): Promise<UpstreamStream> {
      const res = await postJson(call, '/chat/completions', buildChatBody(call, req, true), 'text/event-stream');
      // Some vendors ignore `stream: true` for some models and answer one JSON document.
      if (isJsonResponse(res)) {
        const full = parseChatResponse(await readJson(res, call, bytesMax), defaultsFor(call));
        return { events: replay(chatResponseEvents(full)) };
      }
      return new SseStream(res.body, call, new ChatChunkParser(defaultsFor(call)));
    },

    async completion(call, req) {
      const res = await postJson(call, '/completions', buildCompletionBody(call, req, false), 'application/json');
      return parseCompletionResponse(await readJson(res, call, bytesMax), defaultsFor(call));
    },

    async completionStream(call, req): Promise<UpstreamStream> {
      const res = await postJson(call, '/completions', buildCompletionBody(call, req, true), 'text/event-stream');
      if (isJsonResponse(res)) {
        const full = parseCompletionResponse(await readJson(res, call, bytesMax), defaultsFor(call));
        const choice = full.choices[0];
        return {
          events: replay([
            { type: 'start', id: full.id, model: full.model, createdS: full.createdS },
            { type: 'text', text: choice?.text ?? '' },
            { type: 'finish', finishReason: choice?.finishReason ?? 'stop' },
            { type: 'usage', usage: full.usage },
          ]),
        };
      }
      return new SseStream(res.body, call, new CompletionChunkParser(defaultsFor(call)));
    },

    async embeddings(call, req) {
      const res = await postJson(call, '/embeddings', buildEmbeddingBody(call, req), 'application/json');
      return parseEmbeddingResponse(await readJson(res, call, bytesMax), defaultsFor(call));
    },
  };
}
