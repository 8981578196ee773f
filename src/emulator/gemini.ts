import { PromptMeter, buildAnswer, groupTokens, type Answer } from './answer.ts';
import { sendAnswerJson, sendStream, type Exchange } from './exchange.ts';
import { isRecord, prepare, readCap, type Json, type Prepared } from './flow.ts';
import { embeddingVector, readDims } from './openai-extra.ts';
import { jsonAnswer, pickAgentTool, toolResultAnswer, type OfferedTool } from './agent.ts';
import type { Directives } from './types.ts';

/**
 * Gemini API (generativelanguage v1beta): models/{model}:generateContent, :streamGenerateContent
 * (`?alt=sse` gives `data: <GenerateContentResponse>` events separated by CRLF CRLF, no [DONE];
 * without it a JSON array), :embedContent and :batchEmbedContents. usageMetadata is cumulative on
 * every chunk; zero-valued counts are omitted, as proto3 JSON does.
 */

const BLOB_BYTES = 1032; // inline/file data counts as a fixed ~258 tokens

function meterParts(parts: unknown, meter: PromptMeter): void {
  if (!Array.isArray(parts)) return;
  for (const part of parts) {
    if (!isRecord(part)) continue;
    if (typeof part['text'] === 'string') meter.text(part['text']);
    else if (isRecord(part['functionCall'])) meter.text(JSON.stringify(part['functionCall']['args'] ?? {}));
    else if (isRecord(part['functionResponse'])) meter.text(JSON.stringify(part['functionResponse']['response'] ?? {}));
    else meter.extra(BLOB_BYTES);
  }
}

function meterRequest(body: Json, meter: PromptMeter): string | undefined {
  const sys = body['systemInstruction'] ?? body['system_instruction'];
  if (isRecord(sys)) {
    meter.message();
    meterParts(sys['parts'], meter);
  }
  const contents = body['contents'];
  if (!Array.isArray(contents) || contents.length === 0) return '* GenerateContentRequest.contents: contents is not specified';
  for (let i = 0; i < contents.length; i++) {
    const c: unknown = contents[i];
    if (!isRecord(c) || !Array.isArray(c['parts'])) return `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`;
    meter.message();
    meterParts(c['parts'], meter);
  }
  if (Array.isArray(body['tools'])) meter.extra(Buffer.byteLength(JSON.stringify(body['tools'])));
  return undefined;
}

function partsText(parts: unknown): string {
  if (!Array.isArray(parts)) return '';
  return parts
    .map((p) => (isRecord(p) && typeof p['text'] === 'string' ? p['text'] : ''))
    .filter((t) => t !== '')
    .join('\n');
}

/**
 * A function response as the tool's text: a response that only wraps one string (`{output: "..."}`,
 * `{result: "..."}`, `{content: "..."}`, `{error: "..."}`, as TokenGrid and the SDKs wrap a tool's text)
 * is that string, so the answer reads like the OpenAI and Anthropic sides' "The tool returned: <text>";
 * anything else is its JSON.
 */
function functionResponseText(fr: unknown): string {
  const result = isRecord(fr) ? fr['response'] : undefined;
  if (typeof result === 'string') return result;
  if (isRecord(result)) {
    const keys = Object.keys(result);
    const only = keys.length === 1 ? result[keys[0]!] : undefined;
    if (typeof only === 'string' && ['output', 'result', 'content', 'error', 'text'].includes(keys[0]!)) return only;
  }
  return JSON.stringify(result ?? {});
}

/** The JSON schema of generationConfig (camelCase or snake_case; responseJsonSchema before the OpenAPI-subset responseSchema). */
function responseSchemaOf(gc: Json): unknown {
  return gc['responseJsonSchema'] ?? gc['response_json_schema'] ?? gc['responseSchema'] ?? gc['response_schema'];
}

/**
 * What to answer (agent.ts), as the OpenAI and Anthropic sides do: a function call (the tool the prompt points
 * to, within allowedFunctionNames), the last function response echoed ("The tool returned: ..."), JSON valid
 * for responseJsonSchema / responseSchema (with or without responseMimeType application/json; `{"answer":"demo"}`
 * for application/json without a schema), or generated words.
 */
function plan(body: Json, directives: Directives): { tool?: { name: string; argsJson: string }; text?: string } {
  const contents = body['contents'] as unknown[];
  const last = contents[contents.length - 1];
  // Function responses come in a `user` turn (older clients say `function` or `tool`).
  if (!isRecord(last) || (last['role'] !== undefined && last['role'] !== 'user' && last['role'] !== 'function' && last['role'] !== 'tool')) return {};
  const parts = Array.isArray(last['parts']) ? last['parts'] : [];
  const response = parts.findLast((p) => isRecord(p) && isRecord(p['functionResponse']));
  if (isRecord(response)) return { text: toolResultAnswer(functionResponseText(response['functionResponse'])) };
  const tools = body['tools'];
  const tc = body['toolConfig'];
  const fcc = isRecord(tc) && isRecord(tc['functionCallingConfig']) ? tc['functionCallingConfig'] : undefined;
  if (Array.isArray(tools) && !(fcc !== undefined && fcc['mode'] === 'NONE')) {
    const allowed = fcc !== undefined && Array.isArray(fcc['allowedFunctionNames']) ? (fcc['allowedFunctionNames'] as unknown[]) : undefined;
    const offered: OfferedTool[] = [];
    for (const t of tools) {
      const decls = isRecord(t) ? (t['functionDeclarations'] ?? t['function_declarations']) : undefined;
      if (!Array.isArray(decls)) continue;
      for (const d of decls) {
        if (!isRecord(d) || typeof d['name'] !== 'string') continue;
        if (allowed !== undefined && !allowed.includes(d['name'])) continue;
        offered.push({ name: d['name'], schema: d['parameters'] ?? d['parametersJsonSchema'] });
      }
    }
    const tool = pickAgentTool(offered, partsText(parts), undefined, directives.tool, directives.toolArgs === 'all');
    if (tool !== undefined) return { tool };
  }
  const gc = body['generationConfig'];
  if (isRecord(gc)) {
    const schema = responseSchemaOf(gc);
    const mime = gc['responseMimeType'] ?? gc['response_mime_type'];
    if (schema !== undefined || mime === 'application/json') return { text: jsonAnswer(schema) };
  }
  return {};
}

const FINISH = { stop: 'STOP', length: 'MAX_TOKENS', tool: 'STOP' } as const;

function usageMetadata(a: Answer, candidates: number): Json {
  const u = a.usage;
  const m: Json = { promptTokenCount: u.inputTokens };
  if (candidates > 0) m['candidatesTokenCount'] = candidates;
  m['totalTokenCount'] = u.inputTokens + candidates + u.reasoningTokens;
  if (u.cachedTokens > 0) m['cachedContentTokenCount'] = u.cachedTokens;
  if (u.reasoningTokens > 0) m['thoughtsTokenCount'] = u.reasoningTokens;
  m['promptTokensDetails'] = [{ modality: 'TEXT', tokenCount: u.inputTokens }];
  return m;
}

export function handleGenerate(ex: Exchange, body: Json, rawModel: string, stream: boolean, sse: boolean): void {
  const meter = new PromptMeter();
  const bad = meterRequest(body, meter);
  if (bad !== undefined) return ex.error('gemini', 400, bad);
  const gc = body['generationConfig'];
  const cap = readCap(isRecord(gc) ? gc['maxOutputTokens'] : undefined);
  if (cap === null) return ex.error('gemini', 400, '* GenerateContentRequest.generation_config.max_output_tokens: must be a positive integer');
  prepare(ex, 'gemini', rawModel, (p) => {
    const { tool, text } = plan(body, p.directives);
    const a = buildAnswer({ model: p.model, meter, maxTokens: cap, tool, text, directives: p.directives, pacing: ex.state.pacing });
    const responseId = `emu${ex.nextId()}`;
    const objs = responseChunks(p, a, responseId, stream);
    if (!stream) return sendAnswerJson(ex, p.settings, Math.ceil(a.tokens.length / p.settings.tokensPerChunk), objs[0] as string);
    if (!sse) return sendAnswerJson(ex, p.settings, objs.length, `[${objs.join(',\r\n')}]`);
    const chunks = objs.map((o) => `data: ${o}\r\n\r\n`);
    sendStream(ex, { dialect: 'gemini', head: '', chunks, tail: '' }, p.settings);
  });
}

/** Serialised GenerateContentResponse objects: one for a non-stream answer, one per chunk otherwise. */
function responseChunks(p: Prepared, a: Answer, responseId: string, stream: boolean): string[] {
  const visible = a.usage.outputTokens - a.usage.reasoningTokens;
  const one = (parts: Json[], candidatesSoFar: number, last: boolean): string => {
    const cand: Json = { content: { parts, role: 'model' } };
    if (last) cand['finishReason'] = FINISH[a.finish];
    cand['index'] = 0;
    const out: Json = { candidates: [cand] };
    if (!p.settings.noUsage) out['usageMetadata'] = usageMetadata(a, candidatesSoFar);
    out['modelVersion'] = p.model;
    out['responseId'] = responseId;
    return JSON.stringify(out);
  };
  if (a.tool !== undefined) return [one([{ functionCall: { name: a.tool.name, args: JSON.parse(a.tool.argsJson) as unknown } }], visible, true)];
  if (!stream) return [one([{ text: a.tokens.join('') }], visible, true)];
  const per = p.settings.tokensPerChunk;
  const groups = groupTokens(a.tokens, per);
  if (groups.length === 0) return [one([{ text: '' }], 0, true)];
  return groups.map((text, i) => one([{ text }], Math.min((i + 1) * per, a.tokens.length), i === groups.length - 1));
}

function embedOne(model: string, req: Json): { values: number[] } | string {
  const content = req['content'];
  const parts = isRecord(content) ? content['parts'] : undefined;
  if (!Array.isArray(parts) || parts.length === 0) return '* EmbedContentRequest.content: content is not specified';
  const dims = readDims(req['outputDimensionality']);
  if (dims === null) return '* EmbedContentRequest.output_dimensionality: out of range';
  const text = parts.map((x) => (isRecord(x) && typeof x['text'] === 'string' ? x['text'] : '')).join('\n');
  return { values: Array.from(embeddingVector(model, text, dims)) };
}

export function handleEmbed(ex: Exchange, body: Json, rawModel: string, batch: boolean): void {
  const requests = batch ? body['requests'] : [body];
  if (!Array.isArray(requests) || requests.length === 0) return ex.error('gemini', 400, '* BatchEmbedContentsRequest.requests: requests is not specified');
  prepare(ex, 'gemini', rawModel, (p) => {
    const embeddings: Json[] = [];
    for (const r of requests) {
      const e = isRecord(r) ? embedOne(p.model, r) : 'request must be an object';
      if (typeof e === 'string') return ex.error('gemini', 400, e);
      embeddings.push(e);
    }
    const out = batch ? { embeddings } : { embedding: embeddings[0] };
    sendAnswerJson(ex, p.settings, 1, JSON.stringify(out));
  });
}
