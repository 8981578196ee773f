import type { FinishReason, Usage } from '../../wire/index.ts';

/** Small readers for upstream JSON: upstreams are trusted to be JSON, not to be well-typed. */
export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/**
 * Upstream usage → canonical usage, across the OpenAI-compatible dialects:
 * - OpenAI, Qwen/DashScope, Zhipu, Volcengine Ark: prompt_tokens_details.cached_tokens,
 *   completion_tokens_details.reasoning_tokens;
 * - DeepSeek: prompt_cache_hit_tokens (hit + miss = prompt_tokens);
 * - Moonshot/Kimi: a top-level cached_tokens;
 * - DashScope explicit cache: prompt_tokens_details.cache_creation_input_tokens;
 *   OpenRouter: prompt_tokens_details.cache_write_tokens.
 * Returns undefined when the object carries no token counts at all (vLLM sends `usage: null` or `{}`).
 * Subsets are clamped so that cached + written <= input and reasoning <= output, whatever the upstream says.
 */
export function mapUsage(u: unknown): Usage | undefined {
  if (!isObj(u)) return undefined;
  const input = count(u['prompt_tokens']);
  const output = count(u['completion_tokens']);
  if (input === undefined && output === undefined) return undefined;
  const tokensInput = input ?? 0;
  const tokensOutput = output ?? 0;
  const ptd = isObj(u['prompt_tokens_details']) ? u['prompt_tokens_details'] : undefined;
  const ctd = isObj(u['completion_tokens_details']) ? u['completion_tokens_details'] : undefined;
  // Max, not first-present: a vendor that sends both its own field and a zeroed OpenAI one is still counted.
  const cached = Math.max(count(ptd?.['cached_tokens']) ?? 0, count(u['prompt_cache_hit_tokens']) ?? 0, count(u['cached_tokens']) ?? 0);
  const written = count(ptd?.['cache_creation_input_tokens']) ?? count(ptd?.['cache_write_tokens']) ?? 0;
  const tokensCachedInput = Math.min(cached, tokensInput);
  return {
    tokensInput,
    tokensOutput,
    tokensCachedInput,
    tokensCacheWrite: Math.min(written, tokensInput - tokensCachedInput),
    tokensReasoning: Math.min(count(ctd?.['reasoning_tokens']) ?? 0, tokensOutput),
  };
}

/**
 * Upstream finish_reason → canonical. Vendor extras: Zhipu 'sensitive' and 'network_error',
 * DeepSeek 'insufficient_system_resource', vLLM 'abort', the legacy 'function_call'.
 * Unknown values read as 'stop' (the answer ended; we do not know why).
 */
export function mapFinishReason(v: unknown): FinishReason {
  switch (v) {
    case 'length':
    case 'model_length':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    case 'content_filter':
    case 'sensitive':
      return 'content_filter';
    case 'insufficient_system_resource':
    case 'network_error':
    case 'abort':
    case 'error':
      return 'error';
    default:
      return 'stop';
  }
}

/** Text of a content field that is a string, or (some vendors) an array of {type:'text', text} parts. */
export function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) return '';
  let out = '';
  for (const p of v) if (isObj(p) && typeof p['text'] === 'string') out += p['text'];
  return out;
}

/** Reasoning text: DeepSeek/Qwen/Moonshot/Zhipu use reasoning_content; newer vLLM, Ollama and OpenRouter use reasoning. */
export function reasoningOf(o: Obj): string | undefined {
  const r = o['reasoning_content'] ?? o['reasoning'];
  return typeof r === 'string' && r !== '' ? r : undefined;
}

/** Arguments are JSON text; a few vendors send an already-parsed object. */
export function argumentsOf(v: unknown): string {
  if (typeof v === 'string') return v;
  return v === undefined || v === null ? '' : JSON.stringify(v);
}

/**
 * mapUsage of an OpenAI usage object whose counts are all valid (prompt and completion tokens present, the
 * details' cached and reasoning tokens when sent): what the regex fast paths read without building the object.
 */
export function usageOfCounts(tokensInput: number, tokensOutput: number, cached: number | undefined, reasoning: number | undefined): Usage {
  return {
    tokensInput,
    tokensOutput,
    tokensCachedInput: cached === undefined ? 0 : Math.min(cached, tokensInput),
    tokensCacheWrite: 0,
    tokensReasoning: reasoning === undefined ? 0 : Math.min(reasoning, tokensOutput),
  };
}

// Regex pieces for the fast paths that read OpenAI's own compact JSON without JSON.parse.

/** A JSON string's body (between the quotes) without raw control characters, as an unrolled loop: linear, no nested backtracking. */
export const RE_JSON_STR = String.raw`[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*`;
/** A plain string: non-empty, nothing escaped, so the text between the quotes is the value. */
export const RE_PLAIN_STR = String.raw`[^"\\\x00-\x1f]+`;
/** A JSON integer of at most 15 digits: a safe integer, so a count mapUsage accepts as it is. */
export const RE_INT = String.raw`(?:0|[1-9]\d{0,14})`;
/**
 * OpenAI's usage object: prompt, completion and total tokens, then optionally its prompt and completion details.
 * Captures prompt, completion, cached and reasoning tokens (the last two undefined when their object is absent).
 * `ws` is put between tokens: '' for compact JSON only, or a pattern for JSON whitespace.
 */
export function openaiUsagePattern(ws: string): string {
  return (
    String.raw`\{~"prompt_tokens"~:~(${RE_INT})~,~"completion_tokens"~:~(${RE_INT})~,~"total_tokens"~:~${RE_INT}~` +
    String.raw`(?:,~"prompt_tokens_details"~:~\{~"cached_tokens"~:~(${RE_INT})~,~"audio_tokens"~:~${RE_INT}~\}~)?` +
    String.raw`(?:,~"completion_tokens_details"~:~\{~"reasoning_tokens"~:~(${RE_INT})~,~"audio_tokens"~:~${RE_INT}~,~"accepted_prediction_tokens"~:~${RE_INT}~,~"rejected_prediction_tokens"~:~${RE_INT}~\}~)?\}`
  ).replaceAll('~', ws);
}

/** JSON whitespace (space, tab, line feed, carriage return), for the patterns that also read pretty-printed answers. */
export const RE_JSON_WS = String.raw`[ \t\n\r]*`;
