import { PromptMeter, buildAnswer, groupTokens, type Answer, promptCacheHit } from './answer.ts';
import { sendAnswerJson, sendStream, type Exchange } from './exchange.ts';
import { isRecord, prepare, readCap, type Json, type Prepared } from './flow.ts';
import { jsonAnswer, pickAgentTool, toolResultAnswer } from './agent.ts';
import type { Directives } from './types.ts';

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
    // 'system' inside messages: the mid-conversation-system beta (Claude Code sends it).
    if (!isRecord(m) || (m['role'] !== 'user' && m['role'] !== 'assistant' && m['role'] !== 'system')) {
      return `messages.${i}.role: Input should be 'user', 'assistant' or 'system'`;
    }
    if (typeof m['content'] !== 'string' && !Array.isArray(m['content'])) return `messages.${i}.content: Field required`;
    meter.message();
    meterBlocks(m['content'], meter);
  }
  if (Array.isArray(body['tools'])) meter.extra(Buffer.byteLength(JSON.stringify(body['tools'])));
  return undefined;
}

/** The last user or assistant turn (system messages inside messages do not count as a turn). */
function lastTurn(body: Json): Json | undefined {
  const messages = body['messages'] as unknown[];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (isRecord(m) && m['role'] !== 'system') return m;
  }
  return undefined;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((b) => (isRecord(b) && typeof b['text'] === 'string' ? b['text'] : ''))
    .filter((t) => t !== '')
    .join('\n');
}

/** What to answer: a tool call, a fixed text (from a tool result, or JSON for output_config.format), or generated words. */
function plan(body: Json, directives: Directives): { tool?: { name: string; argsJson: string }; text?: string } {
  const last = lastTurn(body);
  if (last === undefined || last['role'] !== 'user') return {};
  const content = last['content'];
  const result = Array.isArray(content) ? content.find((b) => isRecord(b) && b['type'] === 'tool_result') : undefined;
  if (isRecord(result)) return { text: toolResultAnswer(textOf(result['content'])) };
  const tools = body['tools'];
  const choice = body['tool_choice'];
  if (Array.isArray(tools) && tools.length > 0 && !(isRecord(choice) && choice['type'] === 'none')) {
    const offered = tools
      .filter((t): t is Json => isRecord(t) && typeof t['name'] === 'string' && (t['type'] === undefined || t['type'] === 'custom'))
      .map((t) => ({ name: t['name'] as string, schema: t['input_schema'] }));
    const forced = isRecord(choice) && choice['type'] === 'tool' && typeof choice['name'] === 'string' ? choice['name'] : undefined;
    const tool = pickAgentTool(offered, textOf(content), forced, directives.tool, directives.toolArgs === 'all');
    if (tool !== undefined) return { tool };
  }
  const config = body['output_config'];
  const format = isRecord(config) ? config['format'] : body['output_format'];
  if (isRecord(format) && format['type'] === 'json_schema') return { text: jsonAnswer(format['schema']) };
  return jsonInstruction(textOf(body['system']));
}

/**
 * The instruction TokenGrid's Anthropic adapter writes into the system prompt for an OpenAI-style
 * response_format (providers/anthropic/build-request.ts): answered with JSON, valid for the schema it quotes.
 */
function jsonInstruction(system: string): { text?: string } {
  const at = system.indexOf(JSON_INSTRUCTION);
  if (at < 0) return {};
  const rest = system.slice(at + JSON_INSTRUCTION.length);
  const quoted = /^ It must conform to this JSON Schema \([^)]*\): (\{[\s\S]*\})/.exec(rest);
  if (quoted === null) return { text: jsonAnswer(undefined) };
  try {
    return { text: jsonAnswer(JSON.parse(quoted[1]!) as unknown) };
  } catch {
    return { text: jsonAnswer(undefined) };
  }
}

const JSON_INSTRUCTION = 'Respond with a single valid JSON object and nothing else.';

const STOP = { stop: 'end_turn', length: 'max_tokens', tool: 'tool_use' } as const;

function usage(a: Answer, outputTokens: number, directives: Directives): Json {
  const u = a.usage;
  const written = Math.min(directives.cacheWrite ?? 0, u.inputTokens - u.cachedTokens);
  return {
    input_tokens: u.inputTokens - u.cachedTokens - written,
    cache_creation_input_tokens: written,
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
    const { tool, text } = plan(body, p.directives);
    const promptCached = promptCacheHit(ex.state.promptCache, `anthropic|${p.model}|${ex.caller()}`, meter);
    const a = buildAnswer({ model: p.model, meter, maxTokens: cap, tool, text, directives: p.directives, pacing: ex.state.pacing, promptCached });
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
  const content: Json[] =
    a.tool !== undefined
      ? [{ type: 'tool_use', id: `toolu_emu${id}`, name: a.tool.name, input: JSON.parse(a.tool.argsJson) as unknown }]
      : [{ type: 'text', text: a.tokens.join('') }];
  if (a.reasoning.length > 0) content.unshift({ type: 'thinking', thinking: a.reasoning.join(''), signature: signatureOf(a) });
  const out: Json = {
    id: `msg_emu${id}`,
    type: 'message',
    role: 'assistant',
    model: p.model,
    content,
    stop_reason: STOP[a.finish],
    stop_sequence: null,
  };
  if (!p.settings.noUsage) out['usage'] = usage(a, a.usage.outputTokens, p.directives);
  const chunkCount = a.tool !== undefined ? a.tool.argPieces.length : Math.ceil(a.tokens.length / p.settings.tokensPerChunk);
  sendAnswerJson(ex, p.settings, chunkCount, JSON.stringify(out));
}

/** A stand-in for Anthropic's opaque thinking signature: deterministic per answer. */
const signatureOf = (a: Answer): string => `emu-sig-${a.seed.toString(16)}`;

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
  if (!p.settings.noUsage) message['usage'] = usage(a, Math.min(1, a.usage.outputTokens), p.directives);
  const block = a.tool !== undefined ? { type: 'tool_use', id: `toolu_emu${id}`, name: a.tool.name, input: {} } : { type: 'text', text: '' };
  // With reasoning: a thinking block (deltas, then its signature) at index 0, the answer at index 1.
  const k = a.reasoning.length > 0 ? 1 : 0;
  const start = (index: number, content_block: Json): string => ev('content_block_start', { type: 'content_block_start', index, content_block });
  const head =
    ev('message_start', { type: 'message_start', message }) +
    (k === 1 ? start(0, { type: 'thinking', thinking: '', signature: '' }) : start(0, block)) +
    ev('ping', { type: 'ping' });
  const chunks: string[] = [];
  if (k === 1) {
    for (const thinking of groupTokens(a.reasoning, p.settings.tokensPerChunk)) {
      chunks.push(ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking } }));
    }
    chunks[chunks.length - 1] +=
      ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: signatureOf(a) } }) +
      ev('content_block_stop', { type: 'content_block_stop', index: 0 }) +
      start(1, block);
  }
  if (a.tool !== undefined) {
    for (const partial_json of a.tool.argPieces)
      chunks.push(ev('content_block_delta', { type: 'content_block_delta', index: k, delta: { type: 'input_json_delta', partial_json } }));
  } else {
    for (const text of groupTokens(a.tokens, p.settings.tokensPerChunk))
      chunks.push(ev('content_block_delta', { type: 'content_block_delta', index: k, delta: { type: 'text_delta', text } }));
  }
  const delta: Json = { type: 'message_delta', delta: { stop_reason: STOP[a.finish], stop_sequence: null } };
  if (!p.settings.noUsage) delta['usage'] = usage(a, a.usage.outputTokens, p.directives);
  const tail = ev('content_block_stop', { type: 'content_block_stop', index: k }) + ev('message_delta', delta) + ev('message_stop', { type: 'message_stop' });
  sendStream(ex, { dialect: 'anthropic', head, chunks, tail }, p.settings);
}
