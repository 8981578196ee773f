import { zeroUsage, type ChatResponse, type CompletionResponse, type ContentPart, type EmbeddingResponse, type StreamEvent } from '../../wire/index.ts';
import { UpstreamError } from '../types.ts';
import {
  argumentsOf,
  isObj,
  mapFinishReason,
  mapUsage,
  openaiUsagePattern,
  RE_INT,
  RE_JSON_STR,
  RE_JSON_WS,
  RE_PLAIN_STR,
  reasoningOf,
  str,
  textOf,
  usageOfCounts,
  type Obj,
} from './upstream-fields.ts';

/** What to report when the upstream leaves out id, model or created. */
export interface ResponseDefaults {
  id: string;
  model: string;
  createdS: number;
}

function malformed(message: string, json: unknown): never {
  throw new UpstreamError('malformed', message, undefined, JSON.stringify(json).slice(0, 2048));
}

/** A 2xx body must be an object, and not an `{error}` object (some vendors answer errors with 200). */
function expectBody(json: unknown): Obj {
  if (!isObj(json)) malformed('upstream body is not a JSON object', json);
  if (isObj(json['error'])) malformed(`upstream reported an error with a 2xx status: ${str(json['error']['message']) ?? 'no message'}`, json);
  return json;
}

function firstChoice(body: Obj): Obj {
  const choices = body['choices'];
  const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
  if (!isObj(choice)) malformed('upstream response has no choices', body);
  return choice;
}

function usageOf(body: Obj): { usage: ChatResponse['usage']; usageEstimated?: true } {
  const usage = mapUsage(body['usage']);
  // No usage from the upstream: zeros plus the flag, so the gateway counts the tokens itself.
  return usage === undefined ? { usage: zeroUsage(), usageEstimated: true } : { usage };
}

/** `chat.completion` → canonical ChatResponse. */
export function parseChatResponse(json: unknown, defaults: ResponseDefaults): ChatResponse {
  const body = expectBody(json);
  const choice = firstChoice(body);
  const message = choice['message'];
  if (!isObj(message)) malformed('upstream choice has no message', body);
  const content: ContentPart[] = [];
  const text = textOf(message['content']);
  if (text !== '') content.push({ type: 'text', text });
  const calls = message['tool_calls'];
  if (Array.isArray(calls)) {
    calls.forEach((c: unknown, i) => {
      if (!isObj(c) || !isObj(c['function'])) return;
      const fn = c['function'];
      content.push({
        type: 'tool_call',
        id: str(c['id']) || `${defaults.id}_call_${i}`,
        name: str(fn['name']) ?? '',
        argumentsJson: argumentsOf(fn['arguments']),
      });
    });
  }
  let finishReason = mapFinishReason(choice['finish_reason']);
  // Ollama and older vLLM report 'stop' on a tool-call answer; clients loop on 'tool_calls'.
  if (finishReason === 'stop' && content.some((p) => p.type === 'tool_call')) finishReason = 'tool_calls';
  const res: ChatResponse = {
    id: str(body['id']) || defaults.id,
    model: str(body['model']) || defaults.model,
    createdS: typeof body['created'] === 'number' ? body['created'] : defaults.createdS,
    content,
    finishReason,
    ...usageOf(body),
  };
  const reasoning = reasoningOf(message);
  if (reasoning !== undefined) res.reasoning = reasoning;
  return res;
}

/**
 * OpenAI's `chat.completion` for a plain text answer, in OpenAI's key order: id, object, created, model, one
 * choice (index 0, a message of role, content string, refusal null and optionally empty annotations, logprobs
 * null, a finish_reason), usage with its counts and optional OpenAI details, then optional service_tier and
 * system_fingerprint. Compact (the emulator, most vendors) or pretty-printed (api.openai.com): `~` below stands
 * for JSON whitespace between tokens. Anything else (tool calls, reasoning, content null, other vendors'
 * fields) does not match and takes the general path.
 */
const PLAIN_CHAT_COMPLETION = new RegExp(
  (
    String.raw`^~\{~"id"~:~"(${RE_PLAIN_STR})"~,~"object"~:~"chat\.completion"~,~"created"~:~(${RE_INT})~,~"model"~:~"(${RE_PLAIN_STR})"~,` +
    String.raw`~"choices"~:~\[~\{~"index"~:~0~,~"message"~:~\{~"role"~:~"assistant"~,~"content"~:~"(${RE_JSON_STR})"~,~"refusal"~:~null~(?:,~"annotations"~:~\[~\]~)?\}~,` +
    String.raw`~"logprobs"~:~null~,~"finish_reason"~:~"([a-z_]+)"~\}~\]~,~"usage"~:~${openaiUsagePattern('~')}` +
    String.raw`~(?:,~"service_tier"~:~(?:null|"${RE_PLAIN_STR}")~)?(?:,~"system_fingerprint"~:~(?:null|"${RE_PLAIN_STR}")~)?\}~$`
  ).replaceAll('~', RE_JSON_WS),
);

/** The regex reads about 2.4 ns per character, JSON.parse about 1 but with a fixed cost of ~5 µs for the object tree: they break even near 4 KB. */
const PLAIN_CHAT_CHARS_MAX = 4096;

/**
 * Fast path of parseChatResponse(JSON.parse(text), defaults) for OpenAI's plain text answer (see
 * PLAIN_CHAT_COMPLETION): read with one regex instead of building the JSON object tree. Returns the same
 * ChatResponse the general path would (parse-response.test.ts compares them), or undefined when the text is
 * not in that exact shape and the caller must take the general path.
 */
export function parsePlainChatResponse(text: string): ChatResponse | undefined {
  if (text.length > PLAIN_CHAT_CHARS_MAX) return undefined;
  const m = PLAIN_CHAT_COMPLETION.exec(text);
  if (m === null) return undefined;
  const raw = m[4]!;
  const answer = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
  return {
    id: m[1]!,
    model: m[3]!,
    createdS: Number(m[2]),
    content: answer === '' ? [] : [{ type: 'text', text: answer }],
    finishReason: mapFinishReason(m[5]),
    usage: usageOfCounts(Number(m[6]), Number(m[7]), m[8] === undefined ? undefined : Number(m[8]), m[9] === undefined ? undefined : Number(m[9])),
  };
}

/** A full response replayed as stream events (for upstreams that ignore `stream: true` and answer JSON). */
export function chatResponseEvents(res: ChatResponse): StreamEvent[] {
  const out: StreamEvent[] = [{ type: 'start', id: res.id, model: res.model, createdS: res.createdS }];
  if (res.reasoning !== undefined) out.push({ type: 'reasoning', text: res.reasoning });
  let index = 0;
  for (const part of res.content) {
    if (part.type === 'text') out.push({ type: 'text', text: part.text });
    else if (part.type === 'tool_call') {
      out.push({ type: 'tool_call_start', index, id: part.id, name: part.name });
      if (part.argumentsJson !== '') out.push({ type: 'tool_call_delta', index, argumentsDelta: part.argumentsJson });
      index++;
    }
  }
  out.push({ type: 'finish', finishReason: res.finishReason });
  if (res.usageEstimated !== true) out.push({ type: 'usage', usage: res.usage });
  return out;
}

/** Legacy `text_completion` → canonical CompletionResponse (choices in index order). */
export function parseCompletionResponse(json: unknown, defaults: ResponseDefaults): CompletionResponse {
  const body = expectBody(json);
  const choices = body['choices'];
  if (!Array.isArray(choices) || choices.length === 0) malformed('upstream response has no choices', body);
  const sorted = choices.filter(isObj).sort((a, b) => Number(a['index'] ?? 0) - Number(b['index'] ?? 0));
  return {
    id: str(body['id']) || defaults.id,
    model: str(body['model']) || defaults.model,
    createdS: typeof body['created'] === 'number' ? body['created'] : defaults.createdS,
    choices: sorted.map((c) => ({ text: textOf(c['text']), finishReason: mapFinishReason(c['finish_reason']) })),
    usage: usageOf(body).usage,
  };
}

/** Embeddings `list` → canonical vectors in input order; base64 float32 vectors are decoded. */
export function parseEmbeddingResponse(json: unknown, defaults: ResponseDefaults): EmbeddingResponse {
  const body = expectBody(json);
  const data = body['data'];
  if (!Array.isArray(data)) malformed('upstream embeddings response has no data', body);
  const items = data.filter(isObj).sort((a, b) => Number(a['index'] ?? 0) - Number(b['index'] ?? 0));
  const vectors = items.map((item) => {
    const e = item['embedding'];
    if (typeof e === 'string') return decodeFloat32Base64(e);
    if (!Array.isArray(e) || !e.every((x) => typeof x === 'number')) malformed('upstream embedding is not a number array', item);
    return e as number[];
  });
  const usage = mapUsage(body['usage']) ?? zeroUsage();
  return { model: str(body['model']) || defaults.model, data: vectors, usage: { ...usage, tokensOutput: 0, tokensReasoning: 0 } };
}

function decodeFloat32Base64(b64: string): number[] {
  const buf = Buffer.from(b64, 'base64');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Array<number>(buf.byteLength >> 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
