/**
 * Canonical ChatResponse -> Anthropic Message object (the non-streaming POST /v1/messages answer).
 */
import type { ChatResponse, FinishReason, Usage } from '../types.ts';

export type AnthropicStopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

/**
 * The canonical finish reason does not say whether a stop sequence matched (OpenAI-style upstreams
 * report plain 'stop' for both), so 'stop' is always end_turn and stop_sequence is always null.
 * 'error' has no Anthropic counterpart; the gateway sends an error event for real failures.
 */
export function anthropicStopReason(reason: FinishReason | undefined, hasToolCalls: boolean): AnthropicStopReason {
  switch (reason) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    case 'stop':
      return 'end_turn';
    default:
      return hasToolCalls ? 'tool_use' : 'end_turn';
  }
}

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/**
 * Canonical tokensInput counts every prompt token (cache reads and writes included); Anthropic's
 * input_tokens counts only the uncached remainder, so the cache fields are subtracted back out.
 */
export function anthropicUsage(usage: Usage): AnthropicUsage {
  return {
    input_tokens: Math.max(0, usage.tokensInput - usage.tokensCachedInput - usage.tokensCacheWrite),
    output_tokens: usage.tokensOutput,
    cache_creation_input_tokens: usage.tokensCacheWrite,
    cache_read_input_tokens: usage.tokensCachedInput,
  };
}

/** Tool arguments the model produced as text; Anthropic clients expect an object. Unparsable -> {}. */
export function parseToolInput(argumentsJson: string): Record<string, unknown> {
  if (argumentsJson.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(argumentsJson);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

type ResponseBlock =
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

/**
 * `model` is the name the client asked for (the upstream's own name is not exposed), `id` the one the client
 * sees (the response's own by default: passing it spares a copy of the response). A thinking block
 * carries an empty signature: we did not get one from a non-Anthropic upstream, and clients only echo it.
 */
export function encodeMessagesResponse(res: ChatResponse, model: string, id: string = res.id): Record<string, unknown> {
  const content: ResponseBlock[] = [];
  if (res.reasoning !== undefined && res.reasoning !== '') {
    content.push({ type: 'thinking', thinking: res.reasoning, signature: '' });
  }
  let hasToolCalls = false;
  for (const part of res.content) {
    if (part.type === 'text') {
      // Anthropic never returns empty text blocks; clients that echo the history back would be rejected.
      if (part.text !== '') content.push({ type: 'text', text: part.text });
    } else if (part.type === 'tool_call') {
      hasToolCalls = true;
      content.push({ type: 'tool_use', id: part.id, name: part.name, input: parseToolInput(part.argumentsJson) });
    }
  }
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    // From an Anthropic upstream: its own blocks (thinking signatures, redacted_thinking, server tool blocks).
    content: res.anthropicContent ?? content,
    stop_reason: anthropicStopReason(res.finishReason, hasToolCalls),
    stop_sequence: null,
    usage: anthropicUsage(res.usage),
  };
}

/** POST /v1/messages/count_tokens answer. */
export function encodeCountTokensResponse(tokensInput: number): { input_tokens: number } {
  return { input_tokens: tokensInput };
}
