import type { Result } from '../../core/index.ts';
import type { ChatMessage, ChatRequest, ContentPart, ResponseFormat, ToolChoice, ToolDefinition } from '../types.ts';
import {
  asArray,
  asObj,
  asString,
  at,
  describeValue,
  fail,
  idx,
  isAbsent,
  isObj,
  optBool,
  optNumber,
  optString,
  reqNonEmptyString,
  reqString,
  runDecoder,
  type Obj,
} from './decode-reader.ts';
import type { ResponsesRequest } from './responses-types.ts';

/**
 * POST /v1/responses body → ResponsesRequest (a canonical ChatRequest plus the Responses envelope), or
 * `invalid_request` with details.param, in OpenAI's wording. Unknown fields are tolerated and not forwarded
 * (they are Responses fields, which no chat upstream understands); `reasoning.effort` travels as the chat
 * field `reasoning_effort` to OpenAI-compatible upstreams (the gateway drops extras for other dialects).
 */
export function decodeResponsesRequest(
  body: unknown,
  references: ReadonlyMap<string, Record<string, unknown>> = NO_REFERENCES,
): Result<ResponsesRequest, 'invalid_request'> {
  return runDecoder(() => decodeResponses(body, references));
}

const NO_REFERENCES: ReadonlyMap<string, Record<string, unknown>> = new Map();

/**
 * The ids of `item_reference` items in a request body's input (a tolerant pre-scan: the decoder validates).
 * The caller looks them up among the account's stored responses and passes them to decodeResponsesRequest,
 * which puts each referenced item in the reference's place. (The AI SDK sends its earlier assistant text and
 * reasoning this way when `store` is on.)
 */
export function itemReferenceIds(body: unknown): string[] {
  if (!isObj(body) || !Array.isArray(body['input'])) return [];
  const ids: string[] = [];
  for (const item of body['input']) {
    if (isObj(item) && item['type'] === 'item_reference' && typeof item['id'] === 'string' && item['id'] !== '') ids.push(item['id']);
  }
  return ids;
}

/**
 * Stored conversation items (already validated when they were received or produced) → canonical messages.
 * Used for `previous_response_id`: the history is prepended to the new input.
 */
export function responsesItemsToMessages(items: readonly Record<string, unknown>[]): Result<ChatMessage[], 'invalid_request'> {
  return runDecoder(() => itemsToMessages(items, 'previous_response_id'));
}

/** Hosted tools: run by OpenAI's servers, not by the client. No upstream reached through translation has them. */
const HOSTED_TOOLS = new Set([
  'web_search',
  'web_search_preview',
  'web_search_2025_08_26',
  'web_search_preview_2025_03_11',
  'file_search',
  'code_interpreter',
  'computer_use_preview',
  'computer',
  'image_generation',
  'mcp',
  'local_shell',
  'shell',
  'apply_patch',
  'tool_search',
]);

/** Features that change what the request means and that we cannot honour: refused, never ignored. */
const REFUSED_FIELDS: Record<string, string> = {
  conversation: "the 'conversation' object is not supported; use previous_response_id",
  prompt: 'reusable prompt templates are not supported; send instructions and input',
};

function decodeResponses(body: unknown, references: ReadonlyMap<string, Record<string, unknown>>): ResponsesRequest {
  const o = asObj(body, '');
  const model = reqNonEmptyString(o, 'model', '');
  for (const [field, why] of Object.entries(REFUSED_FIELDS)) {
    if (!isAbsent(o[field])) fail(field, `Invalid value for '${field}': ${why}.`);
  }
  if (optBool(o, 'background', '') === true)
    fail('background', "Invalid value for 'background': background mode is not supported; send the request with stream or wait for the answer.");

  const instructions = optString(o, 'instructions', '') ?? null;
  const inputItems = normaliseInput(o['input']).map((item, i) => {
    if (item['type'] !== 'item_reference') return item;
    const id = reqNonEmptyString(item, 'id', idx('input', i));
    return references.get(id) ?? fail(at(idx('input', i), 'id'), `Item with id '${id}' not found among this account's stored responses.`);
  });
  const messages: ChatMessage[] = [];
  if (instructions !== null && instructions !== '') messages.push({ role: 'system', content: [{ type: 'text', text: instructions }] });
  // A loop, not push(...): a hostile body of ~200,000 items would overflow the call stack (a 500, not a 400).
  for (const m of itemsToMessages(inputItems, 'input')) messages.push(m);
  if (messages.length === 0 && isAbsent(o['previous_response_id'])) fail('input', "Missing required parameter: 'input'.");

  const chat: ChatRequest = { model, messages, stream: optBool(o, 'stream', '') ?? false, includeUsage: true, extra: {} };
  const maxOut = optNumber(o, 'max_output_tokens', '', { integer: true, min: 1 });
  if (maxOut !== undefined) chat.maxTokensOutput = maxOut;
  const temperature = optNumber(o, 'temperature', '', { min: 0, max: 2 });
  if (temperature !== undefined) chat.temperature = temperature;
  const topP = optNumber(o, 'top_p', '', { min: 0, max: 1 });
  if (topP !== undefined) chat.topP = topP;
  const parallel = optBool(o, 'parallel_tool_calls', '');
  if (parallel !== undefined) chat.parallelToolCalls = parallel;
  const user = optString(o, 'safety_identifier', '') ?? optString(o, 'user', '');
  if (user !== undefined) chat.user = user;

  const tools = decodeTools(o['tools']);
  // Tools a client adds mid-conversation (after a client-side tool_search) travel as input items.
  inputItems.forEach((item, i) => {
    if (item['type'] === 'additional_tools') addTools(tools, asArray(item['tools'], at(idx('input', i), 'tools')), at(idx('input', i), 'tools'));
  });
  if (!isAbsent(o['tool_choice'])) {
    const choice = decodeToolChoice(o['tool_choice'], tools.customTools, tools.namespaces);
    if (choice !== undefined) chat.toolChoice = choice;
    // allowed_tools: only the named tools are offered (the others stay defined for the client, unseen upstream).
    const allowed = allowedToolNames(o['tool_choice']);
    if (allowed !== undefined) tools.defs = tools.defs.filter((d) => allowed.has(d.name));
  }
  if (tools.defs.length > 0) chat.tools = tools.defs;
  const forced = chat.toolChoice;
  if (typeof forced === 'object' && !tools.defs.some((d) => d.name === forced.name)) {
    fail('tool_choice.name', `Invalid value for 'tool_choice.name': no tool named '${forced.name}' is defined in tools.`);
  }

  const text = isAbsent(o['text']) ? {} : asObj(o['text'], 'text');
  if (!isAbsent(text['format'])) {
    const rf = decodeTextFormat(text['format'], 'text.format');
    if (rf.type !== 'text') chat.responseFormat = rf;
  }
  if (!isAbsent(text['verbosity']) && !['low', 'medium', 'high'].includes(text['verbosity'] as string)) {
    fail('text.verbosity', `Invalid value for 'text.verbosity': expected 'low', 'medium' or 'high', got ${describeValue(text['verbosity'])}.`);
  }
  const reasoning = isAbsent(o['reasoning']) ? {} : asObj(o['reasoning'], 'reasoning');
  const effort = optString(reasoning, 'effort', 'reasoning');
  if (effort !== undefined) {
    if (!['none', 'minimal', 'low', 'medium', 'high', 'xhigh'].includes(effort)) {
      fail(
        'reasoning.effort',
        `Invalid value for 'reasoning.effort': expected one of 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', got ${describeValue(effort)}.`,
      );
    }
    chat.extra['reasoning_effort'] = effort;
  }

  const store = optBool(o, 'store', '') ?? true;
  const previousResponseId = optString(o, 'previous_response_id', '') ?? null;
  if (previousResponseId === '') fail('previous_response_id', "Invalid value for 'previous_response_id': must not be empty.");
  const metadata = decodeMetadata(o['metadata']);
  if (!isAbsent(o['include'])) asArray(o['include'], 'include').forEach((v, i) => asString(v, idx('include', i)));
  const promptCacheKey = optString(o, 'prompt_cache_key', '') ?? null;

  return {
    chat,
    inputItems,
    instructions,
    previousResponseId,
    store,
    metadata,
    customTools: tools.customTools,
    namespaces: tools.namespaces,
    ignoredTools: tools.ignored,
    echo: {
      tools: tools.echo,
      toolChoice: isAbsent(o['tool_choice']) ? 'auto' : o['tool_choice'],
      text: { format: isAbsent(text['format']) ? { type: 'text' } : text['format'], verbosity: text['verbosity'] ?? 'medium' },
      reasoning: { effort: effort ?? null, summary: reasoning['summary'] ?? null },
      temperature: temperature ?? null,
      topP: topP ?? null,
      maxOutputTokens: maxOut ?? null,
      parallelToolCalls: parallel ?? true,
      promptCacheKey,
      user: user ?? null,
    },
  };
}

function decodeMetadata(v: unknown): Record<string, string> | null {
  if (isAbsent(v)) return null;
  const m = asObj(v, 'metadata');
  const keys = Object.keys(m);
  if (keys.length > 16) fail('metadata', `Invalid value for 'metadata': at most 16 keys are allowed, got ${keys.length}.`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    if (k.length > 64) fail('metadata', "Invalid value for 'metadata': keys are at most 64 characters.");
    const s = asString(m[k], at('metadata', k));
    if (s.length > 512) fail(at('metadata', k), `Invalid value for '${at('metadata', k)}': values are at most 512 characters.`);
    out[k] = s;
  }
  return out;
}

/** `input`: a string (one user message) or a list of items. */
/** At most this many input items in one request (a hostile body must not cost unbounded lookups or work). */
export const MAX_INPUT_ITEMS = 10_000;

function normaliseInput(v: unknown): Record<string, unknown>[] {
  if (isAbsent(v)) return [];
  if (typeof v === 'string') return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: v }] }];
  const list = asArray(v, 'input');
  if (list.length > MAX_INPUT_ITEMS) fail('input', `Invalid 'input': at most ${MAX_INPUT_ITEMS} items, got ${list.length}.`);
  return list.map((item, i) => asObj(item, idx('input', i)));
}

/**
 * Items → canonical messages. A `function_call` joins the assistant message before it (chat APIs carry
 * parallel calls in one assistant message); reasoning items are dropped (no upstream dialect takes another
 * vendor's reasoning back, and OpenAI's are encrypted).
 */
function itemsToMessages(items: readonly Record<string, unknown>[], param: string): ChatMessage[] {
  const out: ChatMessage[] = [];
  const assistantTail = (): ChatMessage => {
    const last = out[out.length - 1];
    if (last?.role === 'assistant') return last;
    const m: ChatMessage = { role: 'assistant', content: [] };
    out.push(m);
    return m;
  };
  items.forEach((item, i) => {
    const path = idx(param, i);
    const type = item['type'] ?? (isAbsent(item['role']) ? undefined : 'message');
    switch (type) {
      case 'message':
        out.push(decodeMessageItem(item, path));
        break;
      case 'function_call': {
        const name = reqNonEmptyString(item, 'name', path);
        const args = item['arguments'];
        const argumentsJson = isAbsent(args) ? '{}' : typeof args === 'string' ? args : JSON.stringify(args);
        assistantTail().content.push({ type: 'tool_call', id: reqNonEmptyString(item, 'call_id', path), name, argumentsJson });
        break;
      }
      case 'custom_tool_call': {
        const name = reqNonEmptyString(item, 'name', path);
        const input = reqString(item, 'input', path);
        assistantTail().content.push({ type: 'tool_call', id: reqNonEmptyString(item, 'call_id', path), name, argumentsJson: JSON.stringify({ input }) });
        break;
      }
      case 'function_call_output':
      case 'custom_tool_call_output':
        out.push({
          role: 'tool',
          content: [{ type: 'tool_result', toolCallId: reqNonEmptyString(item, 'call_id', path), content: toolOutputText(item['output'], at(path, 'output')) }],
        });
        break;
      case 'reasoning':
        if (!isAbsent(item['summary'])) asArray(item['summary'], at(path, 'summary'));
        break;
      case 'additional_tools':
        break; // its tools were added to the request's tools
      case 'item_reference':
        // Resolved before this point (decodeResponses); one left here came from a stored item, which never holds one.
        fail(at(path, 'type'), `Invalid value for '${at(path, 'type')}': this item reference could not be resolved.`);
        break;
      default:
        if (typeof type === 'string' && DROPPED_ITEMS.has(type)) break;
        itemTypeRefused(type, path);
    }
  });
  return out;
}

/**
 * Items of hosted tools and opaque server state that an earlier OpenAI session may have left in a client's
 * history: nothing an upstream of another dialect could read, so they are left out, like reasoning items.
 */
const DROPPED_ITEMS = new Set([
  'web_search_call',
  'file_search_call',
  'tool_search_call',
  'tool_search_output',
  'image_generation_call',
  'code_interpreter_call',
  'compaction',
  'mcp_list_tools',
]);

function itemTypeRefused(type: unknown, path: string): never {
  if (isAbsent(type)) fail(at(path, 'type'), `Missing required parameter: '${at(path, 'type')}'.`);
  return fail(
    at(path, 'type'),
    `Invalid value for '${at(path, 'type')}': input items of type ${describeValue(type)} are not supported (use 'message', 'function_call', 'function_call_output', 'custom_tool_call', 'custom_tool_call_output' or 'reasoning').`,
  );
}

function decodeMessageItem(item: Obj, path: string): ChatMessage {
  const role = item['role'];
  const cpath = at(path, 'content');
  switch (role) {
    case 'user':
      return { role: 'user', content: decodeParts(item['content'], cpath, 'input') };
    case 'system':
    case 'developer':
      return { role: 'system', content: decodeParts(item['content'], cpath, 'input') };
    case 'assistant':
      return { role: 'assistant', content: decodeParts(item['content'], cpath, 'output') };
    default:
      if (isAbsent(role)) fail(at(path, 'role'), `Missing required parameter: '${at(path, 'role')}'.`);
      return fail(
        at(path, 'role'),
        `Invalid value for '${at(path, 'role')}': expected one of 'user', 'assistant', 'system', 'developer', got ${describeValue(role)}.`,
      );
  }
}

/** Message content: a string or parts (input_text / input_image for input roles; output_text / refusal for the assistant). */
function decodeParts(v: unknown, param: string, side: 'input' | 'output'): ContentPart[] {
  if (typeof v === 'string') return [{ type: 'text', text: v }];
  if (isAbsent(v)) fail(param, `Missing required parameter: '${param}'.`);
  return asArray(v, param).map((p, i) => {
    const path = idx(param, i);
    const part = asObj(p, path);
    const type = part['type'];
    if (type === 'input_text' || type === 'output_text' || type === 'text') return { type: 'text', text: reqString(part, 'text', path) };
    if (type === 'refusal') return { type: 'text', text: reqString(part, 'refusal', path) };
    if (type === 'input_image' && side === 'input') {
      const url = optString(part, 'image_url', path);
      if (url === undefined || url === '') {
        return fail(at(path, 'image_url'), `Invalid value for '${at(path, 'image_url')}': send the image as a URL or a data: URL (file_id is not supported).`);
      }
      const out: ContentPart = { type: 'image', url };
      const media = /^data:([^;,]+)[;,]/.exec(url);
      if (media?.[1] !== undefined) out.mediaType = media[1];
      return out;
    }
    if (type === 'input_file')
      return fail(at(path, 'type'), `Invalid value for '${at(path, 'type')}': 'input_file' parts are not supported; send the file's text as input_text.`);
    if (isAbsent(type)) return fail(at(path, 'type'), `Missing required parameter: '${at(path, 'type')}'.`);
    return fail(
      at(path, 'type'),
      `Invalid value for '${at(path, 'type')}': content part type ${describeValue(type)} is not supported here (use ${side === 'input' ? "'input_text' or 'input_image'" : "'output_text' or 'refusal'"}).`,
    );
  });
}

/**
 * A tool's output: a string, or parts whose text is joined. A canonical tool result is text, so an image or a
 * file in a tool's output (Codex's view_image sends one) is replaced by a note saying it was not forwarded.
 */
function toolOutputText(v: unknown, param: string): string {
  if (typeof v === 'string') return v;
  if (isAbsent(v)) fail(param, `Missing required parameter: '${param}'.`);
  let text = '';
  asArray(v, param).forEach((p, i) => {
    const part = asObj(p, idx(param, i));
    if (typeof part['text'] === 'string') text += part['text'];
    else if (part['type'] === 'input_image' || part['type'] === 'input_file')
      text += `[${part['type'] === 'input_image' ? 'an image' : 'a file'} from the tool was not forwarded: this gateway passes tool output as text]`;
    else
      fail(
        at(idx(param, i), 'type'),
        `Invalid value for '${at(idx(param, i), 'type')}': tool output parts are 'input_text', 'input_image' or 'input_file', got ${describeValue(part['type'])}.`,
      );
  });
  return text;
}

/** A custom tool's free-form input travels as the one string parameter of a function tool. */
export function customToolParameters(description: string | undefined): Record<string, unknown> {
  return {
    type: 'object',
    properties: { input: { type: 'string', description: description ?? 'The raw input for this tool, exactly as the tool expects it.' } },
    required: ['input'],
    additionalProperties: false,
  };
}

/** A custom tool's input format (a grammar or a regex), told to the model in the description of `input`. */
function customFormatNote(format: unknown): string | undefined {
  if (!isObj(format) || format['type'] !== 'grammar' || typeof format['definition'] !== 'string') return undefined;
  const syntax = typeof format['syntax'] === 'string' ? format['syntax'] : 'grammar';
  return `The raw input for this tool. It must follow this ${syntax} definition:\n${format['definition']}`;
}

interface DecodedTools {
  defs: ToolDefinition[];
  customTools: Set<string>;
  namespaces: Map<string, string>;
  ignored: string[];
  echo: unknown[];
}

function decodeTools(v: unknown): DecodedTools {
  const out: DecodedTools = { defs: [], customTools: new Set(), namespaces: new Map(), ignored: [], echo: [] };
  if (isAbsent(v)) return out;
  const list = asArray(v, 'tools');
  out.echo = list;
  addTools(out, list, 'tools');
  return out;
}

function addTools(out: DecodedTools, list: unknown[], param: string): void {
  const add = (t: Obj, path: string, namespace: string | undefined): void => {
    const type = t['type'];
    if (type === 'function') {
      const def: ToolDefinition = {
        name: reqNonEmptyString(t, 'name', path),
        parameters: isAbsent(t['parameters']) ? { type: 'object', properties: {} } : asObj(t['parameters'], at(path, 'parameters')),
      };
      const description = optString(t, 'description', path);
      if (description !== undefined) def.description = description;
      optBool(t, 'strict', path);
      out.defs.push(def);
      if (namespace !== undefined) out.namespaces.set(def.name, namespace);
    } else if (type === 'custom') {
      const name = reqNonEmptyString(t, 'name', path);
      const description = optString(t, 'description', path);
      const def: ToolDefinition = { name, parameters: customToolParameters(customFormatNote(t['format'])) };
      if (description !== undefined) def.description = description;
      out.defs.push(def);
      out.customTools.add(name);
      if (namespace !== undefined) out.namespaces.set(name, namespace);
    } else if (type === 'namespace' && namespace === undefined) {
      const ns = reqNonEmptyString(t, 'name', path);
      asArray(t['tools'], at(path, 'tools')).forEach((sub, j) => add(asObj(sub, idx(at(path, 'tools'), j)), idx(at(path, 'tools'), j), ns));
    } else if (typeof type === 'string' && (HOSTED_TOOLS.has(type) || type.startsWith('web_search'))) {
      if (!out.ignored.includes(type)) out.ignored.push(type);
    } else {
      if (isAbsent(type)) fail(at(path, 'type'), `Missing required parameter: '${at(path, 'type')}'.`);
      fail(at(path, 'type'), `Invalid value for '${at(path, 'type')}': tools of type ${describeValue(type)} are not supported (use 'function' or 'custom').`);
    }
  };
  list.forEach((t, i) => add(asObj(t, idx(param, i)), idx(param, i), undefined));
}

function decodeToolChoice(v: unknown, customTools: ReadonlySet<string>, namespaces: ReadonlyMap<string, string>): ToolChoice | undefined {
  const param = 'tool_choice';
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  if (!isObj(v)) return fail(param, `Invalid value for '${param}': expected 'auto', 'none', 'required' or an object, got ${describeValue(v)}.`);
  const type = v['type'];
  if (type === 'function' || type === 'custom') {
    const name = reqNonEmptyString(v, 'name', param);
    if (type === 'custom' && !customTools.has(name))
      fail(at(param, 'name'), `Invalid value for '${at(param, 'name')}': no custom tool named '${name}' is defined in tools.`);
    void namespaces;
    return { name };
  }
  if (type === 'allowed_tools') {
    const mode = v['mode'];
    if (mode !== 'auto' && mode !== 'required')
      fail(at(param, 'mode'), `Invalid value for '${at(param, 'mode')}': expected 'auto' or 'required', got ${describeValue(mode)}.`);
    return mode;
  }
  if (typeof type === 'string' && (HOSTED_TOOLS.has(type) || type.startsWith('web_search'))) {
    return fail(
      at(param, 'type'),
      `Invalid value for '${at(param, 'type')}': the hosted tool '${type}' is not available through this gateway, so it cannot be forced.`,
    );
  }
  return fail(at(param, 'type'), `Invalid value for '${at(param, 'type')}': expected 'function', 'custom' or 'allowed_tools', got ${describeValue(type)}.`);
}

/** The names an `allowed_tools` tool choice allows (hosted ones left out), or undefined for any other choice. */
function allowedToolNames(v: unknown): Set<string> | undefined {
  if (!isObj(v) || v['type'] !== 'allowed_tools') return undefined;
  const param = 'tool_choice.tools';
  const names = new Set<string>();
  asArray(v['tools'], param).forEach((t, i) => {
    const tool = asObj(t, idx(param, i));
    if (tool['type'] === 'function' || tool['type'] === 'custom') names.add(reqNonEmptyString(tool, 'name', idx(param, i)));
  });
  return names;
}

function decodeTextFormat(v: unknown, param: string): ResponseFormat {
  const f = asObj(v, param);
  const type = f['type'];
  if (type === 'text' || type === 'json_object') return { type };
  if (type !== 'json_schema') {
    return fail(at(param, 'type'), `Invalid value for '${at(param, 'type')}': expected 'text', 'json_object' or 'json_schema', got ${describeValue(type)}.`);
  }
  const out: ResponseFormat = {
    type: 'json_schema',
    name: reqNonEmptyString(f, 'name', param),
    schema: isAbsent(f['schema'])
      ? fail(at(param, 'schema'), `Missing required parameter: '${at(param, 'schema')}'.`)
      : asObj(f['schema'], at(param, 'schema')),
  };
  const strict = optBool(f, 'strict', param);
  if (strict !== undefined) out.strict = strict;
  return out;
}
