import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  ContentPart,
  EmbeddingRequest,
  ResponseFormat,
  ToolChoice,
  ToolDefinition,
} from '../../wire/index.ts';
import { jsonNumber } from '../../wire/index.ts';
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
    body['tools'] = encodeTools(req.tools);
    // OpenAI rejects parallel_tool_calls without tools.
    if (req.parallelToolCalls !== undefined) body['parallel_tool_calls'] = req.parallelToolCalls;
  }
  if (req.toolChoice !== undefined) body['tool_choice'] = encodeToolChoice(req.toolChoice);
  if (req.responseFormat !== undefined) body['response_format'] = encodeResponseFormat(req.responseFormat);
  return body;
}

function hasKeys(o: Obj): boolean {
  for (const _ in o) return true;
  return false;
}

/**
 * JSON.stringify(buildChatBody(call, req, stream)), written field by field in the same order: no body object, no
 * message objects, and the generic serializer only for the nested values (tools, schemas, stop lists). A request
 * with extra fields takes the general path. build-request.test.ts checks the two give the same text.
 */
export function buildChatBodyJson(call: UpstreamCall, req: ChatRequest, stream: boolean): string {
  if (hasKeys(req.extra)) return JSON.stringify(buildChatBody(call, req, stream));
  let out = `{"model":${JSON.stringify(call.upstreamModel)},"messages":${messagesJson(req.messages)}`;
  if (stream) out += ',"stream":true,"stream_options":{"include_usage":true}';
  if (req.maxTokensOutput !== undefined) out += `,"${maxTokensField(call.provider.baseUrl)}":${jsonNumber(req.maxTokensOutput)}`;
  if (req.temperature !== undefined) out += `,"temperature":${jsonNumber(req.temperature)}`;
  if (req.topP !== undefined) out += `,"top_p":${jsonNumber(req.topP)}`;
  if (req.stop !== undefined && req.stop.length > 0) out += `,"stop":${JSON.stringify(req.stop)}`;
  if (req.seed !== undefined) out += `,"seed":${jsonNumber(req.seed)}`;
  if (req.user !== undefined) out += `,"user":${JSON.stringify(req.user)}`;
  if (req.tools !== undefined && req.tools.length > 0) {
    out += `,"tools":${JSON.stringify(encodeTools(req.tools))}`;
    if (req.parallelToolCalls !== undefined) out += `,"parallel_tool_calls":${req.parallelToolCalls}`;
  }
  if (req.toolChoice !== undefined) out += `,"tool_choice":${JSON.stringify(encodeToolChoice(req.toolChoice))}`;
  if (req.responseFormat !== undefined) out += `,"response_format":${JSON.stringify(encodeResponseFormat(req.responseFormat))}`;
  return `${out}}`;
}

/**
 * JSON.stringify(encodeMessages(messages)): system, single-text user and text-only assistant turns (nearly all of
 * them) are written directly; any other turn goes through encodeMessages on its own.
 */
function messagesJson(messages: ChatMessage[]): string {
  let out = '';
  for (const m of messages) {
    const one = plainMessageJson(m) ?? JSON.stringify(encodeMessages([m])).slice(1, -1);
    if (one !== '') out += out === '' ? one : `,${one}`;
  }
  return `[${out}]`;
}

/** One turn's JSON text when it is text only (as encodeMessages writes it), else undefined. */
function plainMessageJson(m: ChatMessage): string | undefined {
  let text: string;
  if (m.role === 'user') {
    const first = m.content[0];
    if (m.content.length !== 1 || first?.type !== 'text') return undefined;
    text = first.text;
  } else if (m.role === 'system' || m.role === 'assistant') {
    text = '';
    const sep = m.role === 'system' ? '\n' : '';
    for (let i = 0; i < m.content.length; i++) {
      const p = m.content[i]!;
      if (p.type !== 'text') return undefined;
      text = i === 0 ? p.text : text + sep + p.text;
    }
  } else {
    return undefined;
  }
  const name = m.name === undefined ? '' : `,"name":${JSON.stringify(m.name)}`;
  return `{"role":"${m.role}","content":${JSON.stringify(text)}${name}}`;
}

function encodeTools(tools: ToolDefinition[]): Obj[] {
  return tools.map((t) => ({
    type: 'function',
    function: t.description === undefined ? { name: t.name, parameters: t.parameters } : { name: t.name, description: t.description, parameters: t.parameters },
  }));
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
    content: parts.map((p) =>
      p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image_url', image_url: { url: p.type === 'image' ? p.url : '' } },
    ),
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
