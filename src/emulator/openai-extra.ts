import { SeededRandom } from '../core/index.ts';
import { PromptMeter, buildAnswer, groupTokens, type Answer } from './answer.ts';
import { sendAnswerJson, sendStream, type Exchange } from './exchange.ts';
import { isRecord, nowSeconds, prepare, readCap, type Json, type Prepared } from './flow.ts';
import { FINGERPRINT } from './openai-chat.ts';

/** OpenAI legacy completions, embeddings and the model list (API reference shapes). */

function legacyUsage(a: Answer): Json {
  const u = a.usage;
  return { prompt_tokens: u.inputTokens, completion_tokens: u.outputTokens, total_tokens: u.inputTokens + u.outputTokens };
}

/** Meters a prompt/input that may be a string, strings, token ids or arrays of token ids. */
function meterInput(input: unknown, meter: PromptMeter): boolean {
  if (typeof input === 'string') {
    meter.text(input);
    return true;
  }
  if (!Array.isArray(input) || input.length === 0) return false;
  for (const item of input) {
    if (typeof item === 'string') meter.text(item);
    else if (typeof item === 'number') meter.extra(4);
    else if (Array.isArray(item)) meter.extra(4 * item.length);
    else return false;
  }
  return true;
}

export function handleCompletions(ex: Exchange, body: Json): void {
  const meter = new PromptMeter();
  if (!meterInput(body['prompt'], meter)) return ex.error('openai', 400, "'prompt' must be a string or an array");
  const cap = readCap(body['max_tokens']);
  if (cap === null) return ex.error('openai', 400, "Invalid 'max_tokens': expected an integer >= 1.");
  prepare(ex, 'openai', body['model'], (p) => {
    const a = buildAnswer({ model: p.model, meter, maxTokens: cap, tool: undefined, directives: p.directives, pacing: ex.state.pacing });
    const id = `cmpl-emu${ex.nextId()}`;
    const finish = a.finish === 'length' ? 'length' : 'stop';
    if (body['stream'] === true) return streamCompletion(ex, p, a, id, finish, body);
    const out: Json = {
      id,
      object: 'text_completion',
      created: nowSeconds(),
      model: p.model,
      system_fingerprint: FINGERPRINT,
      choices: [{ text: a.tokens.join(''), index: 0, logprobs: null, finish_reason: finish }],
    };
    if (!p.settings.noUsage) out['usage'] = legacyUsage(a);
    sendAnswerJson(ex, p.settings, Math.ceil(a.tokens.length / p.settings.tokensPerChunk), JSON.stringify(out));
  });
}

function streamCompletion(ex: Exchange, p: Prepared, a: Answer, id: string, finish: string, body: Json): void {
  const so = body['stream_options'];
  const usageOn = isRecord(so) && so['include_usage'] === true && !p.settings.noUsage;
  const pre = `data: {"id":"${id}","object":"text_completion","created":${nowSeconds()},"model":${JSON.stringify(p.model)},"system_fingerprint":"${FINGERPRINT}","choices":`;
  const post = usageOn ? ',"usage":null}\n\n' : '}\n\n';
  const choice = (text: string, fin: string | null): string =>
    `${pre}[{"text":${JSON.stringify(text)},"index":0,"logprobs":null,"finish_reason":${fin === null ? 'null' : `"${fin}"`}}]${post}`;
  const chunks = groupTokens(a.tokens, p.settings.tokensPerChunk).map((t) => choice(t, null));
  let tail = choice('', finish);
  if (usageOn) tail += `${pre}[],"usage":${JSON.stringify(legacyUsage(a))}}\n\n`;
  tail += 'data: [DONE]\n\n';
  sendStream(ex, { dialect: 'openai', head: '', chunks, tail }, p.settings);
}

/** A deterministic unit vector from (model, text): same input, same vector, across runs. */
export function embeddingVector(model: string, text: string, dims: number): Float32Array {
  const meter = new PromptMeter();
  meter.text(model);
  meter.text(text);
  const rng = new SeededRandom(meter.hash >>> 0);
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = rng.float() * 2 - 1;
    v[i] = x;
    norm += x * x;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dims; i++) v[i] = (v[i] as number) * scale;
  return v;
}

const DIMS_DEFAULT = 8;
const DIMS_MAX = 4096;

export function readDims(v: unknown): number | null {
  if (v === undefined || v === null) return DIMS_DEFAULT;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= DIMS_MAX ? v : null;
}

/** One text per vector: a string, strings, one token-id array, or arrays of token ids. */
function embeddingItems(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return [];
  if (input.every((x) => typeof x === 'number')) return [JSON.stringify(input)];
  return input.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
}

export function handleEmbeddings(ex: Exchange, body: Json): void {
  const input = body['input'];
  const items = embeddingItems(input);
  if (items.length === 0 || (typeof input === 'string' && input === '')) return ex.error('openai', 400, "'input' must be a non-empty string or array");
  const dims = readDims(body['dimensions']);
  if (dims === null) return ex.error('openai', 400, `'dimensions' must be an integer between 1 and ${DIMS_MAX}`);
  const base64 = body['encoding_format'] === 'base64';
  prepare(ex, 'openai', body['model'], (p) => {
    const meter = new PromptMeter();
    meterInput(input, meter);
    const tokens = p.directives.promptTokens ?? meter.inputTokens();
    const data = items.map((text, index) => {
      const v = embeddingVector(p.model, text, dims);
      const embedding = base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v);
      return { object: 'embedding', index, embedding };
    });
    const out: Json = { object: 'list', data, model: p.model };
    if (!p.settings.noUsage) out['usage'] = { prompt_tokens: tokens, total_tokens: tokens };
    sendAnswerJson(ex, p.settings, 1, JSON.stringify(out));
  });
}

export const LISTED_MODELS = ['tokengrid-emulator', 'gpt-4o-mini', 'gpt-4o', 'claude-sonnet-4-5', 'gemini-2.0-flash'];

/** GET /v1/models: OpenAI list shape, or Anthropic's when called with Anthropic headers. */
export function handleModels(ex: Exchange, anthropic: boolean): void {
  const ids = [...new Set([...LISTED_MODELS, ...Object.keys(ex.state.stats.byModel)])];
  if (anthropic) {
    const data = ids.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
    const body = { data, has_more: false, first_id: ids[0] ?? null, last_id: ids[ids.length - 1] ?? null };
    return ex.json(200, JSON.stringify(body));
  }
  const data = ids.map((id) => ({ id, object: 'model', created: 1735689600, owned_by: 'tokengrid-emulator' }));
  ex.json(200, JSON.stringify({ object: 'list', data }));
}

export function handleModel(ex: Exchange, id: string): void {
  ex.json(200, JSON.stringify({ id, object: 'model', created: 1735689600, owned_by: 'tokengrid-emulator' }));
}
