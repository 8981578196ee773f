import { parseDecimalMinor } from '../core/index.ts';
import type { OptionValues } from './command.ts';
import { UsageError } from './errors.ts';
import { formatMoney, minorScale } from './format.ts';

/** Option value parsers: each returns the value the API wants or throws a UsageError that names the option. */

export function str(opts: OptionValues, name: string): string | undefined {
  const v = opts[name];
  return typeof v === 'string' ? v : undefined;
}

/** A required option (the dispatcher already checked presence; this narrows the type and rejects ""). */
export function need(opts: OptionValues, name: string): string {
  const v = str(opts, name);
  if (v === undefined || v.trim() === '') throw new UsageError(`--${name} needs a value`);
  return v.trim();
}

export function flag(opts: OptionValues, name: string): boolean {
  return opts[name] === true;
}

const cleanDigits = (text: string): string => text.trim().replace(/[_,]/g, '');

export function positiveInt(name: string, text: string, max: number): number {
  const t = cleanDigits(text);
  if (!/^\d+$/.test(t)) throw new UsageError(`--${name} must be a whole number, got "${text}"`);
  const n = Number(t);
  if (n <= 0) throw new UsageError(`--${name} must be more than 0`);
  if (!Number.isSafeInteger(n) || n > max) throw new UsageError(`--${name} must be at most ${max}, got ${text}`);
  return n;
}

const TOKEN_SUFFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, b: 1e9 };
export const MAX_GRANT_TOKENS = 1e15;

/** "30000000", "30M", "1.5M", "500K", "2B" -> whole tokens. */
export function tokenCount(name: string, text: string): number {
  const m = /^(-?[\d.]+)([kmb]?)$/i.exec(cleanDigits(text));
  const scale = m ? TOKEN_SUFFIX[m[2]!.toLowerCase()] : undefined;
  const n = m && scale ? parseDecimalMinor(m[1]!, scale) : undefined;
  if (n === undefined) throw new UsageError(`--${name} must be a whole number of tokens like 30000000, 30M or 1.5M, got "${text}"`);
  if (n <= 0) throw new UsageError(`--${name} must be more than 0`);
  if (n > MAX_GRANT_TOKENS) throw new UsageError(`--${name} must be at most 1e15 tokens, got ${text}`);
  return n;
}

export function currencyCode(text: string): string {
  const c = text.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(c)) throw new UsageError(`--currency must be a 3-letter code like CNY, got "${text}"`);
  return c;
}

/** A larger top-up is almost surely a typo (extra zeros); split it on purpose if it is not. */
export const MAX_TOPUP_MAJOR = 10_000_000;

/** "10.00" CNY -> 1000 fen, through core's exact decimal parser (no float rounding). */
export function moneyAmount(name: string, text: string, currency: string): number {
  const scale = minorScale(currency);
  const digits = Math.round(Math.log10(scale));
  const minor = parseDecimalMinor(text, scale);
  if (minor === undefined) {
    const tooPrecise = /^-?\d+\.\d+$/.test(text.trim());
    throw new UsageError(
      tooPrecise
        ? `--${name} has more decimals than ${currency} allows (${digits}): "${text}"`
        : `--${name} must be a decimal amount like 10.00, got "${text}"`,
    );
  }
  if (minor <= 0) throw new UsageError(`--${name} must be more than 0, got ${text}`);
  if (minor > MAX_TOPUP_MAJOR * scale) {
    throw new UsageError(
      `--${name} ${formatMoney(minor, currency)} is over the CLI's limit of ${formatMoney(MAX_TOPUP_MAJOR * scale, currency)} per top-up; check for a typo or split it`,
    );
  }
  return minor;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

/** Date.parse rolls 2026-02-30 over to March 2; an operator who typed it meant something else. */
function realDay(t: string): boolean {
  const [y, m, d] = t.slice(0, 10).split('-').map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}

/**
 * A date ("2026-12-25", 00:00 UTC that day) or a date-time with an offset, as an ISO instant. A
 * date-time without offset is refused: it would silently mean the CLI machine's local time.
 */
export function isoInstant(name: string, text: string): string {
  const t = text.trim();
  const ms = (DATE_ONLY.test(t) || DATE_TIME_WITH_OFFSET.test(t)) && realDay(t) ? Date.parse(t) : NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(`--${name} must be a date like 2026-12-25 or a date-time with an offset like 2026-12-25T18:00:00+08:00, got "${text}"`);
  }
  return new Date(ms).toISOString();
}

export function futureInstant(name: string, text: string, nowMs: number): string {
  const iso = isoInstant(name, text);
  if (Date.parse(iso) <= nowMs) throw new UsageError(`--${name} ${text} is in the past`);
  return iso;
}

/** "gpt-5, glm-5" -> ["gpt-5", "glm-5"]. */
export function nameList(name: string, text: string): string[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`--${name} must list at least one name, separated by commas`);
  return items;
}

/** A billing period: a calendar month "2026-11". */
export function period(name: string, text: string): string {
  const t = text.trim();
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(t)) throw new UsageError(`--${name} must be a month like 2026-11, got "${text}"`);
  return t;
}

export function oneOf<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${text}"`);
  return text as T;
}

/** An id that goes into a URL path: refuse what cannot be an id instead of sending a confusing request. */
export function idArg(opts: OptionValues, name: string): string {
  const id = need(opts, name);
  if (/[\s/?#]/.test(id)) throw new UsageError(`--${name} "${id}" is not an id`);
  return id;
}
