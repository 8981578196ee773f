import type { OptionSpec } from '../command.ts';

/** Option specs several commands share, so `--account` reads the same everywhere. */
export const ACCOUNT: OptionSpec = { type: 'string', value: '<id>', required: true, help: 'account id (acct_...)' };
export const ACCOUNT_FILTER: OptionSpec = { type: 'string', value: '<id>', help: 'only this account (acct_...)' };
export const OFFER: OptionSpec = { type: 'string', value: '<id>', required: true, help: 'offer id (see tokengrid offers)' };
export const IDEMPOTENCY_KEY: OptionSpec = {
  type: 'string',
  value: '<key>',
  help: 'Idempotency-Key to send (default: a random uuid); reuse it to retry safely',
};
export const MODELS: OptionSpec = { type: 'string', value: '<m1,m2>', help: 'only these models (ids, aliases or group:<name>), comma-separated' };

/** One path segment: ids never need escaping, but a typo must not turn into another route. */
export const seg = (id: string): string => encodeURIComponent(id);

export type Obj = Record<string, unknown>;

export const asObj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

/** The `data` array of a list answer ({ data: [...] }), or the answer itself when it is an array. */
export function listOf(body: unknown, ...keys: string[]): Obj[] {
  if (Array.isArray(body)) return body.map(asObj);
  const o = asObj(body);
  for (const k of ['data', ...keys]) if (Array.isArray(o[k])) return (o[k] as unknown[]).map(asObj);
  return [];
}

/** A field as display text: "-" for missing or null. */
export function text(o: Obj, ...keys: string[]): string {
  for (const k of keys) {
    const v = o[k];
    if (v !== undefined && v !== null && typeof v !== 'object') return String(v);
  }
  return '-';
}

export function num(o: Obj, ...keys: string[]): number | undefined {
  for (const k of keys) if (typeof o[k] === 'number') return o[k] as number;
  return undefined;
}

/** --json promises one JSON object: a bare array answer is wrapped as { data: [...] }. */
export const jsonObject = (body: unknown): Obj => (Array.isArray(body) ? { data: body } : asObj(body));
