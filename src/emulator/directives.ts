import type { Directives } from './types.ts';

/**
 * Per-request directives let tests and configs inject behaviour without restarting the emulator:
 * an `x-emulator: key=value;key=value` header and/or `model@key=value@key=value` suffixes.
 * Unknown keys and unparsable values are ignored (never an error: the emulator never rejects a
 * request because of its own test knobs).
 */

const NO_DIRECTIVES: Directives = Object.freeze({});

type Kind = 'int' | 'rate' | 'flag' | 'string';
const KEYS: Record<string, { name: keyof Directives; kind: Kind }> = {
  fail: { name: 'fail', kind: 'int' },
  failrate: { name: 'failRate', kind: 'rate' },
  hang: { name: 'hang', kind: 'flag' },
  hangms: { name: 'hangMs', kind: 'int' },
  disconnectafter: { name: 'disconnectAfter', kind: 'int' },
  malformedafter: { name: 'malformedAfter', kind: 'int' },
  errorafter: { name: 'errorAfter', kind: 'int' },
  nousage: { name: 'noUsage', kind: 'flag' },
  ignoremaxtokens: { name: 'ignoreMaxTokens', kind: 'flag' },
  tokens: { name: 'tokens', kind: 'int' },
  ttft: { name: 'ttft', kind: 'int' },
  interval: { name: 'interval', kind: 'int' },
  chunk: { name: 'chunk', kind: 'int' },
  cached: { name: 'cached', kind: 'int' },
  reasoning: { name: 'reasoning', kind: 'int' },
  prompttokens: { name: 'promptTokens', kind: 'int' },
  inputbytes: { name: 'inputBytes', kind: 'flag' },
  tool: { name: 'tool', kind: 'string' },
  toolargs: { name: 'toolArgs', kind: 'string' },
  cachewrite: { name: 'cacheWrite', kind: 'int' },
  echo: { name: 'echo', kind: 'flag' },
  reverse: { name: 'reverse', kind: 'flag' },
  recall: { name: 'recall', kind: 'flag' },
};

function parseValue(kind: Kind, raw: string | undefined): number | boolean | string | undefined {
  if (kind === 'string') return raw === undefined || raw === '' ? undefined : raw;
  if (kind === 'flag') return raw === undefined || raw === '' || raw === '1' || raw.toLowerCase() === 'true';
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) return undefined;
  if (kind === 'rate') return n <= 1 ? n : undefined;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Adds the `k=v` items of `text` (separated by `;`, `@` or `,`) into `into`. */
function addItems(text: string, into: Record<string, unknown>): void {
  for (const item of text.split(/[;@,]/)) {
    const trimmed = item.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    const key = (eq < 0 ? trimmed : trimmed.slice(0, eq)).trim().toLowerCase();
    const spec = KEYS[key];
    if (spec === undefined) continue;
    const value = parseValue(spec.kind, eq < 0 ? undefined : trimmed.slice(eq + 1).trim());
    if (value !== undefined) into[spec.name] = value;
  }
}

export interface ModelDirectives {
  /** The model with its `@...` suffix removed: what is echoed and counted. */
  model: string;
  directives: Directives;
}

/** Header directives first, model suffix directives override them (the model is more specific). */
export function parseDirectives(rawModel: string, header: string | undefined): ModelDirectives {
  const at = rawModel.indexOf('@');
  if (at < 0 && (header === undefined || header === '')) return { model: rawModel, directives: NO_DIRECTIVES };
  const out: Record<string, unknown> = {};
  if (header !== undefined && header !== '') addItems(header, out);
  if (at >= 0) addItems(rawModel.slice(at + 1), out);
  return { model: at >= 0 ? rawModel.slice(0, at) : rawModel, directives: out as Directives };
}

/** Strip directives only (for stats keys and echoes where the directives were already read). */
export function stripDirectives(rawModel: string): string {
  const at = rawModel.indexOf('@');
  return at < 0 ? rawModel : rawModel.slice(0, at);
}

/**
 * Deterministic failure pattern for `failRate=r`: request k (1-based, counted per emulator over the
 * requests that carry failRate) fails when floor(k*r) increases, so exactly floor(n*r) of the first
 * n such requests fail, spread evenly (r=0.25 fails requests 4, 8, 12, ...). No Math.random: tests
 * that count failures stay reproducible.
 */
export function failsAt(counter: number, rate: number): boolean {
  return Math.floor(counter * rate + 1e-9) > Math.floor((counter - 1) * rate + 1e-9);
}
