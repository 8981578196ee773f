/**
 * Anthropic Message object -> canonical ChatResponse, and the stop-reason / usage mappings the stream
 * reader shares. Upstream field names stop here.
 */
import type { ChatResponse, ContentPart, FinishReason, Usage } from '../../wire/index.ts';
import { UpstreamError } from '../types.ts';

export function finishReasonOf(stopReason: unknown): FinishReason {
  switch (stopReason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      // end_turn, stop_sequence, pause_turn, null and future values: a normal stop.
      return 'stop';
  }
}

/** Anthropic usage fields as they appear in message / message_start / message_delta. */
export interface AnthropicUsageFields {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  /** Server tools run by Anthropic, billed per request (web search). */
  server_tool_use?: { web_search_requests?: number | null } | null;
}

const count = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 0);

/**
 * Anthropic's input_tokens excludes cache reads and writes; the canonical tokensInput counts every
 * prompt token, with the cached and cache-write subsets alongside (they are rated differently).
 */
export function usageOf(u: AnthropicUsageFields): Usage {
  const cachedRead = count(u.cache_read_input_tokens);
  const cacheWrite = count(u.cache_creation_input_tokens);
  const usage: Usage = {
    tokensInput: count(u.input_tokens) + cachedRead + cacheWrite,
    tokensOutput: count(u.output_tokens),
    tokensCachedInput: cachedRead,
    tokensCacheWrite: cacheWrite,
    // Anthropic bills thinking as output tokens without reporting the split.
    tokensReasoning: 0,
  };
  // Web search is billed per request on top of tokens (issue 12 attack report F8): carried to the gateway.
  const searches = isRecord(u.server_tool_use) ? count(u.server_tool_use['web_search_requests']) : 0;
  if (searches > 0) usage.serverToolRequests = searches;
  return usage;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse a non-streamed answer body; anything that is not a message object is 'malformed'. */
export function parseMessageResponse(text: string, createdS: number): ChatResponse {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UpstreamError('malformed', 'anthropic upstream answered 2xx with a body that is not JSON', undefined, text.slice(0, 4096));
  }
  if (!isRecord(json) || !Array.isArray(json['content'])) {
    throw new UpstreamError('malformed', 'anthropic upstream answered 2xx without a message object', undefined, text.slice(0, 4096));
  }
  const content: ContentPart[] = [];
  let reasoning = '';
  for (const block of json['content']) {
    if (!isRecord(block)) continue;
    if (block['type'] === 'text' && typeof block['text'] === 'string') content.push({ type: 'text', text: block['text'] });
    else if (block['type'] === 'tool_use') {
      content.push({
        type: 'tool_call',
        id: String(block['id'] ?? ''),
        name: String(block['name'] ?? ''),
        argumentsJson: JSON.stringify(block['input'] ?? {}),
      });
    } else if (block['type'] === 'thinking' && typeof block['thinking'] === 'string') reasoning += block['thinking'];
    // redacted_thinking and server-tool blocks carry nothing the canonical response can hold.
  }
  const res: ChatResponse = {
    id: typeof json['id'] === 'string' ? json['id'] : '',
    model: typeof json['model'] === 'string' ? json['model'] : '',
    createdS,
    content,
    finishReason: finishReasonOf(json['stop_reason']),
    usage: usageOf(isRecord(json['usage']) ? json['usage'] : {}),
  };
  if (reasoning !== '') res.reasoning = reasoning;
  // Signatures, redacted_thinking and server tool blocks: an Anthropic client gets the blocks as they came.
  res.anthropicContent = json['content'].filter(isRecord);
  return res;
}
