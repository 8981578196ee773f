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
