import { err, ok, type Result } from '../../core/index.ts';

/**
 * Field readers for the hand-written OpenAI request decoders. A reader throws DecodeFailure, and the
 * decoder's entry point (runDecoder) turns it into an `invalid_request` Result. Throwing inside the
 * module lets a failure deep in messages[3].content[1] carry its exact `param` without threading a
 * Result through every helper; nothing outside wire/openai ever sees the exception.
 */
export class DecodeFailure extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = 'DecodeFailure';
  }
}

export type Obj = Record<string, unknown>;

export function runDecoder<T>(decode: () => T): Result<T, 'invalid_request'> {
  try {
    return ok(decode());
  } catch (e) {
    // param is null when the body as a whole is wrong, as OpenAI reports it.
    if (e instanceof DecodeFailure) return err('invalid_request', e.message, { param: e.param === '' ? null : e.param });
    throw e;
  }
}

export function fail(param: string, message: string): never {
  throw new DecodeFailure(param, message);
}

export const at = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
export const idx = (path: string, i: number): string => `${path}[${i}]`;

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? 'a string' : `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** OpenAI clients (the Python SDK's NotGiven aside) often send explicit nulls for unset options. */
export const isAbsent = (v: unknown): v is null | undefined => v === undefined || v === null;

export function asObj(v: unknown, param: string): Obj {
  if (!isObj(v) && param === '') fail('', `The request body must be a JSON object, got ${describeValue(v)}.`);
  if (!isObj(v)) fail(param, `Invalid type for '${param}': expected an object, got ${describeValue(v)}.`);
  return v;
}

export function asArray(v: unknown, param: string): unknown[] {
  if (!Array.isArray(v)) fail(param, `Invalid type for '${param}': expected an array, got ${describeValue(v)}.`);
  return v;
}

export function asString(v: unknown, param: string): string {
  if (typeof v !== 'string') fail(param, `Invalid type for '${param}': expected a string, got ${describeValue(v)}.`);
  return v;
}

export function reqString(o: Obj, key: string, path: string): string {
  const param = at(path, key);
  if (isAbsent(o[key])) fail(param, `Missing required parameter: '${param}'.`);
  return asString(o[key], param);
}

export function reqNonEmptyString(o: Obj, key: string, path: string): string {
  const s = reqString(o, key, path);
  if (s === '') fail(at(path, key), `Invalid value for '${at(path, key)}': must not be empty.`);
  return s;
}

export function optString(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  return isAbsent(v) ? undefined : asString(v, at(path, key));
}

export function optBool(o: Obj, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'boolean') fail(at(path, key), `Invalid type for '${at(path, key)}': expected a boolean, got ${describeValue(v)}.`);
  return v;
}

export interface NumberRange {
  min?: number;
  max?: number;
  integer?: boolean;
}

export function optNumber(o: Obj, key: string, path: string, range: NumberRange = {}): number | undefined {
  const v = o[key];
  if (isAbsent(v)) return undefined;
  const param = at(path, key);
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(param, `Invalid type for '${param}': expected a number, got ${describeValue(v)}.`);
  if (range.integer === true && !Number.isSafeInteger(v)) fail(param, `Invalid type for '${param}': expected an integer, got ${v}.`);
  if (range.min !== undefined && v < range.min) fail(param, `Invalid value for '${param}': ${v} is below the minimum of ${range.min}.`);
  if (range.max !== undefined && v > range.max) fail(param, `Invalid value for '${param}': ${v} is above the maximum of ${range.max}.`);
  return v;
}

/** `stop`: a string or an array of strings; null or [] mean none. */
export function optStop(o: Obj, key: string, path: string): string[] | undefined {
  const v = o[key];
  if (isAbsent(v)) return undefined;
  const param = at(path, key);
  if (typeof v === 'string') return [v];
  const arr = asArray(v, param);
  const out = arr.map((s, i) => asString(s, idx(param, i)));
  return out.length === 0 ? undefined : out;
}

/** `temperature`, `top_p` and `stop`, shared by chat and legacy completions, onto `req` when present. */
export function readSampling(o: Obj, req: { temperature?: number; topP?: number; stop?: string[] }): void {
  const temperature = optNumber(o, 'temperature', '', { min: 0, max: 2 });
  if (temperature !== undefined) req.temperature = temperature;
  const topP = optNumber(o, 'top_p', '', { min: 0, max: 1 });
  if (topP !== undefined) req.topP = topP;
  const stop = optStop(o, 'stop', '');
  if (stop !== undefined) req.stop = stop;
}

/** Copy every field the decoder does not model, untouched, for a same-family upstream. */
export function extraFields(o: Obj, known: ReadonlySet<string>): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const key of Object.keys(o)) {
    if (!known.has(key)) extra[key] = o[key];
  }
  return extra;
}

/** n > 1 (several choices per request) is not supported: metering and re-encoding assume one choice. */
export function checkSingleChoice(o: Obj, path: string): void {
  const n = optNumber(o, 'n', path, { integer: true, min: 1 });
  if (n !== undefined && n > 1) fail(at(path, 'n'), `Invalid value for '${at(path, 'n')}': only n=1 is supported, got ${n}.`);
}

/** `stream_options.include_usage`, only meaningful when streaming. */
export function readIncludeUsage(o: Obj, path: string): boolean {
  const so = o['stream_options'];
  if (isAbsent(so)) return false;
  const opts = asObj(so, at(path, 'stream_options'));
  return optBool(opts, 'include_usage', at(path, 'stream_options')) ?? false;
}
