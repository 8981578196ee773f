import { parseDirectives } from './directives.ts';
import { gate, resolveSettings, type Exchange } from './exchange.ts';
import type { Directives, RequestSettings } from './types.ts';
import type { Dialect } from './vendor-errors.ts';

/** Small helpers every dialect handler shares: body checks, directives, model stats, gating. */

export type Json = Record<string, unknown>;

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A positive integer cap, `undefined` when absent, `null` when present but invalid. */
export function readCap(v: unknown): number | undefined | null {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : null;
}

export function headerDirectives(ex: Exchange): string | undefined {
  const h = ex.req.headers['x-emulator'];
  return Array.isArray(h) ? h.join(';') : h;
}

export function countModel(ex: Exchange, model: string): void {
  const by = ex.state.stats.byModel;
  by[model] = (by[model] ?? 0) + 1;
}

export interface Prepared {
  model: string;
  directives: Directives;
  settings: RequestSettings;
}

/**
 * Strips directives from the model, counts it, applies fail/hang gates, then calls `answer`.
 * Answers 400 in the dialect's format when the model is missing.
 */
export function prepare(ex: Exchange, dialect: Dialect, rawModel: unknown, answer: (p: Prepared) => void): void {
  if (typeof rawModel !== 'string' || rawModel === '') {
    ex.error(dialect, 400, dialect === 'anthropic' ? 'model: Field required' : 'you must provide a model parameter');
    return;
  }
  const { model, directives } = parseDirectives(rawModel, headerDirectives(ex));
  countModel(ex, model);
  gate(ex, directives, dialect, () => answer({ model, directives, settings: resolveSettings(ex.state.pacing, directives) }));
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
