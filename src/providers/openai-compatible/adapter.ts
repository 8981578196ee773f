import type { ChatRequest } from '../../wire/index.ts';
import type { ProviderAdapter, UpstreamCall, UpstreamStream } from '../types.ts';
import { buildChatBody, buildChatBodyJson, buildCompletionBody, buildEmbeddingBody } from './build-request.ts';
import { ChatChunkParser, CompletionChunkParser } from './stream-reader.ts';
import { answerJson, postText } from './dispatch.ts';
import { postStream, SseHandler } from './dispatch-stream.ts';
import {
  chatResponseEvents,
  parseChatResponse,
  parseCompletionResponse,
  parseEmbeddingResponse,
  parsePlainChatResponse,
  type ResponseDefaults,
} from './parse-response.ts';

export interface OpenAICompatibleOptions {
  /** Largest non-streamed answer we read; bigger ones fail as 'malformed' instead of filling memory. */
  responseBytesMax?: number;
  /**
   * The fast paths (ARCHITECTURE.md, "Fast paths"): the request body written field by field, OpenAI's plain
   * answers and stream chunks read without JSON.parse, stream bytes decoded with Buffer#toString, undici's
   * handler called through the LegacyBridge. false: every one takes its general twin. Default true; the
   * composition root passes config's `fastPaths` (TOKENGRID_FAST_PATHS=off).
   */
  fastPaths?: boolean;
}

const RESPONSE_BYTES_MAX_DEFAULT = 32 * 1024 * 1024;

/** Used only where the upstream leaves out id, model or created. */
function defaultsFor(call: UpstreamCall): ResponseDefaults {
  return { id: call.requestId, model: call.upstreamModel, createdS: Math.floor(Date.now() / 1000) };
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
  const fast = opts.fastPaths ?? true;
  const chatBody = fast
    ? buildChatBodyJson
    : (call: UpstreamCall, req: ChatRequest, stream: boolean): string => JSON.stringify(buildChatBody(call, req, stream));
  return {
    kind: 'openai-compatible',

    async chat(call, req) {
      const answer = await postText(call, '/chat/completions', chatBody(call, req, false), 'application/json', bytesMax, fast);
      // OpenAI's plain text answer is read without JSON.parse; any other shape takes the general path.
      return (fast ? parsePlainChatResponse(answer.text) : undefined) ?? parseChatResponse(answerJson(answer, call), defaultsFor(call));
    },

    async chatStream(call, req): Promise<UpstreamStream> {
      const res = await postStream(call, '/chat/completions', chatBody(call, req, true), new ChatChunkParser(defaultsFor(call)), bytesMax, fast);
      if (res instanceof SseHandler) return res;
      // Some vendors ignore `stream: true` for some models and answer one JSON document.
      const full = parseChatResponse(answerJson(res, call), defaultsFor(call));
      return { events: replay(chatResponseEvents(full)) };
    },

    async completion(call, req) {
      const answer = await postText(call, '/completions', JSON.stringify(buildCompletionBody(call, req, false)), 'application/json', bytesMax, fast);
      return parseCompletionResponse(answerJson(answer, call), defaultsFor(call));
    },

    async completionStream(call, req): Promise<UpstreamStream> {
      const res = await postStream(
        call,
        '/completions',
        JSON.stringify(buildCompletionBody(call, req, true)),
        new CompletionChunkParser(defaultsFor(call)),
        bytesMax,
        fast,
      );
      if (res instanceof SseHandler) return res;
      const full = parseCompletionResponse(answerJson(res, call), defaultsFor(call));
      const choice = full.choices[0];
      return {
        events: replay([
          { type: 'start', id: full.id, model: full.model, createdS: full.createdS },
          { type: 'text', text: choice?.text ?? '' },
          { type: 'finish', finishReason: choice?.finishReason ?? 'stop' },
          { type: 'usage', usage: full.usage },
        ]),
      };
    },

    async embeddings(call, req) {
      const answer = await postText(call, '/embeddings', JSON.stringify(buildEmbeddingBody(call, req)), 'application/json', bytesMax, fast);
      return parseEmbeddingResponse(answerJson(answer, call), defaultsFor(call));
    },
  };
}
