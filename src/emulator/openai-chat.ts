import { PromptMeter, buildAnswer, groupTokens, type Answer, type AnswerUsage, promptCacheHit } from './answer.ts';
import { sendAnswerJson, sendStream, type Exchange } from './exchange.ts';
import { isRecord, nowSeconds, prepare, readCap, type Json, type Prepared } from './flow.ts';
import { jsonAnswer, pickAgentTool, toolResultAnswer } from './agent.ts';
import type { Directives } from './types.ts';

/**
 * POST /v1/chat/completions, from OpenAI's API reference: `chat.completion` objects and, when
 * `stream: true`, `chat.completion.chunk` SSE data lines ending in `data: [DONE]`. With
 * `stream_options.include_usage` every chunk carries `"usage": null` and one extra chunk with
 * `choices: []` and the usage comes before [DONE].
 */

export const FINGERPRINT = 'fp_tokengrid_emu';
const IMAGE_BYTES = 340; // an image part counts as a fixed ~85 tokens

export function openaiUsage(u: AnswerUsage): Json {
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

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

/** Returns an error message when the messages are not a non-empty array of role-tagged objects. */
function meterMessages(messages: unknown, meter: PromptMeter): string | undefined {
  if (!Array.isArray(messages) || messages.length === 0) return "'messages' must be a non-empty array";
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    if (!isRecord(m) || typeof m['role'] !== 'string') return `'messages[${i}]' must be an object with a 'role'`;
    meter.message();
    meterContent(m['content'], meter);
    const calls = m['tool_calls'];
    if (Array.isArray(calls)) {
      for (const c of calls) {
        const fn = isRecord(c) ? c['function'] : undefined;
        if (isRecord(fn) && typeof fn['arguments'] === 'string') meter.text(fn['arguments']);
      }
    }
  }
  return undefined;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (isRecord(p) && typeof p['text'] === 'string' ? p['text'] : ''))
    .filter((t) => t !== '')
    .join('\n');
}

/** What to answer: a tool call, a fixed text (from a tool result, or JSON for response_format), or generated words. */
function plan(body: Json, messages: unknown[], directives: Directives): { tool?: { name: string; argsJson: string }; text?: string } {
  const last = messages[messages.length - 1];
  if (!isRecord(last)) return {};
  if (last['role'] === 'tool') return { text: toolResultAnswer(textOf(last['content'])) };
  if (directives.echo === true && last['role'] === 'user') {
    const said = textOf(last['content']);
    return { text: directives.reverse === true ? [...said].reverse().join('') : said };
  }
  const tools = body['tools'];
  const choice = body['tool_choice'];
  if (last['role'] === 'user' && Array.isArray(tools) && tools.length > 0 && choice !== 'none') {
    const offered = tools
      .map((t) => (isRecord(t) ? t['function'] : undefined))
      .filter((fn): fn is Json => isRecord(fn) && typeof fn['name'] === 'string')
      .map((fn) => ({ name: fn['name'] as string, schema: fn['parameters'] }));
    const forcedName = isRecord(choice) && isRecord(choice['function']) ? choice['function']['name'] : undefined;
    const tool = pickAgentTool(
      offered,
      textOf(last['content']),
      typeof forcedName === 'string' ? forcedName : undefined,
      directives.tool,
      directives.toolArgs === 'all',
    );
    if (tool !== undefined) return { tool };
  }
  const format = body['response_format'];
  if (isRecord(format) && format['type'] === 'json_schema') {
    const spec = format['json_schema'];
    return { text: jsonAnswer(isRecord(spec) ? (spec['schema'] ?? {}) : {}) };
  }
  if (isRecord(format) && format['type'] === 'json_object') return { text: jsonAnswer(undefined) };
  return {};
}

const FINISH = { stop: 'stop', length: 'length', tool: 'tool_calls' } as const;

export function handleChat(ex: Exchange, body: Json): void {
  const meter = new PromptMeter();
  const bad = meterMessages(body['messages'], meter);
  if (bad !== undefined) return ex.error('openai', 400, bad);
  const cap = readCap(body['max_completion_tokens'] ?? body['max_tokens']);
  if (cap === null) return ex.error('openai', 400, "Invalid 'max_tokens': expected an integer >= 1.");
  if (body['tools'] !== undefined && body['tools'] !== null) meter.extra(Buffer.byteLength(JSON.stringify(body['tools'])));
  prepare(ex, 'openai', body['model'], (p) => {
    const { tool, text } = plan(body, body['messages'] as unknown[], p.directives);
    const promptCached = promptCacheHit(ex.state.promptCache, `openai|${p.model}|${ex.caller()}`, meter);
    const answer = buildAnswer({ model: p.model, meter, maxTokens: cap, tool, text, directives: p.directives, pacing: ex.state.pacing, promptCached });
    const id = `chatcmpl-emu${ex.nextId()}`;
    if (body['stream'] === true) streamChat(ex, p, answer, id, includeUsage(body));
    else replyChat(ex, p, answer, id);
  });
}

function includeUsage(body: Json): boolean {
  const o = body['stream_options'];
  return isRecord(o) && o['include_usage'] === true;
}

function replyChat(ex: Exchange, p: Prepared, a: Answer, id: string): void {
  const message: Json = { role: 'assistant', content: a.tool === undefined ? a.tokens.join('') : null, refusal: null, annotations: [] };
  if (a.reasoning.length > 0) message['reasoning_content'] = a.reasoning.join('');
  if (a.tool !== undefined) {
    message['tool_calls'] = [{ id: `call_${id.slice(12)}`, type: 'function', function: { name: a.tool.name, arguments: a.tool.argsJson } }];
  }
  const out: Json = {
    id,
    object: 'chat.completion',
    created: nowSeconds(),
    model: p.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: FINISH[a.finish] }],
  };
  if (!p.settings.noUsage) out['usage'] = openaiUsage(a.usage);
  out['service_tier'] = 'default';
  out['system_fingerprint'] = FINGERPRINT;
  const chunkCount = a.tool !== undefined ? a.tool.argPieces.length : a.tokens.length / p.settings.tokensPerChunk;
  sendAnswerJson(ex, p.settings, Math.ceil(chunkCount), JSON.stringify(out));
}

function streamChat(ex: Exchange, p: Prepared, a: Answer, id: string, withUsage: boolean): void {
  const usageOn = withUsage && !p.settings.noUsage;
  const pre = `data: {"id":"${id}","object":"chat.completion.chunk","created":${nowSeconds()},"model":${JSON.stringify(p.model)},"system_fingerprint":"${FINGERPRINT}","choices":`;
  const post = usageOn ? ',"usage":null}\n\n' : '}\n\n';
  const delta = (d: Json, finish: string | null = null): string =>
    `${pre}[{"index":0,"delta":${JSON.stringify(d)},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]${post}`;
  const per = p.settings.tokensPerChunk;
  const chunks: string[] = [];
  for (const r of groupTokens(a.reasoning, per)) chunks.push(delta({ reasoning_content: r }));
  if (a.tool !== undefined) {
    const call = { index: 0, id: `call_${id.slice(12)}`, type: 'function', function: { name: a.tool.name, arguments: '' } };
    chunks.push(delta({ role: 'assistant', content: null, tool_calls: [call] }));
    for (const piece of a.tool.argPieces) chunks.push(delta({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
  } else {
    for (const t of groupTokens(a.tokens, per)) chunks.push(delta({ content: t }));
  }
  // The role announcement travels with the first content chunk, so it is not a "first token" early.
  const role = a.tool === undefined ? delta({ role: 'assistant', content: '', refusal: null }) : '';
  if (chunks.length > 0) chunks[0] = role + chunks[0];
  else chunks.push(role);
  let tail = delta({}, FINISH[a.finish]);
  if (usageOn) tail += `${pre}[],"usage":${JSON.stringify(openaiUsage(a.usage))}}\n\n`;
  tail += 'data: [DONE]\n\n';
  sendStream(ex, { dialect: 'openai', head: '', chunks, tail }, p.settings);
}
