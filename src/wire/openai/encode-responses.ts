import type { ChatResponse, FinishReason, Usage } from '../types.ts';
import type { ResponsesRequest } from './responses-types.ts';

/** What every Response object of one request shares: its id, creation time, the catalog model actually used (not the id the client sent: aliases and a package's modelMap resolve it), and the request. */
export interface ResponseEnvelope {
  id: string;
  createdAtS: number;
  model: string;
  req: ResponsesRequest;
}

export type ResponseStatus = 'completed' | 'incomplete' | 'failed' | 'in_progress';
export type Json = Record<string, unknown>;

/** Canonical usage → Responses `usage` (cached and reasoning tokens are subsets, as OpenAI counts them). */
export function encodeResponsesUsage(u: Usage): Json {
  return {
    input_tokens: u.tokensInput,
    input_tokens_details: { cached_tokens: u.tokensCachedInput },
    output_tokens: u.tokensOutput,
    output_tokens_details: { reasoning_tokens: u.tokensReasoning },
    total_tokens: u.tokensInput + u.tokensOutput,
  };
}

/** Ids of output items, derived from the response id: `msg_…`, `rs_…`, `fc_…_N`. */
export function itemId(env: Pick<ResponseEnvelope, 'id'>, prefix: string, n?: number): string {
  const base = env.id.startsWith('resp_') ? env.id.slice(5) : env.id;
  return n === undefined ? `${prefix}_${base}` : `${prefix}_${base}_${n}`;
}

/** The Response object, in the field order OpenAI sends. */
export function responseObject(
  env: ResponseEnvelope,
  status: ResponseStatus,
  output: Json[],
  usage: Usage | null,
  extra: { incompleteReason?: 'max_output_tokens' | 'content_filter'; error?: { code: string; message: string }; completedAtS?: number } = {},
): Json {
  const r = env.req;
  return {
    id: env.id,
    object: 'response',
    created_at: env.createdAtS,
    status,
    background: false,
    completed_at: status === 'completed' ? (extra.completedAtS ?? env.createdAtS) : null,
    error: extra.error ?? null,
    incomplete_details: extra.incompleteReason !== undefined ? { reason: extra.incompleteReason } : null,
    instructions: r.instructions,
    max_output_tokens: r.echo.maxOutputTokens,
    metadata: r.metadata ?? {},
    model: env.model,
    output,
    parallel_tool_calls: r.echo.parallelToolCalls,
    previous_response_id: r.previousResponseId,
    prompt_cache_key: r.echo.promptCacheKey,
    reasoning: r.echo.reasoning,
    service_tier: 'default',
    store: r.store,
    temperature: r.echo.temperature ?? 1,
    text: r.echo.text,
    tool_choice: r.echo.toolChoice,
    tools: r.echo.tools,
    top_p: r.echo.topP ?? 1,
    truncation: 'disabled',
    usage: usage === null ? null : encodeResponsesUsage(usage),
    user: r.echo.user,
  };
}

export function reasoningItem(id: string, text: string, status: 'completed' | 'incomplete' | 'in_progress'): Json {
  return { id, type: 'reasoning', status, summary: [], content: status === 'in_progress' ? [] : [{ type: 'reasoning_text', text }] };
}

export function outputTextPart(text: string): Json {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

export function messageItem(id: string, text: string | null, status: 'completed' | 'incomplete' | 'in_progress'): Json {
  return { id, type: 'message', status, role: 'assistant', content: text === null ? [] : [outputTextPart(text)] };
}

/** A custom tool's input, from the arguments of the function call that carried it (`{"input": "..."}`). */
export function customInput(argumentsJson: string): string {
  try {
    const v = JSON.parse(argumentsJson) as unknown;
    if (typeof v === 'object' && v !== null && typeof (v as Json)['input'] === 'string') return (v as Json)['input'] as string;
  } catch {
    /* not JSON: the raw text is the input */
  }
  return argumentsJson;
}

/** A tool call as an output item: `function_call`, or `custom_tool_call` for a tool the client defined as custom. */
export function toolCallItem(
  env: ResponseEnvelope,
  n: number,
  call: { id: string; name: string; argumentsJson: string },
  status: 'completed' | 'incomplete' | 'in_progress',
): Json {
  const ns = env.req.namespaces.get(call.name);
  if (env.req.customTools.has(call.name)) {
    const item: Json = {
      id: itemId(env, 'ctc', n),
      type: 'custom_tool_call',
      status,
      call_id: call.id,
      name: call.name,
      input: status === 'in_progress' ? '' : customInput(call.argumentsJson),
    };
    if (ns !== undefined) item['namespace'] = ns;
    return item;
  }
  const item: Json = {
    id: itemId(env, 'fc', n),
    type: 'function_call',
    status,
    arguments: status === 'in_progress' ? '' : call.argumentsJson,
    call_id: call.id,
    name: call.name,
  };
  if (ns !== undefined) item['namespace'] = ns;
  return item;
}

export function incompleteReason(f: FinishReason): 'max_output_tokens' | 'content_filter' | undefined {
  return f === 'length' ? 'max_output_tokens' : f === 'content_filter' ? 'content_filter' : undefined;
}

/** A whole (non-streamed) chat answer → the Response object and its output items. */
export function encodeResponsesResponse(env: ResponseEnvelope, res: ChatResponse, completedAtS: number): Json {
  const reason = incompleteReason(res.finishReason);
  const itemStatus = reason === undefined ? 'completed' : 'incomplete';
  const output: Json[] = [];
  if (res.reasoning !== undefined && res.reasoning !== '') output.push(reasoningItem(itemId(env, 'rs'), res.reasoning, itemStatus));
  let text: string | null = null;
  for (const part of res.content) if (part.type === 'text') text = (text ?? '') + part.text;
  if (text !== null) output.push(messageItem(itemId(env, 'msg'), text, itemStatus));
  let n = 0;
  for (const part of res.content) if (part.type === 'tool_call') output.push(toolCallItem(env, n++, part, itemStatus));
  return responseObject(
    env,
    reason === undefined ? 'completed' : 'incomplete',
    output,
    res.usage,
    reason === undefined ? { completedAtS } : { incompleteReason: reason },
  );
}
