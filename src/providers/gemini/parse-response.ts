import type { ContentPart, FinishReason, StreamEvent, Usage } from '../../wire/index.ts';
import type { GeminiCandidate, GeminiGenerateContentResponse, GeminiPart, GeminiUsageMetadata } from './wire-types.ts';

/** Finish reasons that mean "output was withheld by a policy filter". */
const FILTER_REASONS = new Set([
  'SAFETY',
  'RECITATION',
  'LANGUAGE',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
]);
/** Finish reasons that mean the model produced something unusable. */
const ERROR_REASONS = new Set(['MALFORMED_FUNCTION_CALL', 'UNEXPECTED_TOOL_CALL', 'TOO_MANY_TOOL_CALLS']);

export function mapFinishReason(reason: string, hadToolCalls: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length';
  if (FILTER_REASONS.has(reason)) return 'content_filter';
  if (ERROR_REASONS.has(reason)) return 'error';
  // STOP, OTHER, FINISH_REASON_UNSPECIFIED and reasons added after this was written.
  return hadToolCalls ? 'tool_calls' : 'stop';
}

const count = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 0);

/** Gemini bills thoughts as output but reports them apart from candidatesTokenCount. */
export function mapUsage(u: GeminiUsageMetadata | undefined): Usage {
  const thoughts = count(u?.thoughtsTokenCount);
  return {
    // toolUsePromptTokenCount (built-in tool results) is billed as input but reported apart.
    tokensInput: count(u?.promptTokenCount) + count(u?.toolUsePromptTokenCount),
    tokensOutput: count(u?.candidatesTokenCount) + thoughts,
    tokensCachedInput: count(u?.cachedContentTokenCount),
    tokensCacheWrite: 0,
    tokensReasoning: thoughts,
  };
}

/**
 * Tool-call ids: Gemini usually sends none, so one is made from the response key and the call's
 * position. The same response always yields the same ids (stream or not), and ids from two responses
 * of one conversation differ, which clients that key results by id rely on.
 */
export function toolCallId(part: NonNullable<GeminiPart['functionCall']>, responseKey: string, index: number): string {
  if (typeof part.id === 'string' && part.id !== '') return part.id;
  return `call_${responseKey.replace(/[^A-Za-z0-9]/g, '').slice(-24)}_${index}`;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function firstCandidate(r: GeminiGenerateContentResponse): GeminiCandidate | undefined {
  return Array.isArray(r.candidates) ? r.candidates[0] : undefined;
}

function partsOf(c: GeminiCandidate | undefined): GeminiPart[] {
  const parts = c?.content?.parts;
  return Array.isArray(parts) ? parts.filter(isObject) : [];
}

export interface DecodedResponse {
  content: ContentPart[];
  reasoning: string;
  finishReason: FinishReason | undefined;
  usage: Usage;
}

/** A whole generateContent response. finishReason is undefined when the response carries none. */
export function decodeResponse(r: GeminiGenerateContentResponse, responseKey: string): DecodedResponse {
  const content: ContentPart[] = [];
  let reasoning = '';
  let toolCalls = 0;
  const candidate = firstCandidate(r);
  for (const part of partsOf(candidate)) {
    if (typeof part.text === 'string' && part.text !== '') {
      if (part.thought === true) {
        reasoning += part.text;
        continue;
      }
      const last = content[content.length - 1];
      if (last !== undefined && last.type === 'text') last.text += part.text;
      else content.push({ type: 'text', text: part.text });
    } else if (isObject(part.functionCall) && typeof part.functionCall.name === 'string') {
      const fc = part.functionCall;
      content.push({
        type: 'tool_call',
        id: toolCallId(fc, responseKey, toolCalls),
        name: fc.name,
        argumentsJson: JSON.stringify(fc.args ?? {}),
      });
      toolCalls++;
    }
  }
  let finishReason: FinishReason | undefined;
  if (typeof candidate?.finishReason === 'string') finishReason = mapFinishReason(candidate.finishReason, toolCalls > 0);
  else if (candidate === undefined && typeof r.promptFeedback?.blockReason === 'string') finishReason = 'content_filter';
  return { content, reasoning, finishReason, usage: mapUsage(r.usageMetadata) };
}

/**
 * Turns streamGenerateContent chunks (each a full GenerateContentResponse holding only the new
 * parts) into canonical events. 'finish' and 'usage' are held back to the end: usageMetadata repeats
 * on every chunk with running totals, so only the last one counts.
 */
export class GeminiStreamDecoder {
  #started = false;
  #toolCalls = 0;
  #finishRaw: string | undefined;
  #blocked = false;
  #usage: GeminiUsageMetadata | undefined;
  #responseKey: string;
  readonly #fallbackId: string;
  readonly #fallbackModel: string;
  readonly #createdS: number;

  constructor(opts: { fallbackId: string; fallbackModel: string; createdS: number }) {
    this.#fallbackId = opts.fallbackId;
    this.#fallbackModel = opts.fallbackModel;
    this.#createdS = opts.createdS;
    this.#responseKey = opts.fallbackId;
  }

  get sawFinish(): boolean {
    return this.#finishRaw !== undefined || this.#blocked;
  }

  push(chunk: GeminiGenerateContentResponse): StreamEvent[] {
    const out: StreamEvent[] = [];
    if (!this.#started) {
      this.#started = true;
      const id = typeof chunk.responseId === 'string' && chunk.responseId !== '' ? chunk.responseId : this.#fallbackId;
      this.#responseKey = id;
      const model = typeof chunk.modelVersion === 'string' && chunk.modelVersion !== '' ? chunk.modelVersion : this.#fallbackModel;
      out.push({ type: 'start', id, model, createdS: this.#createdS });
    }
    if (isObject(chunk.usageMetadata)) this.#usage = chunk.usageMetadata;
    const candidate = firstCandidate(chunk);
    for (const part of partsOf(candidate)) this.#part(part, out);
    if (typeof candidate?.finishReason === 'string' && this.#finishRaw === undefined) this.#finishRaw = candidate.finishReason;
    if (candidate === undefined && typeof chunk.promptFeedback?.blockReason === 'string') this.#blocked = true;
    return out;
  }

  /** The held-back terminal events. Call only when sawFinish is true. */
  end(): StreamEvent[] {
    const finishReason: FinishReason = this.#finishRaw !== undefined ? mapFinishReason(this.#finishRaw, this.#toolCalls > 0) : 'content_filter';
    return [
      { type: 'finish', finishReason },
      { type: 'usage', usage: mapUsage(this.#usage) },
    ];
  }

  #part(part: GeminiPart, out: StreamEvent[]): void {
    if (typeof part.text === 'string' && part.text !== '') {
      out.push({ type: part.thought === true ? 'reasoning' : 'text', text: part.text });
      return;
    }
    const fc = part.functionCall;
    if (!isObject(fc) || typeof fc.name !== 'string') return;
    const index = this.#toolCalls++;
    out.push({ type: 'tool_call_start', index, id: toolCallId(fc, this.#responseKey, index), name: fc.name });
    out.push({ type: 'tool_call_delta', index, argumentsDelta: JSON.stringify(fc.args ?? {}) });
  }
}
