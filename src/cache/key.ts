import { sha256Hex } from '../core/index.ts';
import { estimateTextTokens, type ChatMessage, type ChatRequest } from '../wire/index.ts';

/**
 * The exact response cache's key and eligibility (issue 17 item 4), pure. The key is sha256 over the account
 * (the tenant: one account never sees another's answers) and the normalized canonical request: the model after
 * alias and package resolution, messages, tools, sampling and output settings, and the family's pass-through
 * fields that can change the answer. Left out: the stream flag and usage option (a streamed request is served
 * from a non-streamed answer and the reverse), `user`, and `extra` fields that never change the answer.
 */

/** Pass-through fields that do not change the answer (labels, storage and delivery options). */
const IGNORED_EXTRA = new Set(['metadata', 'user', 'store', 'stream_options', 'service_tier', 'prompt_cache_key', 'safety_identifier']);

/** Keys of an Anthropic-native body that do not change the answer. */
const IGNORED_NATIVE = new Set(['stream', 'metadata']);

export type CacheHeader = 'on' | 'off' | undefined;

/**
 * Whether a request may be answered from (and fill) the cache: temperature 0, or the client's explicit opt-in
 * (`x-tokengrid-cache: on`); never with `x-tokengrid-cache: off`.
 */
export function isCacheable(req: ChatRequest, header: CacheHeader): boolean {
  if (header === 'off') return false;
  if (header === 'on') return true;
  return req.temperature === 0;
}

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

function without(obj: Record<string, unknown>, ignored: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!ignored.has(k)) out[k] = v;
  return out;
}

/** The cache key of a chat request for one account, `modelId` being the resolved catalog model. */
export function responseCacheKey(accountId: string, modelId: string, req: ChatRequest): string {
  const native = req.anthropicNative;
  return sha256Hex(
    canonicalJson({
      v: 1,
      account: accountId,
      model: modelId,
      messages: req.messages,
      maxTokensOutput: req.maxTokensOutput,
      temperature: req.temperature,
      topP: req.topP,
      topK: req.topK,
      stop: req.stop,
      tools: req.tools,
      toolChoice: req.toolChoice,
      parallelToolCalls: req.parallelToolCalls,
      responseFormat: req.responseFormat,
      seed: req.seed,
      extra: without(req.extra, IGNORED_EXTRA),
      native: native === undefined ? undefined : { body: without(native.body, IGNORED_NATIVE), headers: native.headers },
    }),
  );
}

function messageTokens(m: ChatMessage): number {
  let n = 4;
  for (const p of m.content) {
    if (p.type === 'text') n += estimateTextTokens(p.text);
    else if (p.type === 'tool_result') n += estimateTextTokens(p.content);
    else if (p.type === 'tool_call') n += estimateTextTokens(p.argumentsJson) + 4;
    else n += 85;
  }
  return n;
}

/**
 * Prompt-prefix stickiness (issue 17 item 5): the hash of the shortest leading run of messages (tools first)
 * that reaches `minTokens` estimated tokens, the last message excluded (the new turn). Requests sharing it (one
 * system prompt, one document, one conversation's earlier turns) share the vendor's prompt cache when they land
 * on one deployment. Undefined when the prefix is shorter (a vendor would not cache it).
 */
export function promptPrefixKey(req: ChatRequest, minTokens: number): string | undefined {
  const msgs = req.messages;
  if (msgs.length < 2) return undefined;
  let tokens = req.tools === undefined ? 0 : estimateTextTokens(JSON.stringify(req.tools));
  for (let i = 0; i < msgs.length - 1; i++) {
    tokens += messageTokens(msgs[i]!);
    if (tokens >= minTokens) return sha256Hex(canonicalJson({ tools: req.tools, messages: msgs.slice(0, i + 1) }));
  }
  return undefined;
}
