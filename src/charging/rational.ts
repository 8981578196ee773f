/** Exact non-negative rationals on bigint (num/den, den > 0), for rating and fractional coverage. */
import { assert, assertSafeInt } from '../core/index.ts';

export interface Q {
  num: bigint;
  den: bigint;
}

export const Q0: Q = { num: 0n, den: 1n };
export const Q1: Q = { num: 1n, den: 1n };

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) {
    const t = x % y;
    x = y;
    y = t;
  }
  return x;
}

/** num/den in lowest terms (the representation of a value is unique: den > 0, gcd(num, den) = 1). */
export function q(num: bigint | number, den: bigint | number = 1n): Q {
  const n = typeof num === 'bigint' ? num : BigInt(num);
  const d = typeof den === 'bigint' ? den : BigInt(den);
  assert(d > 0n, 'rational: den must be positive');
  if (d === 1n) return { num: n, den: 1n }; // the common case (whole coins, whole requests): nothing to reduce
  if (n === 0n) return { num: 0n, den: 1n };
  const g = gcd(n, d);
  return g > 1n ? { num: n / g, den: d / g } : { num: n, den: d };
}

export const qAdd = (a: Q, b: Q): Q => (a.den === b.den ? q(a.num + b.num, a.den) : q(a.num * b.den + b.num * a.den, a.den * b.den));
export const qSub = (a: Q, b: Q): Q => (a.den === b.den ? q(a.num - b.num, a.den) : q(a.num * b.den - b.num * a.den, a.den * b.den));
export const qMul = (a: Q, b: Q): Q => q(a.num * b.num, a.den * b.den);
export function qDiv(a: Q, b: Q): Q {
  assert(b.num > 0n, 'rational: division by zero or negative');
  return q(a.num * b.den, a.den * b.num);
}
export const qMulInt = (a: Q, n: number | bigint): Q => q(a.num * BigInt(n), a.den);
export const qCmp = (a: Q, b: Q): number => {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
};
export const qIsZero = (a: Q): boolean => a.num === 0n;
export const qMin = (a: Q, b: Q): Q => (qCmp(a, b) <= 0 ? a : b);

/** Smallest integer >= a, as a checked safe number. */
export function qCeil(a: Q): number {
  if (a.den === 1n) {
    const whole = Number(a.num);
    if (!Number.isSafeInteger(whole)) assertSafeInt(whole, 'rational ceil');
    return whole;
  }
  let r = a.num / a.den;
  if (a.num % a.den !== 0n && a.num > 0n) r += 1n;
  const out = Number(r);
  if (!Number.isSafeInteger(out)) assertSafeInt(out, 'rational ceil');
  return out;
}

/** Largest integer <= a, as a checked safe number. */
export function qFloor(a: Q): number {
  let r = a.num / a.den;
  if (a.num % a.den !== 0n && a.num < 0n) r -= 1n;
  const out = Number(r);
  if (!Number.isSafeInteger(out)) assertSafeInt(out, 'rational floor');
  return out;
}
