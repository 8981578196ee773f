/**
 * Tiny field checks for the Anthropic request decoder. Messages copy the wording the Anthropic API
 * itself returns (pydantic style, `<dotted.path>: <reason>`, e.g. "max_tokens: Field required"), so a
 * client sees the same error from TokenGrid as from api.anthropic.com. Hand-written rather than zod:
 * the decoder runs on every request and the wording must match exactly.
 */
import { err, ok, type Err, type Result } from '../../core/index.ts';

export type DecodeResult<T> = Result<T, 'invalid_request'>;

export const fail = (param: string, reason: string): Err<'invalid_request'> => err('invalid_request', `${param}: ${reason}`, { param });

export const pathOf = (base: string, key: string | number): string => (base === '' ? String(key) : `${base}.${key}`);

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function requireRecord(v: unknown, param: string): DecodeResult<Record<string, unknown>> {
  if (v === undefined) return fail(param, 'Field required');
  return isRecord(v) ? ok(v) : fail(param, 'Input should be a valid dictionary');
}

export function requireString(v: unknown, param: string): DecodeResult<string> {
  if (v === undefined) return fail(param, 'Field required');
  return typeof v === 'string' ? ok(v) : fail(param, 'Input should be a valid string');
}

export function requireArray(v: unknown, param: string): DecodeResult<unknown[]> {
  if (v === undefined) return fail(param, 'Field required');
  return Array.isArray(v) ? ok(v) : fail(param, 'Input should be a valid list');
}

export function optionalString(v: unknown, param: string): DecodeResult<string | undefined> {
  if (v === undefined || v === null) return ok(undefined);
  return typeof v === 'string' ? ok(v) : fail(param, 'Input should be a valid string');
}

export function optionalBoolean(v: unknown, param: string): DecodeResult<boolean | undefined> {
  if (v === undefined || v === null) return ok(undefined);
  return typeof v === 'boolean' ? ok(v) : fail(param, 'Input should be a valid boolean');
}

/** A finite number within [min, max] (either bound optional). */
export function optionalNumber(v: unknown, param: string, min?: number, max?: number): DecodeResult<number | undefined> {
  if (v === undefined || v === null) return ok(undefined);
  if (typeof v !== 'number' || !Number.isFinite(v)) return fail(param, 'Input should be a valid number');
  if (min !== undefined && v < min) return fail(param, `Input should be greater than or equal to ${min}`);
  if (max !== undefined && v > max) return fail(param, `Input should be less than or equal to ${max}`);
  return ok(v);
}

export function optionalInteger(v: unknown, param: string, min?: number): DecodeResult<number | undefined> {
  if (v === undefined || v === null) return ok(undefined);
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) return fail(param, 'Input should be a valid integer');
  if (min !== undefined && v < min) return fail(param, `Input should be greater than or equal to ${min}`);
  return ok(v);
}

export function optionalStringArray(v: unknown, param: string): DecodeResult<string[] | undefined> {
  if (v === undefined || v === null) return ok(undefined);
  if (!Array.isArray(v)) return fail(param, 'Input should be a valid list');
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string') return fail(pathOf(param, i), 'Input should be a valid string');
  }
  return ok(v as string[]);
}
