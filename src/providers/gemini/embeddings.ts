import type { EmbeddingRequest, EmbeddingResponse } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall } from '../types.ts';
import { methodUrl, parseJsonObject, postJson, readText } from './http.ts';
import type { GeminiContentEmbedding, GeminiEmbedContentRequest, GeminiUsageMetadata } from './wire-types.ts';

export interface EmbedOptions {
  bytesMaxResponse: number;
  estimateTextTokens: (text: string) => number;
}

function textInputs(input: EmbeddingRequest['input']): string[] {
  const list: unknown[] = Array.isArray(input) ? input : [input];
  const texts: string[] = [];
  for (const item of list) {
    // Token-id input (OpenAI allows it) cannot be sent: Gemini has no public tokenizer to decode it.
    if (typeof item !== 'string') throw new UpstreamError('status', 'gemini embeddings accept text input only', 400);
    texts.push(item);
  }
  return texts;
}

function values(e: unknown): number[] {
  const v = (e as GeminiContentEmbedding | undefined)?.values;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) {
    throw new UpstreamError('malformed', 'gemini embedding has no numeric values');
  }
  return v;
}

/**
 * One string -> :embedContent, several -> :batchEmbedContents (one HTTP call, vectors in input order).
 * Usage comes from usageMetadata or per-embedding statistics when Google sends them, else it is estimated.
 */
export async function embed(call: UpstreamCall, req: EmbeddingRequest, opts: EmbedOptions): Promise<EmbeddingResponse> {
  const texts = textInputs(req.input);
  const single = typeof req.input === 'string';
  const model = call.upstreamModel.startsWith('models/') ? call.upstreamModel : `models/${call.upstreamModel}`;
  const one = (text: string): GeminiEmbedContentRequest => ({
    model,
    content: { parts: [{ text }] },
    ...(req.dimensions !== undefined ? { outputDimensionality: req.dimensions } : {}),
  });
  const url = methodUrl(call.provider.baseUrl, call.upstreamModel, single ? 'embedContent' : 'batchEmbedContents');
  const body = single ? one(texts[0] ?? '') : { requests: texts.map(one) };
  const res = await postJson(call, url, body, 'application/json');
  const text = await readText(res, call, opts.bytesMaxResponse);
  const parsed = parseJsonObject(text, 'embeddings response');
  const raw: unknown[] = single ? [parsed.embedding] : Array.isArray(parsed.embeddings) ? parsed.embeddings : [];
  if (raw.length !== texts.length) {
    throw new UpstreamError('malformed', `gemini returned ${raw.length} embeddings for ${texts.length} inputs`);
  }
  const data = raw.map(values);
  return {
    model: call.upstreamModel,
    data,
    usage: {
      tokensInput: reportedTokens(parsed.usageMetadata, raw) ?? texts.reduce((n, t) => n + opts.estimateTextTokens(t), 0),
      tokensOutput: 0,
      tokensCachedInput: 0,
      tokensCacheWrite: 0,
      tokensReasoning: 0,
    },
  };
}

function reportedTokens(usage: unknown, embeddings: unknown[]): number | undefined {
  const prompt = (usage as GeminiUsageMetadata | undefined)?.promptTokenCount;
  if (typeof prompt === 'number' && Number.isSafeInteger(prompt) && prompt > 0) return prompt;
  let sum = 0;
  for (const e of embeddings) {
    const n = (e as GeminiContentEmbedding | undefined)?.statistics?.tokenCount;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return undefined;
    sum += n;
  }
  return sum > 0 ? sum : undefined;
}
