import { PromptMeter, buildAnswer, groupTokens, type Answer } from './answer.ts';
import { sendAnswerJson, sendStream, type Exchange } from './exchange.ts';
import { isRecord, prepare, readCap, type Json, type Prepared } from './flow.ts';
import { argsJsonFromSchema } from './tool-args.ts';

/**
 * POST /v1/messages and /v1/messages/count_tokens, from Anthropic's Messages API docs. Streams are
 * named SSE events: message_start, content_block_start, ping, content_block_delta (text_delta or
 * input_json_delta), content_block_stop, message_delta (stop_reason + cumulative usage), message_stop.
 * Anthropic's input_tokens excludes cache reads, which are reported in cache_read_input_tokens.
 */

const IMAGE_BYTES = 6400; // an image or document block counts as a fixed ~1600 tokens

function meterBlocks(content: unknown, meter: PromptMeter): void {
  if (typeof content === 'string') return meter.text(content);
  if (!Array.isArray(content)) return;
  for (const b of content) {
    if (!isRecord(b)) continue;
    if (typeof b['text'] === 'string') meter.text(b['text']);
    else if (typeof b['thinking'] === 'string') meter.text(b['thinking']);
    else if (b['type'] === 'tool_use') meter.text(JSON.stringify(b['input'] ?? {}));
    else if (b['type'] === 'tool_result') meterBlocks(b['content'], meter);
    else meter.extra(IMAGE_BYTES);
  }
}

/** Meters system + messages + tools; returns an error message for an invalid shape. */
function meterRequest(body: Json, meter: PromptMeter): string | undefined {
  const system = body['system'];
  if (system !== undefined && system !== null && system !== '') {
    meter.message();
    meterBlocks(system, meter);
  }
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) return 'messages: Field required (a non-empty list)';
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    if (!isRecord(m) || (m['role'] !== 'user' && m['role'] !== 'assistant')) {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    }
    if (typeof m['content'] !== 'string' && !Array.isArray(m['content'])) return `messages.${i}.content: Field required`;
    meter.message();
    meterBlocks(m['content'], meter);
  }
  if (Array.isArray(body['tools'])) meter.extra(Buffer.byteLength(JSON.stringify(body['tools'])));
  return undefined;
}

function isToolResultTurn(m: Json): boolean {
  const c = m['content'];
  return Array.isArray(c) && c.some((b) => isRecord(b) && b['type'] === 'tool_result');
}

function pickTool(body: Json): { name: string; argsJson: string } | undefined {
  const tools = body['tools'];
  const choice = body['tool_choice'];
  if (!Array.isArray(tools) || tools.length === 0) return undefined;
  if (isRecord(choice) && choice['type'] === 'none') return undefined;
  const messages = body['messages'] as unknown[];
  const last = messages[messages.length - 1];
  if (!isRecord(last) || last['role'] !== 'user' || isToolResultTurn(last)) return undefined;
  const forced = isRecord(choice) && choice['type'] === 'tool' ? choice['name'] : undefined;
  for (const t of tools) {
    if (!isRecord(t) || typeof t['name'] !== 'string') continue;
    if (forced !== undefined && t['name'] !== forced) continue;
    return { name: t['name'], argsJson: argsJsonFromSchema(t['input_schema']) };
  }
  return undefined;
}

const STOP = { stop: 'end_turn', length: 'max_tokens', tool: 'tool_use' } as const;

function usage(a: Answer, outputTokens: number): Json {
  const u = a.usage;
  return {
    input_tokens: u.inputTokens - u.cachedTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: u.cachedTokens,
    output_tokens: outputTokens,
  };
}

export function handleMessages(ex: Exchange, body: Json): void {
  const meter = new PromptMeter();
  const cap = readCap(body['max_tokens']);
  if (cap === undefined || cap === null) return ex.error('anthropic', 400, 'max_tokens: Field required (an integer >= 1)');
  const bad = meterRequest(body, meter);
  if (bad !== undefined) return ex.error('anthropic', 400, bad);
  prepare(ex, 'anthropic', body['model'], (p) => {
    const tool = pickTool(body);
    const a = buildAnswer({ model: p.model, meter, maxTokens: cap, tool, directives: p.directives, pacing: ex.state.pacing });
    const id = ex.nextId();
    if (body['stream'] === true) streamMessage(ex, p, a, id);
    else replyMessage(ex, p, a, id);
  });
}

export function handleCountTokens(ex: Exchange, body: Json): void {
  const meter = new PromptMeter();
  const bad = meterRequest(body, meter);
  if (bad !== undefined) return ex.error('anthropic', 400, bad);
  prepare(ex, 'anthropic', body['model'], (p) => {
    ex.json(200, JSON.stringify({ input_tokens: p.directives.promptTokens ?? meter.inputTokens() }));
  });
}

function replyMessage(ex: Exchange, p: Prepared, a: Answer, id: string): void {
  const content = a.tool !== undefined
    ? [{ type: 'tool_use', id: `toolu_emu${id}`, name: a.tool.name, input: JSON.parse(a.tool.argsJson) as unknown }]
    : [{ type: 'text', text: a.tokens.join('') }];
  const out: Json = {
    id: `msg_emu${id}`,
    type: 'message',
    role: 'assistant',
    model: p.model,
    content,
    stop_reason: STOP[a.finish],
    stop_sequence: null,
  };
  if (!p.settings.noUsage) out['usage'] = usage(a, a.usage.outputTokens);
  const chunkCount = a.tool !== undefined ? a.tool.argPieces.length : Math.ceil(a.tokens.length / p.settings.tokensPerChunk);
  sendAnswerJson(ex, p.settings, chunkCount, JSON.stringify(out));
}

const ev = (name: string, data: Json): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

function streamMessage(ex: Exchange, p: Prepared, a: Answer, id: string): void {
  const message: Json = {
    id: `msg_emu${id}`,
    type: 'message',
    role: 'assistant',
    model: p.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
  };
  if (!p.settings.noUsage) message['usage'] = usage(a, Math.min(1, a.usage.outputTokens));
  const block = a.tool !== undefined
    ? { type: 'tool_use', id: `toolu_emu${id}`, name: a.tool.name, input: {} }
    : { type: 'text', text: '' };
  const head = ev('message_start', { type: 'message_start', message })
    + ev('content_block_start', { type: 'content_block_start', index: 0, content_block: block })
    + ev('ping', { type: 'ping' });
  const chunks = a.tool !== undefined
    ? a.tool.argPieces.map((partial_json) => ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json } }))
    : groupTokens(a.tokens, p.settings.tokensPerChunk).map((text) => ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }));
  const delta: Json = { type: 'message_delta', delta: { stop_reason: STOP[a.finish], stop_sequence: null } };
  if (!p.settings.noUsage) delta['usage'] = usage(a, a.usage.outputTokens);
  const tail = ev('content_block_stop', { type: 'content_block_stop', index: 0 }) + ev('message_delta', delta) + ev('message_stop', { type: 'message_stop' });
  sendStream(ex, { dialect: 'anthropic', head, chunks, tail }, p.settings);
}
