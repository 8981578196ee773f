import { PromptMeter, buildAnswer, groupTokens, type Answer } from './answer.ts';
import { sendAnswerJson, sendStream, type Exchange } from './exchange.ts';
import { isRecord, nowSeconds, prepare, readCap, type Json, type Prepared } from './flow.ts';
import { valueFromSchema } from './tool-args.ts';
import { pickAgentTool, toolResultAnswer, type OfferedTool } from './agent.ts';
import type { Directives } from './types.ts';

/**
 * POST /v1/responses, from OpenAI's Responses API reference: a `response` object whose `output` holds
 * reasoning / message / function_call items, and with `stream: true` the typed SSE events (`event: <type>`,
 * each with a `sequence_number`): response.created, response.in_progress, output_item.added,
 * content_part.added, output_text.delta …, the .done events and response.completed (or response.incomplete
 * when max_output_tokens cut the answer). `text.format` json_schema / json_object make the answer a JSON value
 * built from the schema (tool-args.ts: objects with every property, arrays, enums, numbers, strings, booleans).
 * Function tools are picked as in the other dialects (agent.ts) and a last function_call_output is answered
 * "The tool returned: …".
 */

const IMAGE_BYTES = 340;

function meterContent(content: unknown, meter: PromptMeter): void {
  if (typeof content === 'string') return meter.text(content);
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (!isRecord(part)) continue;
    if (typeof part['text'] === 'string') meter.text(part['text']);
    else if (typeof part['refusal'] === 'string') meter.text(part['refusal']);
    else meter.extra(IMAGE_BYTES);
  }
}

/** Meters instructions and input; returns an error message for an input that is neither a string nor a list of objects. */
function meterInput(body: Json, meter: PromptMeter): string | undefined {
  if (typeof body['instructions'] === 'string' && body['instructions'] !== '') {
    meter.message();
    meter.text(body['instructions']);
  }
  const input = body['input'];
  if (typeof input === 'string') {
    meter.message();
    meter.text(input);
    return undefined;
  }
  if (!Array.isArray(input) || input.length === 0) return "Invalid 'input': expected a string or a non-empty array of items.";
  for (let i = 0; i < input.length; i++) {
    const item: unknown = input[i];
    if (!isRecord(item)) return `Invalid 'input[${i}]': expected an object.`;
    const type = item['type'] ?? 'message';
    meter.message();
    if (type === 'message') meterContent(item['content'], meter);
    else if (type === 'function_call' && typeof item['arguments'] === 'string') meter.text(item['arguments']);
    else if (type === 'function_call_output' || type === 'custom_tool_call_output') meterContent(item['output'], meter);
    else if (type === 'custom_tool_call' && typeof item['input'] === 'string') meter.text(item['input']);
  }
  return undefined;
}

/** The last input item is a user turn (not a tool result): the moment a model with tools calls one. */
function lastIsUserTurn(body: Json): boolean {
  const input = body['input'];
  if (typeof input === 'string') return true;
  if (!Array.isArray(input)) return false;
  const last: unknown = input[input.length - 1];
  return isRecord(last) && (last['type'] ?? 'message') === 'message' && last['role'] === 'user';
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (isRecord(p) && typeof p['text'] === 'string' ? p['text'] : ''))
    .filter((t) => t !== '')
    .join('\n');
}

/** The prompt text of the last (user) turn. */
function lastUserText(body: Json): string {
  const input = body['input'];
  if (typeof input === 'string') return input;
  const last: unknown = Array.isArray(input) ? input[input.length - 1] : undefined;
  return isRecord(last) ? contentText(last['content']) : '';
}

/** "The tool returned: …" when the last input item is a tool's output, as the chat and Messages sides answer. */
function toolOutputAnswer(body: Json): string | undefined {
  const input = body['input'];
  const last: unknown = Array.isArray(input) ? input[input.length - 1] : undefined;
  if (!isRecord(last) || (last['type'] !== 'function_call_output' && last['type'] !== 'custom_tool_call_output')) return undefined;
  return toolResultAnswer(contentText(last['output']));
}

/** Function tools picked like the other dialects (agent.ts): forced, the `tool` directive, named, a verb, a harmless default. */
function pickTool(body: Json, directives: Directives): { name: string; argsJson: string } | undefined {
  const tools = body['tools'];
  const choice = body['tool_choice'];
  if (!Array.isArray(tools) || tools.length === 0 || choice === 'none' || !lastIsUserTurn(body)) return undefined;
  const forced = isRecord(choice) && typeof choice['name'] === 'string' ? choice['name'] : undefined;
  const offered: OfferedTool[] = [];
  for (const t of tools)
    if (isRecord(t) && t['type'] === 'function' && typeof t['name'] === 'string') offered.push({ name: t['name'], schema: t['parameters'] });
  return pickAgentTool(offered, lastUserText(body), forced, directives.tool, directives.toolArgs === 'all');
}

/** The JSON text `text.format` asks for, or undefined for plain text. */
function formatJson(body: Json): string | undefined {
  const text = body['text'];
  const format = isRecord(text) ? text['format'] : undefined;
  if (!isRecord(format)) return undefined;
  if (format['type'] === 'json_schema') return JSON.stringify(valueFromSchema(format['schema']));
  if (format['type'] === 'json_object') return JSON.stringify({ answer: 'demo' });
  return undefined;
}

/** JSON text as output tokens: pieces of up to 4 characters (about what a BPE vocabulary makes of JSON). */
function jsonTokens(json: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < json.length; i += 4) out.push(json.slice(i, i + 4));
  return out;
}

export function responsesUsage(a: Answer): Json {
  const u = a.usage;
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.inputTokens + u.outputTokens,
  };
}

export function handleResponses(ex: Exchange, body: Json): void {
  const meter = new PromptMeter();
  const bad = meterInput(body, meter);
  if (bad !== undefined) return ex.error('openai', 400, bad);
  const cap = readCap(body['max_output_tokens']);
  if (cap === null) return ex.error('openai', 400, "Invalid 'max_output_tokens': expected an integer >= 1.");
  if (body['tools'] !== undefined && body['tools'] !== null) meter.extra(Buffer.byteLength(JSON.stringify(body['tools'])));
  prepare(ex, 'openai', body['model'], (p) => {
    const tool = pickTool(body, p.directives);
    const text = tool === undefined ? toolOutputAnswer(body) : undefined;
    let answer = buildAnswer({ model: p.model, meter, maxTokens: cap, tool, text, directives: p.directives, pacing: ex.state.pacing });
    const json = tool === undefined && text === undefined ? formatJson(body) : undefined;
    if (json !== undefined) {
      // A structured answer: the schema's value instead of filler words, cut at the cap like any answer.
      const all = jsonTokens(json);
      const room = (cap ?? Number.MAX_SAFE_INTEGER) - answer.usage.reasoningTokens;
      const tokens = all.slice(0, Math.max(0, room));
      answer = {
        ...answer,
        tokens,
        finish: tokens.length < all.length ? 'length' : 'stop',
        usage: { ...answer.usage, outputTokens: answer.usage.reasoningTokens + tokens.length },
      };
    }
    const id = `resp_emu${ex.nextId()}`;
    if (body['stream'] === true) streamResponse(ex, p, body, answer, id);
    else replyResponse(ex, p, body, answer, id);
  });
}

interface Items {
  reasoning: Json | undefined;
  message: Json | undefined;
  call: Json | undefined;
}

function items(a: Answer, id: string): Items {
  const base = id.slice(5);
  const status = a.finish === 'length' ? 'incomplete' : 'completed';
  return {
    reasoning:
      a.reasoning.length > 0
        ? { id: `rs_${base}`, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: a.reasoning.join('') }] }
        : undefined,
    message:
      a.tool === undefined
        ? {
            id: `msg_${base}`,
            type: 'message',
            status,
            role: 'assistant',
            content: [{ type: 'output_text', text: a.tokens.join(''), annotations: [], logprobs: [] }],
          }
        : undefined,
    call:
      a.tool !== undefined
        ? { id: `fc_${base}`, type: 'function_call', status: 'completed', arguments: a.tool.argsJson, call_id: `call_${base}`, name: a.tool.name }
        : undefined,
  };
}

function responseBody(p: Prepared, body: Json, a: Answer | undefined, id: string, createdAt: number, output: Json[]): Json {
  const incomplete = a !== undefined && a.finish === 'length';
  const status = a === undefined ? 'in_progress' : incomplete ? 'incomplete' : 'completed';
  const out: Json = {
    id,
    object: 'response',
    created_at: createdAt,
    status,
    background: false,
    completed_at: status === 'completed' ? nowSeconds() : null,
    error: null,
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    instructions: body['instructions'] ?? null,
    max_output_tokens: body['max_output_tokens'] ?? null,
    metadata: body['metadata'] ?? {},
    model: p.model,
    output,
    parallel_tool_calls: body['parallel_tool_calls'] ?? true,
    previous_response_id: body['previous_response_id'] ?? null,
    reasoning: isRecord(body['reasoning']) ? body['reasoning'] : { effort: null, summary: null },
    service_tier: 'default',
    store: body['store'] ?? true,
    temperature: body['temperature'] ?? 1,
    text: isRecord(body['text']) ? { format: { type: 'text' }, verbosity: 'medium', ...body['text'] } : { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: body['tool_choice'] ?? 'auto',
    tools: body['tools'] ?? [],
    top_p: body['top_p'] ?? 1,
    truncation: 'disabled',
    usage: a === undefined || p.settings.noUsage ? null : responsesUsage(a),
    user: null,
  };
  return out;
}

function replyResponse(ex: Exchange, p: Prepared, body: Json, a: Answer, id: string): void {
  const it = items(a, id);
  const output = [it.reasoning, it.message, it.call].filter((x): x is Json => x !== undefined);
  const chunkCount = a.tool !== undefined ? a.tool.argPieces.length : a.tokens.length / p.settings.tokensPerChunk;
  sendAnswerJson(ex, p.settings, Math.ceil(chunkCount), JSON.stringify(responseBody(p, body, a, id, nowSeconds(), output)));
}

function streamResponse(ex: Exchange, p: Prepared, body: Json, a: Answer, id: string): void {
  let seq = 0;
  const ev = (type: string, fields: Json): string => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`;
  const createdAt = nowSeconds();
  const it = items(a, id);
  const per = p.settings.tokensPerChunk;
  const initial = responseBody(p, body, undefined, id, createdAt, []);
  const head = ev('response.created', { response: initial }) + ev('response.in_progress', { response: initial });
  const chunks: string[] = [];
  const output: Json[] = [];
  /** Events that travel with the next content chunk (or with the tail when no chunk follows). */
  let pre = '';
  const chunk = (frame: string): void => {
    chunks.push(pre + frame);
    pre = '';
  };
  if (it.reasoning !== undefined) {
    const r = it.reasoning;
    const at = { item_id: r['id'], output_index: output.length };
    pre += ev('response.output_item.added', { output_index: output.length, item: { ...r, content: [] } });
    pre += ev('response.content_part.added', { ...at, content_index: 0, part: { type: 'reasoning_text', text: '' } });
    for (const piece of groupTokens(a.reasoning, per)) chunk(ev('response.reasoning_text.delta', { ...at, content_index: 0, delta: piece }));
    const text = a.reasoning.join('');
    pre += ev('response.reasoning_text.done', { ...at, content_index: 0, text });
    pre += ev('response.content_part.done', { ...at, content_index: 0, part: { type: 'reasoning_text', text } });
    pre += ev('response.output_item.done', { output_index: output.length, item: r });
    output.push(r);
  }
  if (it.message !== undefined) {
    const m = it.message;
    const at = { item_id: m['id'], output_index: output.length };
    pre += ev('response.output_item.added', { output_index: output.length, item: { ...m, status: 'in_progress', content: [] } });
    pre += ev('response.content_part.added', { ...at, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
    for (const piece of groupTokens(a.tokens, per)) chunk(ev('response.output_text.delta', { ...at, content_index: 0, delta: piece, logprobs: [] }));
    const text = a.tokens.join('');
    pre += ev('response.output_text.done', { ...at, content_index: 0, text, logprobs: [] });
    pre += ev('response.content_part.done', { ...at, content_index: 0, part: { type: 'output_text', text, annotations: [], logprobs: [] } });
    pre += ev('response.output_item.done', { output_index: output.length, item: m });
    output.push(m);
  }
  if (it.call !== undefined && a.tool !== undefined) {
    const c = it.call;
    const at = { item_id: c['id'], output_index: output.length };
    pre += ev('response.output_item.added', { output_index: output.length, item: { ...c, status: 'in_progress', arguments: '' } });
    for (const piece of a.tool.argPieces) chunk(ev('response.function_call_arguments.delta', { ...at, delta: piece }));
    pre += ev('response.function_call_arguments.done', { ...at, name: c['name'], arguments: c['arguments'] });
    pre += ev('response.output_item.done', { output_index: output.length, item: c });
    output.push(c);
  }
  const final = responseBody(p, body, a, id, createdAt, output);
  const tail = pre + ev(a.finish === 'length' ? 'response.incomplete' : 'response.completed', { response: final });
  sendStream(ex, { dialect: 'openai', head, chunks, tail }, p.settings);
}
