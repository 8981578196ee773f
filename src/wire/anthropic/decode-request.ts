/**
 * POST /v1/messages and /v1/messages/count_tokens bodies -> canonical ChatRequest.
 * Wire format: https://docs.anthropic.com/en/api/messages (max_tokens is required; system is a string
 * or a list of text blocks; tool_choice is {type: auto|any|tool|none, name?, disable_parallel_tool_use?}).
 */
import { ok } from '../../core/index.ts';
import type { ChatMessage, ChatRequest, ContentPart, ToolChoice, ToolDefinition } from '../types.ts';
import { decodeMessage } from './decode-content.ts';
import {
  fail,
  isRecord,
  optionalBoolean,
  optionalInteger,
  optionalNumber,
  optionalString,
  optionalStringArray,
  pathOf,
  requireArray,
  requireRecord,
  requireString,
  type DecodeResult,
} from './validate.ts';

/** Top-level fields the canonical request models; every other field goes to `extra` untouched (thinking, service_tier, ...). */
const MODELLED_FIELDS = new Set([
  'model',
  'messages',
  'max_tokens',
  'system',
  'tools',
  'tool_choice',
  'stop_sequences',
  'temperature',
  'top_p',
  'top_k',
  'metadata',
  'stream',
]);

/** Decode a Messages API request body. */
export function decodeMessagesRequest(body: unknown): DecodeResult<ChatRequest> {
  return decode(body, true);
}

/**
 * Decode a count_tokens body: the same shape without max_tokens (and never streamed). The caller
 * estimates tokens on the canonical messages, system message and tools.
 */
export function decodeCountTokensRequest(body: unknown): DecodeResult<ChatRequest> {
  return decode(body, false);
}

function decode(body: unknown, isMessages: boolean): DecodeResult<ChatRequest> {
  if (!isRecord(body)) return fail('body', 'Input should be a valid dictionary');
  const model = requireString(body['model'], 'model');
  if (!model.ok) return model;
  if (model.value === '') return fail('model', 'String should have at least 1 character');

  let maxTokensOutput: number | undefined;
  if (isMessages) {
    if (body['max_tokens'] === undefined) return fail('max_tokens', 'Field required');
    const maxTokens = optionalInteger(body['max_tokens'], 'max_tokens', 1);
    if (!maxTokens.ok) return maxTokens;
    maxTokensOutput = maxTokens.value;
  }

  const requires: string[] = [];
  const messages = decodeConversation(body['system'], body['messages'], requires);
  if (!messages.ok) return messages;

  const req: ChatRequest = {
    model: model.value,
    messages: messages.value,
    stream: false,
    // Anthropic always reports usage in message_start / message_delta.
    includeUsage: true,
    extra: {},
    anthropicNative: { body, headers: {}, requires },
  };
  if (maxTokensOutput !== undefined) req.maxTokensOutput = maxTokensOutput;
  if (isMessages) {
    const stream = optionalBoolean(body['stream'], 'stream');
    if (!stream.ok) return stream;
    req.stream = stream.value === true;
  }
  const sampling = decodeSampling(body, req);
  if (!sampling.ok) return sampling;
  const tools = decodeTools(body, req, requires);
  if (!tools.ok) return tools;
  const format = decodeOutputFormat(body['output_config'], body['output_format'], req);
  if (!format.ok) return format;
  const metadata = decodeMetadata(body['metadata'], req);
  if (!metadata.ok) return metadata;
  for (const key of Object.keys(body)) {
    if (!MODELLED_FIELDS.has(key)) req.extra[key] = body[key];
  }
  return ok(req);
}

function decodeConversation(systemRaw: unknown, messagesRaw: unknown, requires: string[]): DecodeResult<ChatMessage[]> {
  const out: ChatMessage[] = [];
  const system = decodeSystem(systemRaw);
  if (!system.ok) return system;
  if (system.value.length > 0) out.push({ role: 'system', content: system.value });
  const list = requireArray(messagesRaw, 'messages');
  if (!list.ok) return list;
  if (list.value.length === 0) return fail('messages', 'at least one message is required');
  for (let i = 0; i < list.value.length; i++) {
    const decoded = decodeMessage(list.value[i], pathOf('messages', i), requires);
    if (!decoded.ok) return decoded;
    for (const m of decoded.value) out.push(m);
  }
  return ok(out);
}

function decodeSystem(raw: unknown): DecodeResult<ContentPart[]> {
  if (raw === undefined || raw === null) return ok([]);
  if (typeof raw === 'string') return ok(raw === '' ? [] : [{ type: 'text', text: raw }]);
  if (!Array.isArray(raw)) return fail('system', 'Input should be a valid string or list of text blocks');
  const parts: ContentPart[] = [];
  for (let i = 0; i < raw.length; i++) {
    const param = pathOf('system', i);
    const block = requireRecord(raw[i], param);
    if (!block.ok) return block;
    if (block.value['type'] !== 'text') return fail(pathOf(param, 'type'), "Input should be 'text'");
    const text = requireString(block.value['text'], pathOf(param, 'text'));
    if (!text.ok) return text;
    parts.push({ type: 'text', text: text.value });
  }
  return ok(parts);
}

function decodeSampling(body: Record<string, unknown>, req: ChatRequest): DecodeResult<true> {
  const temperature = optionalNumber(body['temperature'], 'temperature', 0, 1);
  if (!temperature.ok) return temperature;
  const topP = optionalNumber(body['top_p'], 'top_p', 0, 1);
  if (!topP.ok) return topP;
  const topK = optionalInteger(body['top_k'], 'top_k', 0);
  if (!topK.ok) return topK;
  const stop = optionalStringArray(body['stop_sequences'], 'stop_sequences');
  if (!stop.ok) return stop;
  if (temperature.value !== undefined) req.temperature = temperature.value;
  if (topP.value !== undefined) req.topP = topP.value;
  if (topK.value !== undefined) req.topK = topK.value;
  if (stop.value !== undefined && stop.value.length > 0) req.stop = stop.value;
  return ok(true);
}

function decodeTools(body: Record<string, unknown>, req: ChatRequest, requires: string[]): DecodeResult<true> {
  if (body['tools'] !== undefined && body['tools'] !== null) {
    const list = requireArray(body['tools'], 'tools');
    if (!list.ok) return list;
    const tools: ToolDefinition[] = [];
    for (let i = 0; i < list.value.length; i++) {
      const tool = decodeTool(list.value[i], pathOf('tools', i), requires);
      if (!tool.ok) return tool;
      if (tool.value !== undefined) tools.push(tool.value);
    }
    if (tools.length > 0) req.tools = tools;
  }
  if (body['tool_choice'] !== undefined && body['tool_choice'] !== null) {
    const choice = decodeToolChoice(body['tool_choice'], req);
    if (!choice.ok) return choice;
    req.toolChoice = choice.value;
  }
  return ok(true);
}

/** A custom tool, or undefined for a server tool (listed in `requires`: only Anthropic runs it). */
function decodeTool(raw: unknown, param: string, requires: string[]): DecodeResult<ToolDefinition | undefined> {
  const rec = requireRecord(raw, param);
  if (!rec.ok) return rec;
  const type = rec.value['type'];
  // Server tools (web_search_20250305, bash_20250124, ...) run inside Anthropic; other upstreams cannot honour them.
  if (type !== undefined && type !== null && type !== 'custom') {
    if (typeof type !== 'string' || type === '') return fail(pathOf(param, 'type'), 'Input should be a valid string');
    requires.push(`${param}: the server tool '${type}'`);
    return ok(undefined);
  }
  const name = requireString(rec.value['name'], pathOf(param, 'name'));
  if (!name.ok) return name;
  if (name.value === '') return fail(pathOf(param, 'name'), 'String should have at least 1 character');
  const description = optionalString(rec.value['description'], pathOf(param, 'description'));
  if (!description.ok) return description;
  const schema = requireRecord(rec.value['input_schema'], pathOf(param, 'input_schema'));
  if (!schema.ok) return schema;
  const tool: ToolDefinition = { name: name.value, parameters: schema.value };
  if (description.value !== undefined) tool.description = description.value;
  return ok(tool);
}

function decodeToolChoice(raw: unknown, req: ChatRequest): DecodeResult<ToolChoice> {
  const rec = requireRecord(raw, 'tool_choice');
  if (!rec.ok) return rec;
  const parallel = optionalBoolean(rec.value['disable_parallel_tool_use'], 'tool_choice.disable_parallel_tool_use');
  if (!parallel.ok) return parallel;
  if (parallel.value === true) req.parallelToolCalls = false;
  switch (rec.value['type']) {
    case 'auto':
      return ok('auto');
    case 'any':
      return ok('required');
    case 'none':
      return ok('none');
    case 'tool': {
      const name = requireString(rec.value['name'], 'tool_choice.name');
      return name.ok ? ok({ name: name.value }) : name;
    }
    case undefined:
      return fail('tool_choice.type', 'Field required');
    default:
      return fail('tool_choice.type', "Input should be 'auto', 'any', 'tool' or 'none'");
  }
}

/**
 * output_config.format (structured output, as @ai-sdk/anthropic sends it): {type: "json_schema", schema}.
 * Kept as the canonical response format, so an OpenAI-style upstream gets response_format; an Anthropic
 * upstream gets output_config itself from the native body.
 */
function decodeOutputFormat(raw: unknown, beta: unknown, req: ChatRequest): DecodeResult<true> {
  let format: unknown;
  let param = 'output_config.format';
  if (raw !== undefined && raw !== null) {
    const rec = requireRecord(raw, 'output_config');
    if (!rec.ok) return rec;
    format = rec.value['format'];
  }
  if ((format === undefined || format === null) && beta !== undefined && beta !== null) {
    // The structured-outputs beta's top-level output_format, same shape.
    format = beta;
    param = 'output_format';
  }
  if (format === undefined || format === null) return ok(true);
  const f = requireRecord(format, param);
  if (!f.ok) return f;
  if (f.value['type'] !== 'json_schema') return fail(`${param}.type`, "Input should be 'json_schema'");
  const schema = requireRecord(f.value['schema'], `${param}.schema`);
  if (!schema.ok) return schema;
  req.responseFormat = { type: 'json_schema', name: 'output', schema: schema.value };
  return ok(true);
}

function decodeMetadata(raw: unknown, req: ChatRequest): DecodeResult<true> {
  if (raw === undefined || raw === null) return ok(true);
  const rec = requireRecord(raw, 'metadata');
  if (!rec.ok) return rec;
  const user = optionalString(rec.value['user_id'], 'metadata.user_id');
  if (!user.ok) return user;
  if (user.value !== undefined) req.user = user.value;
  return ok(true);
}
