import type { Result } from '../../core/index.ts';
import type { CompletionRequest, EmbeddingRequest } from '../types.ts';
import {
  asObj,
  checkSingleChoice,
  describeValue,
  extraFields,
  fail,
  idx,
  isAbsent,
  optBool,
  optNumber,
  optString,
  readIncludeUsage,
  readSampling,
  reqNonEmptyString,
  runDecoder,
} from './decode-reader.ts';

const KNOWN_COMPLETION = new Set(['model', 'prompt', 'stream', 'stream_options', 'max_tokens', 'temperature', 'top_p', 'stop', 'n']);
const KNOWN_EMBEDDING = new Set(['model', 'input', 'encoding_format', 'dimensions', 'user']);

/** POST /v1/completions (legacy) body → canonical CompletionRequest. */
export function decodeCompletionRequest(body: unknown): Result<CompletionRequest, 'invalid_request'> {
  return runDecoder(() => {
    const o = asObj(body, '');
    const req: CompletionRequest = {
      model: reqNonEmptyString(o, 'model', ''),
      prompt: decodePrompt(o['prompt']),
      stream: optBool(o, 'stream', '') ?? false,
      includeUsage: readIncludeUsage(o, ''),
      extra: extraFields(o, KNOWN_COMPLETION),
    };
    checkSingleChoice(o, '');
    const maxTokens = optNumber(o, 'max_tokens', '', { integer: true, min: 1 });
    if (maxTokens !== undefined) req.maxTokensOutput = maxTokens;
    readSampling(o, req);
    return req;
  });
}

function decodePrompt(v: unknown): string | string[] {
  if (isAbsent(v)) fail('prompt', `Missing required parameter: 'prompt'.`);
  if (typeof v === 'string') return v;
  if (!Array.isArray(v) || v.length === 0) {
    return fail('prompt', `Invalid value for 'prompt': expected a string or a non-empty array of strings, got ${describeValue(v)}.`);
  }
  return v.map((p, i) => {
    if (typeof p === 'string') return p;
    // Token-id prompts (number[] / number[][]) cannot be metered or routed to non-OpenAI tokenizers.
    return fail(idx('prompt', i), `Invalid value for '${idx('prompt', i)}': only string prompts are supported, got ${describeValue(p)}.`);
  });
}

/** POST /v1/embeddings body → canonical EmbeddingRequest. */
export function decodeEmbeddingRequest(body: unknown): Result<EmbeddingRequest, 'invalid_request'> {
  return runDecoder(() => {
    const o = asObj(body, '');
    const req: EmbeddingRequest = {
      model: reqNonEmptyString(o, 'model', ''),
      input: decodeInput(o['input']),
      extra: extraFields(o, KNOWN_EMBEDDING),
    };
    const format = o['encoding_format'];
    if (format === 'float' || format === 'base64') req.encodingFormat = format;
    else if (!isAbsent(format)) fail('encoding_format', `Invalid value for 'encoding_format': expected 'float' or 'base64', got ${describeValue(format)}.`);
    const dimensions = optNumber(o, 'dimensions', '', { integer: true, min: 1 });
    if (dimensions !== undefined) req.dimensions = dimensions;
    const user = optString(o, 'user', '');
    if (user !== undefined) req.user = user;
    return req;
  });
}

const isTokenId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

function decodeInput(v: unknown): EmbeddingRequest['input'] {
  const param = 'input';
  if (isAbsent(v)) fail(param, `Missing required parameter: '${param}'.`);
  if (typeof v === 'string') {
    if (v === '') fail(param, `Invalid value for '${param}': must not be empty.`);
    return v;
  }
  if (!Array.isArray(v) || v.length === 0) {
    return fail(param, `Invalid value for '${param}': expected a string, an array of strings or token arrays, got ${describeValue(v)}.`);
  }
  const first: unknown = v[0];
  if (typeof first === 'string') {
    v.forEach((s, i) => {
      if (typeof s !== 'string' || s === '') fail(idx(param, i), `Invalid value for '${idx(param, i)}': expected a non-empty string, got ${describeValue(s)}.`);
    });
    return v as string[];
  }
  if (typeof first === 'number') {
    v.forEach((n, i) => {
      if (!isTokenId(n)) fail(idx(param, i), `Invalid value for '${idx(param, i)}': expected a token id, got ${describeValue(n)}.`);
    });
    return v as number[];
  }
  v.forEach((arr, i) => {
    const p = idx(param, i);
    if (!Array.isArray(arr) || arr.length === 0) fail(p, `Invalid value for '${p}': expected a non-empty array of token ids, got ${describeValue(arr)}.`);
    arr.forEach((n, j) => {
      if (!isTokenId(n)) fail(idx(p, j), `Invalid value for '${idx(p, j)}': expected a token id, got ${describeValue(n)}.`);
    });
  });
  return v as number[][];
}
