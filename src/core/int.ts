import { assert } from './assert.ts';

/** Integer helpers: money is minor units, tokens are whole tokens; rounding is always explicit. */
export function assertSafeInt(n: number, what: string): void {
  assert(Number.isSafeInteger(n), `${what} must be a safe integer, got ${n}`);
}

export function assertNonNegInt(n: number, what: string): void {
  assert(Number.isSafeInteger(n) && n >= 0, `${what} must be a non-negative safe integer, got ${n}`);
}

/** a * num / den with a bigint intermediate, rounded up (ceil) or down (floor); result checked. */
export function mulDiv(a: number, num: number, den: number, rounding: 'ceil' | 'floor'): number {
  assert(den > 0, 'mulDiv: den must be positive');
  const p = BigInt(a) * BigInt(num);
  const d = BigInt(den);
  let q = p / d;
  const r = p % d;
  if (r !== 0n) {
    if (rounding === 'ceil' && p > 0n) q += 1n;
    if (rounding === 'floor' && p < 0n) q -= 1n;
  }
  const out = Number(q);
  assertSafeInt(out, 'mulDiv result');
  return out;
}

/** Parse a decimal string like "10.00" into minor units (scale = 100 for CNY fen). Rejects more precision than the scale allows. */
export function parseDecimalMinor(text: string, scale: number): number | undefined {
  const m = /^(-?)(\d{1,15})(?:\.(\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  const digits = Math.round(Math.log10(scale));
  const frac = m[3] ?? '';
  if (frac.length > digits) return undefined;
  const value = Number(m[2]) * scale + Number(frac.padEnd(digits, '0') || '0');
  if (!Number.isSafeInteger(value)) return undefined;
  return m[1] === '-' ? -value : value;
}

export function formatMinor(minor: number, scale: number): string {
  const digits = Math.round(Math.log10(scale));
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  const whole = Math.floor(abs / scale);
  const frac = String(abs % scale).padStart(digits, '0');
  return digits > 0 ? `${sign}${whole}.${frac}` : `${sign}${whole}`;
}
