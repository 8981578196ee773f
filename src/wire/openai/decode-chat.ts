import type { Result } from '../../core/index.ts';
import type { ChatRequest, ResponseFormat, ToolChoice, ToolDefinition } from '../types.ts';
import { decodeMessages } from './decode-messages.ts';
import {
  asArray,
  asObj,
  at,
  checkSingleChoice,
  describeValue,
  extraFields,
  fail,
  idx,
  isAbsent,
  isObj,
  optBool,
  optNumber,
  optString,
  readIncludeUsage,
  readSampling,
  reqNonEmptyString,
  runDecoder,
  type Obj,
} from './decode-reader.ts';

/** Fields this decoder models; everything else goes to `extra` untouched. `n` is checked and dropped. */
const KNOWN = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'seed',
  'user',
  'n',
]);

/** POST /v1/chat/completions body → canonical ChatRequest, or `invalid_request` with details.param. */
export function decodeChatRequest(body: unknown): Result<ChatRequest, 'invalid_request'> {
  return runDecoder(() => decodeChat(body));
}

function decodeChat(body: unknown): ChatRequest {
  const o = asObj(body, '');
  const req: ChatRequest = {
    model: reqNonEmptyString(o, 'model', ''),
    messages: decodeMessages(o['messages'], 'messages'),
    stream: optBool(o, 'stream', '') ?? false,
    includeUsage: false,
    extra: extraFields(o, KNOWN),
  };
  req.includeUsage = readIncludeUsage(o, '');
  checkSingleChoice(o, '');
  // max_completion_tokens superseded max_tokens (Sept 2024); when both are sent, the newer one wins.
  const maxTokens = optNumber(o, 'max_tokens', '', { integer: true, min: 1 });
  const maxCompletion = optNumber(o, 'max_completion_tokens', '', { integer: true, min: 1 });
  const maxOut = maxCompletion ?? maxTokens;
  if (maxOut !== undefined) req.maxTokensOutput = maxOut;
  readSampling(o, req);
  const seed = optNumber(o, 'seed', '', { integer: true });
  if (seed !== undefined) req.seed = seed;
  const user = optString(o, 'user', '');
  if (user !== undefined) req.user = user;
  const parallel = optBool(o, 'parallel_tool_calls', '');
  if (parallel !== undefined) req.parallelToolCalls = parallel;
  if (!isAbsent(o['tools'])) req.tools = decodeTools(o['tools'], 'tools');
  if (!isAbsent(o['tool_choice'])) req.toolChoice = decodeToolChoice(o['tool_choice'], 'tool_choice');
  if (!isAbsent(o['response_format'])) req.responseFormat = decodeResponseFormat(o['response_format'], 'response_format');
  return req;
}

function decodeTools(v: unknown, param: string): ToolDefinition[] {
  return asArray(v, param).map((t, i) => {
    const path = idx(param, i);
    const tool = asObj(t, path);
    if (tool['type'] !== 'function') {
      fail(at(path, 'type'), `Invalid value for '${at(path, 'type')}': only 'function' tools are supported, got ${describeValue(tool['type'])}.`);
    }
    const fnPath = at(path, 'function');
    const fn = asObj(tool['function'], fnPath);
    const def: ToolDefinition = {
      name: reqNonEmptyString(fn, 'name', fnPath),
      // OpenAI treats omitted parameters as a function that takes no arguments.
      parameters: isAbsent(fn['parameters']) ? { type: 'object', properties: {} } : asObj(fn['parameters'], at(fnPath, 'parameters')),
    };
    const description = optString(fn, 'description', fnPath);
    if (description !== undefined) def.description = description;
    optBool(fn, 'strict', fnPath); // type-checked only: the canonical tool has no strict flag
    return def;
  });
}

function decodeToolChoice(v: unknown, param: string): ToolChoice {
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  if (!isObj(v)) {
    return fail(param, `Invalid value for '${param}': expected 'auto', 'none', 'required' or {type:'function', function:{name}}, got ${describeValue(v)}.`);
  }
  if (v['type'] !== 'function') {
    fail(at(param, 'type'), `Invalid value for '${at(param, 'type')}': expected 'function', got ${describeValue(v['type'])}.`);
  }
  const fn = asObj(v['function'], at(param, 'function'));
  return { name: reqNonEmptyString(fn, 'name', at(param, 'function')) };
}

function decodeResponseFormat(v: unknown, param: string): ResponseFormat {
  const rf: Obj = asObj(v, param);
  const type = rf['type'];
  if (type === 'text' || type === 'json_object') return { type };
  if (type !== 'json_schema') {
    return fail(at(param, 'type'), `Invalid value for '${at(param, 'type')}': expected 'text', 'json_object' or 'json_schema', got ${describeValue(type)}.`);
  }
  const jsPath = at(param, 'json_schema');
  const js = asObj(rf['json_schema'], jsPath);
  const out: ResponseFormat = {
    type: 'json_schema',
    name: reqNonEmptyString(js, 'name', jsPath),
    schema: isAbsent(js['schema']) ? {} : asObj(js['schema'], at(jsPath, 'schema')),
  };
  const strict = optBool(js, 'strict', jsPath);
  if (strict !== undefined) out.strict = strict;
  return out;
}
