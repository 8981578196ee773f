import type {
  ChatMessage, ChatRequest, CompletionRequest, ContentPart, EmbeddingRequest, ResponseFormat, ToolChoice,
} from '../../wire/index.ts';
import type { UpstreamCall } from '../types.ts';

type Obj = Record<string, unknown>;

/**
 * OpenAI itself rejects max_tokens for its reasoning models and asks for max_completion_tokens, while
 * most compatible vendors (DeepSeek, Qwen, GLM, Moonshot, Ark, MiniMax, vLLM, Ollama) know only max_tokens.
 */
function maxTokensField(baseUrl: string): 'max_tokens' | 'max_completion_tokens' {
  return /^https?:\/\/api\.openai\.com(?:[:/]|$)/i.test(baseUrl) ? 'max_completion_tokens' : 'max_tokens';
}

/** Canonical chat request → upstream body. `extra` goes first so the modelled fields always win. */
export function buildChatBody(call: UpstreamCall, req: ChatRequest, stream: boolean): Obj {
  const body: Obj = { ...req.extra, model: call.upstreamModel, messages: encodeMessages(req.messages) };
  if (stream) {
    body['stream'] = true;
    // Always asked for, whatever the client wanted: usage is what we charge on.
    body['stream_options'] = { include_usage: true };
  }
  if (req.maxTokensOutput !== undefined) body[maxTokensField(call.provider.baseUrl)] = req.maxTokensOutput;
  if (req.temperature !== undefined) body['temperature'] = req.temperature;
  if (req.topP !== undefined) body['top_p'] = req.topP;
  if (req.stop !== undefined && req.stop.length > 0) body['stop'] = req.stop;
  if (req.seed !== undefined) body['seed'] = req.seed;
  if (req.user !== undefined) body['user'] = req.user;
  if (req.tools !== undefined && req.tools.length > 0) {
    body['tools'] = req.tools.map((t) => ({
      type: 'function',
      function: t.description === undefined
        ? { name: t.name, parameters: t.parameters }
        : { name: t.name, description: t.description, parameters: t.parameters },
    }));
    // OpenAI rejects parallel_tool_calls without tools.
    if (req.parallelToolCalls !== undefined) body['parallel_tool_calls'] = req.parallelToolCalls;
  }
  if (req.toolChoice !== undefined) body['tool_choice'] = encodeToolChoice(req.toolChoice);
  if (req.responseFormat !== undefined) body['response_format'] = encodeResponseFormat(req.responseFormat);
  return body;
}

function encodeToolChoice(choice: ToolChoice): unknown {
  return typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
}

function encodeResponseFormat(rf: ResponseFormat): Obj {
  if (rf.type !== 'json_schema') return { type: rf.type };
  const js: Obj = { name: rf.name, schema: rf.schema };
  if (rf.strict !== undefined) js['strict'] = rf.strict;
  return { type: 'json_schema', json_schema: js };
}

/**
 * Canonical messages → OpenAI messages. A tool_result part becomes its own `tool` message (Anthropic
 * puts them in user turns), placed before the rest of that turn so it directly follows the assistant's
 * tool calls, which OpenAI requires.
 */
export function encodeMessages(messages: ChatMessage[]): Obj[] {
  const out: Obj[] = [];
  for (const m of messages) {
    for (const p of m.content) {
      if (p.type === 'tool_result') out.push({ role: 'tool', tool_call_id: p.toolCallId, content: p.content });
    }
    if (m.role === 'tool') continue;
    const msg = m.role === 'assistant' ? encodeAssistant(m.content) : encodeUserOrSystem(m);
    if (msg === undefined) continue;
    if (m.name !== undefined) msg['name'] = m.name;
    out.push(msg);
  }
  return out;
}

function encodeAssistant(parts: ContentPart[]): Obj {
  let text: string | null = null;
  const toolCalls: Obj[] = [];
  for (const p of parts) {
    if (p.type === 'text') text = (text ?? '') + p.text;
    else if (p.type === 'tool_call') toolCalls.push({ id: p.id, type: 'function', function: { name: p.name, arguments: p.argumentsJson } });
  }
  const msg: Obj = { role: 'assistant', content: text ?? (toolCalls.length > 0 ? null : '') };
  if (toolCalls.length > 0) msg['tool_calls'] = toolCalls;
  return msg;
}

/**
 * System prompts are sent as one string (several compatible vendors accept nothing else); user turns
 * are a plain string when they are a single text, otherwise text / image_url parts.
 * A user turn that held only tool results produces no user message.
 */
function encodeUserOrSystem(m: ChatMessage): Obj | undefined {
  const parts = m.content.filter((p) => p.type === 'text' || p.type === 'image');
  if (m.role === 'system') {
    return { role: 'system', content: parts.map((p) => (p.type === 'text' ? p.text : '')).join('\n') };
  }
  if (parts.length === 0) return m.content.length === 0 ? { role: 'user', content: '' } : undefined;
  const first = parts[0];
  if (parts.length === 1 && first?.type === 'text') return { role: 'user', content: first.text };
  return {
    role: 'user',
    content: parts.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image_url', image_url: { url: p.type === 'image' ? p.url : '' } })),
  };
}

/** Legacy completions body. */
export function buildCompletionBody(call: UpstreamCall, req: CompletionRequest, stream: boolean): Obj {
  const body: Obj = { ...req.extra, model: call.upstreamModel, prompt: req.prompt };
  if (stream) {
    body['stream'] = true;
    body['stream_options'] = { include_usage: true };
  }
  if (req.maxTokensOutput !== undefined) body['max_tokens'] = req.maxTokensOutput;
  if (req.temperature !== undefined) body['temperature'] = req.temperature;
  if (req.topP !== undefined) body['top_p'] = req.topP;
  if (req.stop !== undefined && req.stop.length > 0) body['stop'] = req.stop;
  return body;
}

/**
 * Embeddings body. encoding_format is left out (float everywhere); the client's choice is applied
 * when re-encoding, and a vendor that answers base64 anyway is decoded.
 */
export function buildEmbeddingBody(call: UpstreamCall, req: EmbeddingRequest): Obj {
  const body: Obj = { ...req.extra, model: call.upstreamModel, input: req.input };
  if (req.dimensions !== undefined) body['dimensions'] = req.dimensions;
  if (req.user !== undefined) body['user'] = req.user;
  return body;
}
