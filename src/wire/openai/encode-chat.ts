import type { ChatResponse, FinishReason, Usage } from '../types.ts';
import { jsonNumber } from '../json.ts';

export type OpenAIFinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

/**
 * OpenAI has no finish reason for "the upstream failed": a response cut short by an error ends as
 * 'stop' (the gateway reports the failure itself, e.g. with an SSE error frame before [DONE]).
 */
export function openaiFinishReason(reason: FinishReason): OpenAIFinishReason {
  return reason === 'error' ? 'stop' : reason;
}

/** Canonical usage → OpenAI `usage` (cached and reasoning tokens are subsets, as in OpenAI's own numbers). */
export function encodeOpenAIUsage(u: Usage): Record<string, unknown> {
  return {
    prompt_tokens: u.tokensInput,
    completion_tokens: u.tokensOutput,
    total_tokens: u.tokensInput + u.tokensOutput,
    prompt_tokens_details: { cached_tokens: u.tokensCachedInput, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.tokensReasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/**
 * Canonical response → `chat.completion` body. `model` is the name the client asked for, not the upstream's;
 * `id` the one the client sees (the response's own by default: passing it spares a copy of the response).
 * The route sends encodeChatResponseJson's text; this object form is its readable reference, which
 * encode.test.ts holds it to byte for byte.
 */
export function encodeChatResponse(res: ChatResponse, model: string, id: string = res.id): Record<string, unknown> {
  let text: string | null = null;
  let toolCalls: Record<string, unknown>[] | undefined;
  for (const part of res.content) {
    if (part.type === 'text') text = text === null ? part.text : text + part.text;
    else if (part.type === 'tool_call') {
      (toolCalls ??= []).push({ id: part.id, type: 'function', function: { name: part.name, arguments: part.argumentsJson } });
    }
  }
  const message: Record<string, unknown> = {
    role: 'assistant',
    // content is null only when the answer is tool calls alone, as OpenAI sends it.
    content: text ?? (toolCalls !== undefined ? null : ''),
    refusal: null,
  };
  if (res.reasoning !== undefined && res.reasoning !== '') message['reasoning_content'] = res.reasoning;
  if (toolCalls !== undefined) message['tool_calls'] = toolCalls;
  return {
    id,
    object: 'chat.completion',
    created: res.createdS,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: openaiFinishReason(res.finishReason) }],
    usage: encodeOpenAIUsage(res.usage),
    system_fingerprint: null,
  };
}

/**
 * JSON.stringify(encodeChatResponse(res, model, id)), written directly: the same text, byte for byte, without
 * the intermediate objects or the generic serializer's walk over them (about 2.2 → 0.9 µs for a typical answer
 * on Node 20). Only the strings go through JSON.stringify. encode.test.ts checks the two agree.
 */
export function encodeChatResponseJson(res: ChatResponse, model: string, id: string = res.id): string {
  let text: string | null = null;
  let toolCalls = '';
  for (const part of res.content) {
    if (part.type === 'text') text = text === null ? part.text : text + part.text;
    else if (part.type === 'tool_call') {
      toolCalls += `${toolCalls === '' ? '' : ','}{"id":${JSON.stringify(part.id)},"type":"function","function":{"name":${JSON.stringify(part.name)},"arguments":${JSON.stringify(part.argumentsJson)}}}`;
    }
  }
  let message = `{"role":"assistant","content":${text !== null ? JSON.stringify(text) : toolCalls !== '' ? 'null' : '""'},"refusal":null`;
  if (res.reasoning !== undefined && res.reasoning !== '') message += `,"reasoning_content":${JSON.stringify(res.reasoning)}`;
  if (toolCalls !== '') message += `,"tool_calls":[${toolCalls}]`;
  const u = res.usage;
  return `{"id":${JSON.stringify(id)},"object":"chat.completion","created":${jsonNumber(res.createdS)},"model":${JSON.stringify(model)},"choices":[{"index":0,"message":${message}},"logprobs":null,"finish_reason":"${openaiFinishReason(res.finishReason)}"}],"usage":{"prompt_tokens":${jsonNumber(u.tokensInput)},"completion_tokens":${jsonNumber(u.tokensOutput)},"total_tokens":${jsonNumber(u.tokensInput + u.tokensOutput)},"prompt_tokens_details":{"cached_tokens":${jsonNumber(u.tokensCachedInput)},"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":${jsonNumber(u.tokensReasoning)},"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"system_fingerprint":null}`;
}
